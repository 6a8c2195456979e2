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
    """Batches ``(B, 1, H, W)`` in [-1, 1]; images of different sizes come in separate batches."""
    from medgan.data import SliceDataset, list_series, load, load_png

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_file():
        sources = [path]
    else:
        pngs = sorted(path.rglob("*.png"))
        niftis = sorted(p for p in path.rglob("*") if p.name.lower().endswith((".nii", ".nii.gz")))
        if pngs:
            groups: dict[tuple[int, ...], list[torch.Tensor]] = {}
            for p in pngs:
                v = load_png(p)
                scale = 65535.0 if v.array.max() > 255 else 255.0
                x = torch.from_numpy(v.array / (scale / 2) - 1.0).float()
                groups.setdefault(tuple(x.shape), []).append(x)
            for imgs in groups.values():
                for i in range(0, len(imgs), batch_size):
                    yield torch.stack(imgs[i : i + batch_size])
            return
        sources = niftis or [s for files in list_series(path).values() for s in [files[0].parent]]
        if not sources:
            raise DataError(f"{path}: no PNG, NIfTI or DICOM images found")
        if not niftis:  # DICOM: one volume per series
            sources = [load(path, series_uid=uid) for uid in list_series(path)]
    ds = SliceDataset(sources, axis, min_foreground=min_foreground)
    items = [ds[i] for i in range(len(ds))]
    shapes: dict[tuple[int, ...], list[torch.Tensor]] = {}
    for x in items:
        shapes.setdefault(tuple(x.shape), []).append(x)
    for imgs in shapes.values():
        for i in range(0, len(imgs), batch_size):
            yield torch.stack(imgs[i : i + batch_size])
