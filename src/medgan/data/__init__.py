"""Medical image data: Volumes with geometry, DICOM/NIfTI/PNG I/O, intensity maps,
resampling, datasets (slices, patches, pairs) and embedded data.

Data sets are found by name like models and losses (``register``, ``build``,
``available``; also by import path ``"package.module:Name"``):

>>> from medgan import data
>>> ds = data.build("ct_phantoms", n=16, size=32)
>>> data.available()  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from medgan.data.datasets import (
    PairedSliceDataset,
    PatchDataset,
    PNGFolder,
    SliceDataset,
    UnpairedDataset,
    VolumeCache,
)
from medgan.data.dicom import list_series, load_dicom_file, load_dicom_series
from medgan.data.embedded import embedded
from medgan.data.intensity import CT_WINDOWS, IntensityWindow
from medgan.data.io import load, load_png, save_dicom_series, save_png
from medgan.data.nifti import load_nifti, save_nifti
from medgan.data.phantoms import CTPhantomSlices, ct_phantom_hu
from medgan.data.resample import resample
from medgan.data.sampling import ResumableSampler
from medgan.data.toy import EightGaussians, GaussianMixture, TwentyFiveGaussians
from medgan.data.volume import Volume
from medgan.registry import DATASETS

register = DATASETS.register
available = DATASETS.available


def build(name: str, **kwargs: Any) -> Any:
    """Build the data set registered as ``name`` (or named by ``"package.module:Name"``);
    unknown names list what exists."""
    return DATASETS.build(name, **kwargs)


__all__ = [
    "UnpairedDataset",
    "available",
    "build",
    "register",
    "CT_WINDOWS",
    "CTPhantomSlices",
    "EightGaussians",
    "GaussianMixture",
    "TwentyFiveGaussians",
    "IntensityWindow",
    "PNGFolder",
    "PairedSliceDataset",
    "PatchDataset",
    "ResumableSampler",
    "SliceDataset",
    "Volume",
    "VolumeCache",
    "ct_phantom_hu",
    "embedded",
    "list_series",
    "load",
    "load_dicom_file",
    "load_dicom_series",
    "load_nifti",
    "load_png",
    "resample",
    "save_dicom_series",
    "save_nifti",
    "save_png",
]
