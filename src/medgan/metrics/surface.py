"""Boundary distances between two label maps: the 95th-percentile Hausdorff distance and
the average symmetric surface distance, per class, in physical units (the conventions of
MONAI's ``compute_hausdorff_distance(percentile=95)`` and
``compute_average_surface_distance(symmetric=True)``, which the tests compare against).

For a class k, the surface S_P of the prediction's mask is its voxels with a 4- (2D) or
6- (3D) neighbour outside the mask (mask minus its erosion), S_T likewise for the target;
``d(p, S_T)`` is the Euclidean distance (with voxel ``spacing``) from p to the nearest voxel
of S_T. Then

    HD95 = max( P95_{p in S_P} d(p, S_T),  P95_{t in S_T} d(t, S_P) )
    ASSD = ( sum_{p in S_P} d(p, S_T) + sum_{t in S_T} d(t, S_P) ) / (|S_P| + |S_T|)

NaN where both maps lack the class, inf where only one has it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor


def _surface(mask: np.ndarray) -> np.ndarray:
    """The voxels of ``mask`` with a face neighbour outside it (the image border counts as
    outside)."""
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def _directed(a: np.ndarray, b: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """Distances from every surface voxel of ``a`` to the nearest surface voxel of ``b``."""
    to_b = ndimage.distance_transform_edt(~b, sampling=spacing)
    return to_b[a]


def surface_distances(
    pred: Tensor | np.ndarray,
    target: Tensor | np.ndarray,
    num_classes: int,
    spacing: Sequence[float] | None = None,
    ignore_background: bool = True,
) -> tuple[Tensor, Tensor]:
    """``(hd95, assd)`` per class, float64 tensors ``(K - 1,)`` (or ``(K,)`` with the
    background), in the units of ``spacing`` (voxels when None).

    Args:
        pred: integer label map of one image, 2D ``(H, W)`` or 3D ``(X, Y, Z)``.
        target: the reference label map, same shape.
        num_classes: K; classes are 0..K-1.
        spacing: voxel size along each axis (default 1 each).
        ignore_background: leave out class 0.
    """
    p = np.asarray(pred.cpu() if isinstance(pred, Tensor) else pred)
    t = np.asarray(target.cpu() if isinstance(target, Tensor) else target)
    if p.shape != t.shape or p.ndim not in (2, 3):
        raise ValueError(f"need two 2D or 3D label maps of one shape, got {p.shape}, {t.shape}")
    spacing = tuple(float(s) for s in ([1.0] * p.ndim if spacing is None else spacing))
    if len(spacing) != p.ndim:
        raise ValueError(f"spacing has {len(spacing)} values for a {p.ndim}D map")
    hd, asd = [], []
    for k in range(1 if ignore_background else 0, num_classes):
        sp, st = _surface(p == k), _surface(t == k)
        if not sp.any() and not st.any():
            hd.append(float("nan"))
            asd.append(float("nan"))
        elif not sp.any() or not st.any():
            hd.append(float("inf"))
            asd.append(float("inf"))
        else:
            d_pt, d_tp = _directed(sp, st, spacing), _directed(st, sp, spacing)
            hd.append(max(float(np.percentile(d_pt, 95)), float(np.percentile(d_tp, 95))))
            asd.append(float(np.concatenate([d_pt, d_tp]).mean()))
    return torch.tensor(hd, dtype=torch.float64), torch.tensor(asd, dtype=torch.float64)
