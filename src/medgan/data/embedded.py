"""Data that ships with medgan, so demos and tests run with no download.

- ``"mni152_t1"``: MNI ICBM152 2009a T1-weighted brain MRI (real, averaged over 152
  adults), 2 mm, RAS+, intensities 0..255 (arbitrary MR units). See embedded/NOTICE.txt.
- ``"mni152_tissue"``: the matching label map (0 background, 1 grey, 2 white matter, where
  that tissue's probability is > 0.5).
- ``"mni152_tissue_prob"``: the matching grey- and white-matter probability maps, a
  2-channel Volume ``(2, X, Y, Z)`` in [0, 1] (quantised to 1/255): a second "modality"
  aligned voxel by voxel with the T1, for missing-modality synthesis.
- ``"ct_small"``: a real 128x128 CT slice in HU (pydicom's CT_small.dcm, from the
  pydicom wheel).
- ``"ct_phantoms"``: procedural thorax CT slices in HU (a Dataset; unlimited variety).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import numpy as np

from medgan.data.volume import Volume
from medgan.errors import DataError
from medgan.registry import DATASETS

NAMES = ("mni152_t1", "mni152_tissue", "mni152_tissue_prob", "ct_small", "ct_phantoms")


def _mni() -> dict[str, np.ndarray]:
    with resources.files("medgan.data").joinpath("embedded/mni152_2mm.npz").open("rb") as f:
        z = np.load(f)
        return {k: z[k] for k in z.files}


def embedded(name: str, **kwargs: Any) -> Any:
    """Load embedded data by name (see the module docstring)."""
    if name == "mni152_t1":
        d = _mni()
        return Volume(
            d["t1"].astype(np.float32),
            d["affine"],
            {"modality": "MR", "unit": "arbitrary", "sources": ["embedded:mni152_t1"]},
        )
    if name == "mni152_tissue":
        d = _mni()
        return Volume(
            d["labels"].astype(np.float32),
            d["affine"],
            {
                "modality": "SEG",
                "unit": "label",
                "sources": ["embedded:mni152_tissue"],
                "label_names": ["background", "grey matter", "white matter"],
            },
        )
    if name == "mni152_tissue_prob":
        d = _mni()
        return Volume(
            d["tissue_prob"].astype(np.float32) / 255.0,
            d["affine"],
            {
                "modality": "PROB",
                "unit": "probability",
                "sources": ["embedded:mni152_tissue_prob"],
                "channel_names": ["grey matter", "white matter"],
            },
        )
    if name == "ct_small":
        from pydicom.data import get_testdata_file

        from medgan.data.dicom import load_dicom_file

        return load_dicom_file(get_testdata_file("CT_small.dcm"))
    if name == "ct_phantoms":
        from medgan.data.phantoms import CTPhantomSlices

        return CTPhantomSlices(**kwargs)
    raise DataError(f"unknown embedded data {name!r}; available: {', '.join(NAMES)}")


@DATASETS.register("mni152_slices")
def mni152_slices(size: int = 64, axis: str = "axial", min_foreground: float = 0.15):
    """Real brain MRI slices for demos: the embedded MNI152 T1 along ``axis``, slices with at
    least ``min_foreground`` brain, 0.5-99.5 percentile window, ``(1, size, size)`` in [-1, 1]."""
    from medgan.data.datasets import SliceDataset

    return SliceDataset(embedded("mni152_t1"), axis, min_foreground=min_foreground, size=size)
