"""Resampling a Volume to a new voxel spacing, keeping its physical position.

The first voxel centre stays where it is; new voxel i along an axis sits at old index
``i * new_spacing / old_spacing``, so the affine's columns scale by that ratio. Images use
linear interpolation (order 1), label maps nearest neighbour (order 0).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from medgan.data.volume import Volume
from medgan.errors import ConfigError


def resample(volume: Volume, spacing: tuple[float, float, float], labels: bool = False) -> Volume:
    """Resample ``volume`` to ``spacing`` (three positive values in mm, array axis order),
    keeping the first voxel centre in place; with ``labels`` True nearest neighbour (label
    maps), else linear interpolation."""
    new = np.asarray(spacing, dtype=np.float64)
    if new.shape != (3,) or not (new > 0).all():
        raise ConfigError(f"spacing must be three positive numbers (mm), got {spacing}")
    old = np.asarray(volume.spacing)
    ratio = new / old
    shape = np.floor((np.asarray(volume.spatial_shape) - 1) / ratio + 1e-9).astype(int) + 1
    grids = np.meshgrid(
        *[np.arange(n) * r for n, r in zip(shape, ratio, strict=True)], indexing="ij"
    )
    coords = np.stack(grids)
    order = 0 if labels else 1

    def one(a: np.ndarray) -> np.ndarray:
        return ndimage.map_coordinates(a, coords, order=order, mode="nearest").astype(np.float32)

    arr = volume.array
    out = np.stack([one(c) for c in arr]) if arr.ndim == 4 else one(arr)
    affine = volume.affine.copy()
    affine[:3, :3] = affine[:3, :3] * ratio
    return volume.with_array(out, affine)
