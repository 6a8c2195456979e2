"""Image-to-image translation of whole Volumes (enhancement, missing-modality synthesis).

:func:`translate` runs a trained 2D generator over every slice of a
:class:`~medgan.data.Volume` along one axis, in overlapping tiles blended with a separable
triangular (linear) weight, so that tile seams do not show and any slice size works.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from medgan.data.intensity import IntensityWindow
from medgan.data.volume import Volume


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
def translate(
    volume: Volume,
    generator: nn.Module,
    window: IntensityWindow,
    out_window: IntensityWindow | None = None,
    axis: int = 0,
    tile: int = 64,
    overlap: int = 16,
    batch_size: int = 16,
    device: str | torch.device = "cpu",
    **meta: Any,
) -> Volume:
    """Translate ``volume`` slice by slice with a 2D ``generator``.

    Args:
        volume: ``(X, Y, Z)`` or ``(C_in, X, Y, Z)`` in physical units.
        generator: ``(B, C_in, tile, tile)`` in [-1, 1] -> ``(B, C_out, tile, tile)`` in [-1, 1].
        window: maps the input's units to [-1, 1].
        out_window: maps [-1, 1] back to the output's units (default ``window``: same units).
        axis: spatial axis (0..2) along which slices are taken.
        tile, overlap: tile side and overlap in pixels; slices smaller than ``tile`` are
            padded with -1 (the window's low value) and cropped back.
        meta: entries added to the result's meta.

    Returns:
        A Volume with the same affine: ``(X, Y, Z)`` when ``C_out == 1``, else
        ``(C_out, X, Y, Z)``, in ``out_window``'s units.
    """
    if not 0 <= axis <= 2:
        raise ValueError(f"axis must be a spatial axis 0, 1 or 2, got {axis}")
    out_window = out_window or window
    generator = generator.eval().to(device)
    arr = np.asarray(volume.array, np.float32)
    arr = arr if arr.ndim == 4 else arr[None]
    unit = np.moveaxis(window.to_unit(arr), axis + 1, 0)  # (n, C_in, H, W)
    n, _, h, w = unit.shape
    ph, pw = max(0, tile - h), max(0, tile - w)
    unit = np.pad(unit, ((0, 0), (0, 0), (0, ph), (0, pw)), constant_values=-1.0)
    H, W = unit.shape[2:]
    weight = np.outer(_ramp(tile, overlap), _ramp(tile, overlap))
    coords = [
        (y, x) for y in _starts(H, tile, tile - overlap) for x in _starts(W, tile, tile - overlap)
    ]
    norm = np.zeros((H, W), np.float32)
    for y, x in coords:
        norm[y : y + tile, x : x + tile] += weight
    out: np.ndarray | None = None
    for k0 in range(0, n, batch_size):
        block = unit[k0 : k0 + batch_size]
        for y, x in coords:
            t = torch.from_numpy(np.ascontiguousarray(block[:, :, y : y + tile, x : x + tile]))
            pred = generator(t.to(device)).float().cpu().numpy()
            if out is None:
                out = np.zeros((n, pred.shape[1], H, W), np.float32)
            out[k0 : k0 + batch_size, :, y : y + tile, x : x + tile] += pred * weight
    assert out is not None
    out = np.clip(out / norm, -1, 1)[:, :, :h, :w]
    result = np.moveaxis(out_window.from_unit(out), 0, axis + 1).astype(np.float32)
    if result.shape[0] == 1:
        result = result[0]
    return volume.with_array(result, **meta)
