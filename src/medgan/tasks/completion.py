"""Generating what is missing: inpainting of masked regions and synthesis of missing slices.

- :class:`InpaintingPairs`: ``(masked image + mask, image)`` pairs with random boxes; the
  generator input has 2 channels (image with the box set to -1, and the mask).
- :func:`inpaint`: fill masked voxels of a Volume slice by slice, keeping known voxels.
- :class:`MissingSlicePairs`: ``(slices k-1 and k+1, slice k)`` pairs along an axis; the
  naive baseline is their mean (linear interpolation).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from medgan.data.intensity import IntensityWindow
from medgan.data.volume import Volume


def random_box_mask(
    shape: tuple[int, int], rng: np.random.Generator, frac: tuple[float, float] = (0.2, 0.4)
) -> np.ndarray:
    """A float32 mask (1 = missing) with one box of ``frac`` of each side."""
    h, w = shape
    bh, bw = (int(s * rng.uniform(*frac)) for s in shape)
    y, x = rng.integers(0, h - bh + 1), rng.integers(0, w - bw + 1)
    m = np.zeros(shape, np.float32)
    m[y : y + bh, x : x + bw] = 1
    return m


class InpaintingPairs(Dataset):
    """Items ``(input (2, H, W), target (1, H, W))`` from slices ``(N, H, W)`` in [-1, 1]."""

    def __init__(
        self, slices: np.ndarray, seed: int = 0, frac: tuple[float, float] = (0.2, 0.4)
    ) -> None:
        self.slices, self.seed, self.frac = np.asarray(slices, np.float32), seed, frac

    def __len__(self) -> int:
        return len(self.slices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.slices[i]
        m = random_box_mask(x.shape, np.random.default_rng([self.seed, i]), self.frac)
        inp = np.stack([np.where(m > 0, -1.0, x), m]).astype(np.float32)
        return torch.from_numpy(inp), torch.from_numpy(x[None].copy())


@torch.no_grad()
def inpaint(
    volume: Volume, mask: np.ndarray, model: nn.Module, window: IntensityWindow, axis: int = 0
) -> Volume:
    """Replace voxels where ``mask`` is true by the model's prediction; others stay as they are."""
    arr = np.moveaxis(window.to_unit(np.asarray(volume.array, np.float32)), axis, 0)
    m = np.moveaxis(np.asarray(mask, np.float32), axis, 0)
    inp = np.stack([np.where(m > 0, -1.0, arr), m], axis=1).astype(np.float32)
    pred = model.eval()(torch.from_numpy(inp)).numpy()[:, 0]
    out = np.where(m > 0, pred, arr)
    return volume.with_array(np.moveaxis(window.from_unit(out), 0, axis).astype(np.float32))


class MissingSlicePairs(Dataset):
    """Items ``(neighbours (2, H, W), middle (1, H, W))`` from a stack ``(N, H, W)`` in [-1, 1]."""

    def __init__(self, stack: np.ndarray) -> None:
        self.stack = np.asarray(stack, np.float32)

    def __len__(self) -> int:
        return len(self.stack) - 2

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.stack
        return torch.from_numpy(np.stack([s[i], s[i + 2]])), torch.from_numpy(s[i + 1][None].copy())
