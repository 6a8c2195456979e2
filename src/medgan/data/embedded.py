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

Registered data sets made from them (``DATASETS``): ``mni152_slices`` (noise-to-image),
``mni152_views`` (slices labelled by view: class-conditional), ``mni152_t1_to_tissue``
(T1 -> grey/white-matter probabilities: pix2pix), ``mni152_tissue_labels`` (T1 with its
label map: segmentation); with ``ct_phantoms``, ``unpaired`` makes MR/CT domains (CycleGAN).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from medgan.data.volume import Volume
from medgan.errors import DataError
from medgan.registry import DATASETS

NAMES = ("mni152_t1", "mni152_tissue", "mni152_tissue_prob", "ct_small", "ct_phantoms")


def _mni() -> dict[str, np.ndarray]:
    with resources.files("medgan.data").joinpath("embedded/mni152_2mm.npz").open("rb") as f:
        z = np.load(f)
        return {k: z[k] for k in z.files}


def embedded(name: str, **kwargs: Any) -> Any:
    """Load embedded data by ``name``, one of ``NAMES`` (see the module docstring): a
    :class:`~medgan.data.volume.Volume`, or for "ct_phantoms" a
    :class:`~medgan.data.phantoms.CTPhantomSlices` built with ``**kwargs``."""
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
    """Real brain MRI slices for demos: a :class:`~medgan.data.datasets.SliceDataset` of the
    embedded MNI152 T1 (2 mm), 0.5-99.5 percentile window.

    Args:
        size: side of the items ``(1, size, size)`` in [-1, 1], in pixels (slices padded to
            square, then resized).
        axis: the slice direction: "axial", "coronal" or "sagittal".
        min_foreground: keep the slices with at least this fraction (in [0, 1]) of pixels
            above -0.9 after the window (brain, not background).
    """
    from medgan.data.datasets import SliceDataset

    return SliceDataset(embedded("mni152_t1"), axis, min_foreground=min_foreground, size=size)


# ---------------------------------------------------------------- data for every job
# Ready-made data sets of the embedded MNI152 template for the experiment files of
# examples/configs/: labelled slices (class-conditional GANs), aligned T1 -> tissue pairs
# (pix2pix), T1 slices with a label map (segmentation). Slices are chosen, windowed, padded
# to a square and resized as ``mni152_slices`` does, so image i of each is the same slice.

VIEWS = ("axial", "coronal", "sagittal")


class LabelledSlices(Dataset):
    """Items ``(image, k)`` of several image data sets ``parts``, ``k`` the index of the
    part: the items of the first part first (label 0), then those of the second, ..."""

    def __init__(self, parts: list[Dataset]) -> None:
        self.parts = parts
        self.offsets = np.cumsum([0] + [len(p) for p in parts])  # type: ignore[arg-type]

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        k = int(np.searchsorted(self.offsets, i, side="right")) - 1
        return self.parts[k][i - int(self.offsets[k])], k


@DATASETS.register("mni152_views")
def mni152_views(size: int = 64, min_foreground: float = 0.15) -> LabelledSlices:
    """Class-conditional demo data: MNI152 T1 slices labelled by view, 0 axial, 1 coronal,
    2 sagittal. Items ``(image (1, size, size) in [-1, 1], label)``; ``size`` and
    ``min_foreground`` as in :func:`mni152_slices`."""
    return LabelledSlices([mni152_slices(size, axis, min_foreground) for axis in VIEWS])


class _AlignedSlices(Dataset):
    """``(image, target)``: slice i of ``images`` (a SliceDataset of one volume) with the same
    slice of ``target``, squared and resized the same way: probabilities (C, S, S) mapped
    [0, 1] -> [-1, 1] (bilinear), or labels (S, S) int64 (nearest)."""

    def __init__(self, images: Any, target: Volume, labels: bool) -> None:
        self.images, self.target, self.labels = images, target, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        _, k = self.images.index[i]
        axis = self.images.axes[0] + (self.target.array.ndim - 3)
        t = torch.from_numpy(np.ascontiguousarray(np.take(self.target.array, k, axis=axis)))
        t = t[None] if t.dim() == 2 else t
        t = t.float() if self.labels else t.float() * 2 - 1  # background: label 0 / prob -1
        fill = 0.0 if self.labels else -1.0
        h, w = t.shape[-2:]
        m, size = max(h, w), self.images.size
        pad = ((m - w) // 2, m - w - (m - w) // 2, (m - h) // 2, m - h - (m - h) // 2)
        t = F.pad(t, pad, value=fill)
        if self.labels:
            t = F.interpolate(t[None], size=(size, size), mode="nearest-exact")[0, 0].long()
        else:
            t = F.interpolate(
                t[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False
            )[0].clamp(-1.0, 1.0)
        return self.images[i], t


@DATASETS.register("mni152_t1_to_tissue")
def mni152_t1_to_tissue(
    size: int = 64, axis: str = "axial", min_foreground: float = 0.15
) -> _AlignedSlices:
    """Paired modality synthesis (pix2pix): MNI152 T1 slices ``(1, size, size)`` with the
    grey- and white-matter probability maps of the same slice ``(2, size, size)``, both
    in [-1, 1] (probability 0 -> -1, 1 -> 1). ``size``, ``axis`` and ``min_foreground`` as
    in :func:`mni152_slices`."""
    return _AlignedSlices(
        mni152_slices(size, axis, min_foreground), embedded("mni152_tissue_prob"), False
    )


@DATASETS.register("mni152_tissue_labels")
def mni152_tissue_labels(
    size: int = 64, axis: str = "axial", min_foreground: float = 0.15
) -> _AlignedSlices:
    """Segmentation: MNI152 T1 slices ``(1, size, size)`` in [-1, 1] with their label maps
    ``(size, size)`` int64 (0 background, 1 grey matter, 2 white matter). ``size``,
    ``axis`` and ``min_foreground`` as in :func:`mni152_slices`."""
    return _AlignedSlices(
        mni152_slices(size, axis, min_foreground), embedded("mni152_tissue"), True
    )
