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
from medgan.tasks.translation import translate

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
    ``axis`` of ``volume`` in tiles overlapping by ``overlap`` pixels, blended with linear
    weights (:func:`~medgan.tasks.translation.translate`); input and output share
    ``window``, so the result is in the input's physical units, with the same affine."""
    return translate(
        volume,
        generator,
        window,
        axis=axis,
        tile=tile,
        overlap=overlap,
        batch_size=batch_size,
        device=device,
        enhanced_by=type(generator).__name__,
    )
