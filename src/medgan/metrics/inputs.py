"""Images for evaluation from a path: a folder of PNGs, DICOM series, NIfTI volumes, a
single DICOM/NIfTI file, or precomputed ``.npz`` statistics. Volumes become 2D slices along
``axis`` through their intensity window (CT "full" window for HU, percentiles otherwise)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch

from medgan.errors import DataError


def image_batches(
    path: str | Path, axis: str = "axial", min_foreground: float = 0.05, batch_size: int = 64
) -> Iterator[torch.Tensor]:
    """Batches ``(B, 1, H, W)`` in [-1, 1]; images of different sizes come in separate batches.

    A folder of samples that also holds ``grid.png`` (the overview grid older versions of
    ``medgan sample`` wrote among the samples) is refused: the grid is not a sample.

    Args:
        path: a folder of PNGs (read as they are), of NIfTI volumes or of DICOM series
            (one volume per series), or a single NIfTI or DICOM file.
        axis: for volumes, the slice direction: "axial", "coronal", "sagittal" (from the
            affine) or an array axis 0..2.
        min_foreground: for volumes, keep the slices whose fraction of pixels above -0.9
            (in [-1, 1] units, after the window) is at least this, in [0, 1].
        batch_size: images per batch, at most.

    Raises:
        DataError: the path does not exist, holds no images, or is a samples folder with
            a legacy ``grid.png``.
    """
    from medgan.data import PNGFolder, SliceDataset, list_series
    from medgan.data.dicom import load_series_files

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    legacy = path / "grid.png"
    if path.is_dir() and legacy.is_file() and next(path.glob("sample_*"), None) is not None:
        raise DataError(
            f"{legacy} is the overview grid an older `medgan sample` wrote among the samples, "
            "not a sample: move it out of the folder so that only the samples are scored"
        )
    if path.is_dir() and next(path.rglob("*.png"), None) is not None:
        ds = PNGFolder(path)
    else:
        if path.is_file():
            sources: list = [path]
        else:
            sources = sorted(
                p for p in path.rglob("*") if p.name.lower().endswith((".nii", ".nii.gz"))
            )
            if not sources:  # DICOM: one volume per series, headers read once
                sources = [
                    load_series_files(files, str(path)) for files in list_series(path).values()
                ]
            if not sources:
                raise DataError(f"{path}: no PNG, NIfTI or DICOM images found")
        ds = SliceDataset(sources, axis, min_foreground=min_foreground)
    by_shape: dict[tuple[int, ...], list[torch.Tensor]] = {}
    for i in range(len(ds)):
        x = ds[i]
        by_shape.setdefault(tuple(x.shape), []).append(x)
    for imgs in by_shape.values():
        for i in range(0, len(imgs), batch_size):
            yield torch.stack(imgs[i : i + batch_size])


def image_tensor(path: str | Path, axis: str = "axial") -> torch.Tensor:
    """All images of ``path`` (as :func:`image_batches` reads them, volumes sliced along
    ``axis``) as one tensor ``(N, 1, H, W)`` in [-1, 1]; images of different sizes are
    refused (DataError)."""
    batches = list(image_batches(path, axis=axis))
    sizes = sorted({tuple(b.shape[1:]) for b in batches})
    if len(sizes) > 1:
        raise DataError(
            f"{path}: images of different sizes {sizes}; resample them to one size first"
        )
    return torch.cat(batches)
