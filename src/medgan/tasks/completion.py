"""Generating what is missing: inpainting of masked regions and synthesis of missing slices.

- :func:`harmonic_fill`: the classical fill, the solution of Laplace's equation inside the
  mask with the known pixels as boundary values.
- :class:`InpaintingPairs`: ``(coarse fill + mask, image)`` pairs with random boxes; the
  generator input has 2 channels (the image with the box filled harmonically, or set to -1
  with ``fill="constant"``, and the mask). A residual U-Net then learns a correction to the
  classical fill (coarse-to-fine, as in Yu et al. 2018) instead of the whole content.
- :func:`inpaint`: fill masked voxels of a Volume slice by slice, keeping known voxels.
- :class:`MissingSlicePairs`: ``(slices k-1 and k+1, slice k)`` pairs along an axis; the
  naive baseline is their mean (linear interpolation).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import sparse
from scipy.sparse.linalg import spsolve
from torch import nn
from torch.utils.data import Dataset

from medgan.data.intensity import IntensityWindow
from medgan.data.volume import Volume


def random_box_mask(
    shape: tuple[int, int], rng: np.random.Generator, frac: tuple[float, float] = (0.2, 0.4)
) -> np.ndarray:
    """A float32 mask of ``shape`` ``(H, W)`` (1 = missing, 0 = known) with one box whose
    sides are fractions of the image's, each drawn from ``rng`` uniformly in the range
    ``frac`` (lo, hi), at a uniform position."""
    h, w = shape
    bh, bw = (int(s * rng.uniform(*frac)) for s in shape)
    y, x = rng.integers(0, h - bh + 1), rng.integers(0, w - bw + 1)
    m = np.zeros(shape, np.float32)
    m[y : y + bh, x : x + bw] = 1
    return m


def harmonic_fill(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill ``mask`` (true = missing) of a 2D ``image`` with the harmonic interpolant.

    Solves Laplace's equation  u(p) = mean of u over p's 4-neighbours  for every missing
    pixel p (the 5-point discrete Laplacian = 0), known pixels acting as Dirichlet boundary
    values; at the image border only in-image neighbours count (zero-flux). One sparse
    linear solve; known pixels are returned unchanged.
    """
    img = np.asarray(image, np.float64)
    m = np.asarray(mask) > 0
    if img.ndim != 2 or m.shape != img.shape:
        raise ValueError(f"need a 2D image and a mask of its shape, got {img.shape}, {m.shape}")
    out = img.copy()
    if not m.any():
        return out.astype(np.float32)
    if m.all():
        raise ValueError("the whole image is masked: nothing to interpolate from")
    h, w = m.shape
    ys, xs = np.nonzero(m)
    index = np.full(m.shape, -1)
    index[ys, xs] = np.arange(len(ys))
    diag, rhs = np.zeros(len(ys)), np.zeros(len(ys))
    rows, cols = [], []
    for dy, dx in ((1, 0), (-1, 0), (0, 1), (0, -1)):
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        p, qy, qx = np.nonzero(inside)[0], ny[inside], nx[inside]
        diag[p] += 1
        unknown = m[qy, qx]
        rows.append(p[unknown])
        cols.append(index[qy[unknown], qx[unknown]])
        np.add.at(rhs, p[~unknown], img[qy[~unknown], qx[~unknown]])
    r, c = np.concatenate(rows), np.concatenate(cols)
    n = len(ys)
    a = sparse.csr_matrix(
        (
            np.concatenate([diag, -np.ones(len(r))]),
            (np.concatenate([np.arange(n), r]), np.concatenate([np.arange(n), c])),
        ),
        shape=(n, n),
    )
    out[ys, xs] = spsolve(a, rhs)
    return out.astype(np.float32)


def _coarse_input(x: np.ndarray, m: np.ndarray, fill: str) -> np.ndarray:
    """The generator input ``(2, H, W)``: coarse fill of ``x`` where ``m``, and the mask."""
    if fill == "harmonic":
        coarse = harmonic_fill(x, m)
    elif fill == "constant":
        coarse = np.where(m > 0, -1.0, x)
    else:
        raise ValueError(f"fill must be 'harmonic' or 'constant', got {fill!r}")
    return np.stack([coarse, m]).astype(np.float32)


class InpaintingPairs(Dataset):
    """Items ``(input (2, H, W), target (1, H, W))`` from slices in [-1, 1]: input =
    (coarse fill, mask) with one random box per item.

    Args:
        slices: the clean slices ``(N, H, W)`` in [-1, 1].
        seed: with the index, seeds each item's box (item i is fixed per ``(seed, i)``).
        frac: the range (lo, hi) of the box sides as fractions of the image sides
            (:func:`random_box_mask`).
        fill: the coarse fill of the box: "harmonic" (:func:`harmonic_fill`) or "constant"
            (-1); ValueError otherwise.
    """

    def __init__(
        self,
        slices: np.ndarray,
        seed: int = 0,
        frac: tuple[float, float] = (0.2, 0.4),
        fill: str = "harmonic",
    ) -> None:
        self.slices, self.seed, self.frac, self.fill = (
            np.asarray(slices, np.float32),
            seed,
            frac,
            fill,
        )
        _coarse_input(np.zeros((3, 3), np.float32), np.eye(3), fill)  # fail early on bad names

    def __len__(self) -> int:
        return len(self.slices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.slices[i]
        m = random_box_mask(x.shape, np.random.default_rng([self.seed, i]), self.frac)
        return torch.from_numpy(_coarse_input(x, m, self.fill)), torch.from_numpy(x[None].copy())


@torch.no_grad()
def inpaint(
    volume: Volume,
    mask: np.ndarray,
    model: nn.Module,
    window: IntensityWindow,
    axis: int = 0,
    fill: str = "harmonic",
) -> Volume:
    """Replace voxels where ``mask`` is true by the model's prediction; others stay as they
    are.

    Args:
        volume: the volume to complete, in physical units.
        mask: ``volume.array``'s shape; nonzero = missing.
        model: ``(N, 2, H, W)`` (coarse fill, mask) in [-1, 1] -> ``(N, 1, H, W)`` in
            [-1, 1], as trained on :class:`InpaintingPairs`; run in eval mode, on the CPU,
            all slices in one batch.
        window: maps the volume's units to [-1, 1] as in training (and back).
        axis: the array axis (0..2) along which 2D slices are taken.
        fill: the coarse fill the model was trained with ("harmonic" or "constant").

    Returns:
        A Volume with the same geometry, in the input's units.
    """
    arr = np.moveaxis(window.to_unit(np.asarray(volume.array, np.float32)), axis, 0)
    m = np.moveaxis(np.asarray(mask, np.float32), axis, 0)
    inp = np.stack([_coarse_input(a, mk, fill) for a, mk in zip(arr, m, strict=True)])
    pred = model.eval()(torch.from_numpy(inp)).numpy()[:, 0]
    out = np.where(m > 0, pred, arr)
    return volume.with_array(np.moveaxis(window.from_unit(out), 0, axis).astype(np.float32))


class MissingSlicePairs(Dataset):
    """Items ``(neighbours (2, H, W), middle (1, H, W))`` from ``stack`` ``(N, H, W)`` in
    [-1, 1]: item i is slices i and i + 2 with slice i + 1 (N - 2 items)."""

    def __init__(self, stack: np.ndarray) -> None:
        self.stack = np.asarray(stack, np.float32)

    def __len__(self) -> int:
        return len(self.stack) - 2

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.stack
        return torch.from_numpy(np.stack([s[i], s[i + 2]])), torch.from_numpy(s[i + 1][None].copy())
