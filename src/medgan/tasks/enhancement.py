"""Image enhancement (denoising, super-resolution) with paired image-to-image GANs.

- :class:`DegradedPairs`: a Dataset of ``(degraded, clean)`` slices in [-1, 1], the degraded
  input drawn deterministically per (seed, index) from a degradation model.
- :func:`enhance`: run a trained 2D generator over a whole :class:`~medgan.data.Volume`
  slice by slice, in overlapping tiles blended with a separable triangular (linear) weight,
  and return a Volume with the same affine, in the same physical units.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from medgan.data.intensity import IntensityWindow
from medgan.data.volume import Volume

Degrade = Callable[[np.ndarray, np.random.Generator], np.ndarray]


class DegradedPairs(Dataset):
    """``(degraded, clean)`` pairs ``(1, H, W)`` in [-1, 1] from clean physical slices.

    Args:
        slices: clean slices ``(N, H, W)`` in physical units (HU for CT).
        degrade: ``f(slice, rng) -> degraded slice`` in the same units.
        window: the intensity map of both images to [-1, 1].
    """

    def __init__(
        self, slices: np.ndarray, degrade: Degrade, window: IntensityWindow, seed: int = 0
    ) -> None:
        self.slices, self.degrade, self.window, self.seed = (
            np.asarray(slices, np.float32),
            degrade,
            window,
            seed,
        )

    def __len__(self) -> int:
        return len(self.slices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        clean = self.slices[i]
        bad = self.degrade(clean, np.random.default_rng([self.seed, i]))
        return (
            torch.from_numpy(self.window.to_unit(bad))[None].float(),
            torch.from_numpy(self.window.to_unit(clean))[None].float(),
        )


def _ramp(n: int, overlap: int) -> np.ndarray:
    w = np.ones(n, np.float32)
    if overlap > 0:
        r = (np.arange(overlap, dtype=np.float32) + 1) / (overlap + 1)
        w[:overlap], w[-overlap:] = r, r[::-1]
    return w


def _starts(size: int, tile: int, step: int) -> list[int]:
    if size <= tile:
        return [0]
    s = list(range(0, size - tile + 1, step))
    if s[-1] != size - tile:
        s.append(size - tile)
    return s


@torch.no_grad()
def enhance(
    volume: Volume,
    generator: nn.Module,
    window: IntensityWindow,
    axis: int = 0,
    tile: int = 64,
    overlap: int = 16,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
) -> Volume:
    """Apply ``generator`` (``(B, 1, tile, tile)`` in [-1, 1] -> same) to every slice along
    ``axis`` of ``volume`` in tiles overlapping by ``overlap`` pixels; blend with linear
    weights; map back to physical units with ``window.from_unit``. Tiles are padded (with
    the window's low value) where the slice is smaller than ``tile``."""
    generator = generator.eval().to(device)
    arr = np.moveaxis(np.asarray(volume.array, np.float32), axis, 0)
    unit = window.to_unit(arr)
    n, h, w = unit.shape
    ph, pw = max(0, tile - h), max(0, tile - w)
    unit = np.pad(unit, ((0, 0), (0, ph), (0, pw)), constant_values=-1.0)
    H, W = unit.shape[1:]
    weight = np.outer(_ramp(tile, overlap), _ramp(tile, overlap))
    out = np.zeros_like(unit)
    norm = np.zeros((H, W), np.float32)
    coords = [
        (y, x) for y in _starts(H, tile, tile - overlap) for x in _starts(W, tile, tile - overlap)
    ]
    for y, x in coords:
        norm[y : y + tile, x : x + tile] += weight
    for k0 in range(0, n, batch_size):
        block = unit[k0 : k0 + batch_size]
        for y, x in coords:
            t = torch.from_numpy(
                np.ascontiguousarray(block[:, None, y : y + tile, x : x + tile])
            ).to(device)
            pred = generator(t).float().cpu().numpy()[:, 0]
            out[k0 : k0 + batch_size, y : y + tile, x : x + tile] += pred * weight
    out = (out / norm)[:, :h, :w]
    result = np.moveaxis(window.from_unit(np.clip(out, -1, 1)), 0, axis)
    return volume.with_array(result.astype(np.float32), enhanced_by=type(generator).__name__)
