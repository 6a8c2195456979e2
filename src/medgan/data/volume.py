"""``Volume``: voxels and their geometry, kept together.

``array`` is float32 with 3 axes (a 2D image is a volume with one slice); ``affine`` is the
4x4 matrix mapping a voxel index ``(i0, i1, i2, 1)``, in array axis order, to millimetres
in RAS+ patient coordinates (axes increasing towards the patient's Right, Anterior,
Superior, as in NIfTI/nibabel). DICOM's LPS+ coordinates are converted on load with
``diag(-1, -1, 1)``. Spacing is derived from the affine, so the two never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True, eq=False)
class Volume:
    """Voxels ``array`` (float32, 3 axes; channels, if any, as a leading 4th axis), the
    ``affine`` (4x4, index -> RAS+ mm) and ``meta`` (modality, series_uid, source paths,
    ``unit``: "HU" for CT, "arbitrary" otherwise, ...)."""

    array: np.ndarray
    affine: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        arr = np.asanyarray(self.array)  # keeps np.memmap (cached volumes) memory-mapped
        if arr.dtype != np.float32:
            arr = arr.astype(np.float32)
        if arr.ndim not in (3, 4):
            raise ValueError(
                f"Volume array must have 3 spatial axes (+1 channel axis), got {arr.shape}"
            )
        aff = np.asarray(self.affine, dtype=np.float64)
        if aff.shape != (4, 4):
            raise ValueError(f"Volume affine must be 4x4, got {aff.shape}")
        object.__setattr__(self, "array", arr)
        object.__setattr__(self, "affine", aff)

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """The voxel counts along the 3 spatial axes (the channel axis, if any, left out)."""
        return tuple(self.array.shape[-3:])  # type: ignore[return-value]

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size in mm along each array axis (norms of the affine's columns)."""
        return tuple(float(s) for s in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]

    @property
    def orientation(self) -> str:
        """Axis codes, e.g. "SPL": array axis 0 points Superior, 1 Posterior, 2 Left."""
        import nibabel as nib

        return "".join(nib.aff2axcodes(self.affine))

    def axis_of(self, direction: str) -> int:
        """Array axis closest to ``direction``: "axial" (S-I), "coronal" (A-P), "sagittal" (L-R)."""
        world = {"sagittal": 0, "coronal": 1, "axial": 2}[direction]
        cos = np.abs(self.affine[:3, :3][world]) / np.array(self.spacing)
        return int(np.argmax(cos))

    def with_array(
        self, array: np.ndarray, affine: np.ndarray | None = None, **meta: Any
    ) -> Volume:
        """A new Volume with other voxels ``array`` and, when given, another ``affine`` (None
        keeps this one); ``meta`` is this Volume's updated with the keyword arguments."""
        return replace(
            self,
            array=array,
            affine=self.affine if affine is None else affine,
            meta={**self.meta, **meta},
        )

    def index_to_world(self, index: np.ndarray) -> np.ndarray:
        """``index`` ``(..., 3)`` voxel indices (array axis order, fractional allowed) ->
        ``(..., 3)`` RAS+ mm."""
        index = np.asarray(index, dtype=np.float64)
        return index @ self.affine[:3, :3].T + self.affine[:3, 3]

    def to_canonical(self) -> Volume:
        """Reorder/flip axes so that array axes point R, A, S (nibabel's closest canonical)."""
        import nibabel as nib
        from nibabel import orientations as o

        ornt = o.io_orientation(self.affine)
        if np.array_equal(ornt, [[0, 1], [1, 1], [2, 1]]):
            return self
        spatial = self.spatial_shape
        arr = self.array
        if arr.ndim == 4:  # channels first: move them last for nibabel, then back
            arr = np.moveaxis(o.apply_orientation(np.moveaxis(arr, 0, -1), ornt), -1, 0)
        else:
            arr = o.apply_orientation(arr, ornt)
        affine = self.affine @ o.inv_ornt_aff(ornt, spatial)
        del nib
        return self.with_array(np.ascontiguousarray(arr), affine)

    def __repr__(self) -> str:
        sp = ", ".join(f"{s:.3g}" for s in self.spacing)
        return (
            f"Volume(shape={self.array.shape}, spacing=({sp}) mm, orientation={self.orientation}, "
            f"modality={self.meta.get('modality')}, unit={self.meta.get('unit')})"
        )
