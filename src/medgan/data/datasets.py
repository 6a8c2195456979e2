"""Torch datasets over Volumes: 2D slices, 3D patches, aligned pairs, PNG folders.

Every image item is a float32 tensor ``(1, *spatial)`` in [-1, 1] (through an
:class:`~medgan.data.intensity.IntensityWindow`); label items are int64 ``(*spatial)``.
Sources may be Volumes or paths; paths are decoded once and kept (in memory, or as
memory-mapped ``.npy`` files under ``cache_dir``, shared by DataLoader workers).
``transform`` is any callable on the item (MONAI/torchio transforms work).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from medgan.data.intensity import IntensityWindow, WindowSpec
from medgan.data.io import load
from medgan.data.tiles import tile_corners
from medgan.data.volume import Volume
from medgan.errors import ConfigError, DataError
from medgan.registry import DATASETS

Source = Volume | str | Path


class VolumeCache:
    """Decode each path once; with ``cache_dir`` keep voxels as memory-mapped ``.npy``."""

    def __init__(self, cache_dir: str | Path | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._mem: dict[str, Volume] = {}

    def get(self, source: Source) -> Volume:
        """The Volume of ``source``: a Volume is returned as is; a path is decoded on first use
        (or read from ``cache_dir``, memory-mapped) and the same Volume returned after that."""
        if isinstance(source, Volume):
            return source
        key = str(Path(source).resolve())
        if key in self._mem:
            return self._mem[key]
        if self.cache_dir is not None:
            digest = hashlib.sha1(key.encode()).hexdigest()[:16]
            npy = self.cache_dir / f"{digest}.npy"
            aff, meta = npy.with_suffix(".affine.npy"), npy.with_suffix(".meta.json")
            if not (npy.exists() and aff.exists() and meta.exists()):
                decoded = load(source)
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                np.save(aff, decoded.affine)
                meta.write_text(json.dumps(decoded.meta, default=str))
                tmp = npy.with_suffix(f".{os.getpid()}.tmp.npy")
                np.save(tmp, decoded.array)
                os.replace(tmp, npy)  # atomic: a crash never leaves a half-written cache
            vol = Volume(np.load(npy, mmap_mode="r"), np.load(aff), json.loads(meta.read_text()))
        else:
            vol = load(source)
        self._mem[key] = vol
        return vol


def _axis(vol: Volume, axis: int | str) -> int:
    return vol.axis_of(axis) if isinstance(axis, str) else int(axis)


def _square(x: torch.Tensor, size: int | None) -> torch.Tensor:
    """Pad ``(C, H, W)`` to a square (with the minimum), then resize to ``size``."""
    if size is None:
        return x
    h, w = x.shape[-2:]
    if h != w:
        m = max(h, w)
        pad = ((m - w) // 2, m - w - (m - w) // 2, (m - h) // 2, m - h - (m - h) // 2)
        x = F.pad(x, pad, value=float(x.min()))
    if x.shape[-1] != size:
        x = F.interpolate(
            x[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )[0]
        x = x.clamp(-1.0, 1.0)  # antialiasing can overshoot the model range by ~1e-7
    return x


@DATASETS.register("slices")
class SliceDataset(Dataset):
    """2D slices along ``axis`` (an int, or "axial"/"coronal"/"sagittal") of every volume.

    Args:
        sources: Volumes or paths (DICOM folders/files, NIfTI, PNG); one or a list.
        axis: the slice direction: "axial", "coronal" or "sagittal" (the array axis closest
            to it, from each volume's affine), or an array axis 0..2.
        window: intensity map to [-1, 1] (see :meth:`IntensityWindow.resolve`).
        min_foreground: keep slices whose fraction of pixels above ``foreground_level``
            (in [-1, 1] units) is at least this, in [0, 1] (0 keeps all).
        foreground_level: the [-1, 1] value above which a pixel counts as foreground
            (-0.9: above the bottom 5% of the window).
        size: pad to square (with the slice's minimum) and resize to ``size`` x ``size``
            pixels (bilinear, antialiased); None keeps the native size.
        transform: applied to every item ``(C, H, W)`` (MONAI/torchio transforms work);
            None returns the item as is.
        cache_dir: a folder where decoded volumes are kept as memory-mapped ``.npy`` files
            (shared by DataLoader workers, reused across runs); None keeps them in memory.
    """

    def __init__(
        self,
        sources: Sequence[Source] | Source,
        axis: int | str = "axial",
        window: WindowSpec = None,
        min_foreground: float = 0.0,
        foreground_level: float = -0.9,
        size: int | None = None,
        transform: Callable[[torch.Tensor], Any] | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        if isinstance(sources, Volume | str | Path):
            sources = [sources]
        self.cache = VolumeCache(cache_dir)
        self.volumes = [self.cache.get(s) for s in sources]
        if not self.volumes:
            raise DataError("SliceDataset: no sources given")
        self.windows = [IntensityWindow.resolve(window, v) for v in self.volumes]
        self.axes = [_axis(v, axis) for v in self.volumes]
        self.size, self.transform = size, transform
        self.index: list[tuple[int, int]] = []
        for vi, (v, w, ax) in enumerate(zip(self.volumes, self.windows, self.axes, strict=True)):
            arr = v.array if v.array.ndim == 3 else v.array[0]
            unit = w.to_unit(np.moveaxis(np.asarray(arr), ax, 0))
            frac = (unit > foreground_level).reshape(unit.shape[0], -1).mean(1)
            self.index += [(vi, k) for k in np.flatnonzero(frac >= min_foreground)]
        if not self.index:
            raise DataError(f"SliceDataset: no slice has >= {min_foreground:.0%} foreground")

    def __len__(self) -> int:
        return len(self.index)

    def slice_array(self, i: int) -> np.ndarray:
        """Slice ``i`` as stored, before windowing and resizing: float32 ``(C, H, W)`` (C = 1
        for a single-channel volume) in the volume's units (HU for CT)."""
        vi, k = self.index[i]
        v = self.volumes[vi]
        arr = np.take(v.array, k, axis=self.axes[vi] + (v.array.ndim - 3))
        return arr if arr.ndim == 3 else arr[None]  # (C, H, W)

    def __getitem__(self, i: int) -> torch.Tensor:
        vi, _ = self.index[i]
        x = torch.from_numpy(np.ascontiguousarray(self.windows[vi].to_unit(self.slice_array(i))))
        x = _square(x.float(), self.size)
        return self.transform(x) if self.transform else x


@DATASETS.register("patches")
class PatchDataset(Dataset):
    """3D patches ``(1, p, p, p)`` from volumes.

    mode "random": ``samples_per_volume`` patches at uniform positions; "grid": tiles with
    stride ``p`` covering each volume (the last tile aligned to the edge); "label": centres
    drawn inside ``labels > 0`` with probability ``label_fraction``, else uniform. Item i is
    a pure function of (seed, i), so epochs and workers are reproducible.

    Args:
        sources: Volumes or paths (DICOM folders/files, NIfTI); one or a list. Every
            spatial side must be at least ``patch_size``.
        patch_size: side p of the cubic patches, in voxels.
        mode: "random", "grid" or "label" (above).
        samples_per_volume: patches per volume in the "random" and "label" modes.
        labels: label volumes aligned with ``sources`` (one per source, integer classes,
            0 = background); items are then ``(image, labels (p, p, p) int64)``. Required
            for mode "label".
        label_fraction: in mode "label", the probability in [0, 1] that a patch is drawn
            around a labelled voxel (centred on it where the volume's edges allow).
        window: intensity map to [-1, 1] (see :meth:`IntensityWindow.resolve`).
        seed: with the item index, seeds each patch position.
        transform: applied to every item (the image, or the ``(image, labels)`` pair).
        cache_dir: a folder for memory-mapped decoded volumes (as in :class:`SliceDataset`);
            None keeps them in memory.
    """

    def __init__(
        self,
        sources: Sequence[Source] | Source,
        patch_size: int = 32,
        mode: str = "random",
        samples_per_volume: int = 16,
        labels: Sequence[Source] | None = None,
        label_fraction: float = 0.5,
        window: WindowSpec = None,
        seed: int = 0,
        transform: Callable[[torch.Tensor], Any] | None = None,
        cache_dir: str | Path | None = None,
    ) -> None:
        if mode not in ("random", "grid", "label"):
            raise ConfigError(f"PatchDataset mode must be random, grid or label, got {mode!r}")
        if isinstance(sources, Volume | str | Path):
            sources = [sources]
        self.cache = VolumeCache(cache_dir)
        self.volumes = [self.cache.get(s) for s in sources]
        self.windows = [IntensityWindow.resolve(window, v) for v in self.volumes]
        self.p, self.mode, self.seed, self.transform = patch_size, mode, seed, transform
        self.spv, self.label_fraction = samples_per_volume, label_fraction
        for v in self.volumes:
            if min(v.spatial_shape) < patch_size:
                raise DataError(f"volume {v.spatial_shape} is smaller than patch_size={patch_size}")
        self.label_vols = [self.cache.get(s) for s in labels] if labels is not None else None
        if mode == "label":
            if self.label_vols is None:
                raise ConfigError("PatchDataset mode='label' needs labels=")
            self.fg = [np.argwhere(np.asarray(lv.array) > 0) for lv in self.label_vols]
        if mode == "grid":
            self.grid = [
                (vi, c)
                for vi, v in enumerate(self.volumes)
                for c in tile_corners(v.spatial_shape, patch_size, patch_size)
            ]

    def __len__(self) -> int:
        return len(self.grid) if self.mode == "grid" else len(self.volumes) * self.spv

    def corner(self, i: int) -> tuple[int, tuple[int, int, int]]:
        """(volume index, patch start) of item ``i``."""
        if self.mode == "grid":
            return self.grid[i]
        vi = i // self.spv
        shape = np.asarray(self.volumes[vi].spatial_shape)
        rng = np.random.default_rng([self.seed, i])
        if self.mode == "label" and len(self.fg[vi]) and rng.random() < self.label_fraction:
            centre = self.fg[vi][rng.integers(len(self.fg[vi]))]
            start = np.clip(centre - self.p // 2, 0, shape - self.p)
        else:
            start = rng.integers(0, shape - self.p + 1)
        return vi, tuple(int(s) for s in start)

    def __getitem__(self, i: int) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        vi, (a, b, c) = self.corner(i)
        sl = (..., slice(a, a + self.p), slice(b, b + self.p), slice(c, c + self.p))
        arr = np.asarray(self.volumes[vi].array[sl])
        x = torch.from_numpy(np.ascontiguousarray(self.windows[vi].to_unit(arr)))
        x = x if x.dim() == 4 else x[None]
        out: Any = x
        if self.label_vols is not None:
            out = (x, torch.from_numpy(np.asarray(self.label_vols[vi].array[sl])).long())
        return self.transform(out) if self.transform else out


@DATASETS.register("paired_slices")
class PairedSliceDataset(Dataset):
    """Aligned 2D slice pairs ``(source, target)`` from two lists of co-registered volumes
    (same shape and affine): e.g. low-dose/full-dose CT, T1/T2, image/label.

    Items are ``(source (C, H, W), target (C, H, W))`` in [-1, 1].

    Args:
        sources: the input volumes (Volumes or paths).
        targets: the target volumes, one per source, aligned with it (same spatial shape,
            affines within 1e-3); DataError otherwise.
        axis: the slice direction, as in :class:`SliceDataset`.
        source_window: intensity map of the sources to [-1, 1]
            (see :meth:`IntensityWindow.resolve`).
        target_window: intensity map of the targets to [-1, 1]; unused for labels.
        target_is_label: return the target as int64 labels ``(H, W)`` instead of an image.
        min_foreground: keep the slices whose source has at least this fraction of pixels
            above -0.9 (in [-1, 1] units), in [0, 1]; 0 keeps all.
        transform: applied to every ``(source, target)`` pair.
    """

    def __init__(
        self,
        sources: Sequence[Source],
        targets: Sequence[Source],
        axis: int | str = "axial",
        source_window: WindowSpec = None,
        target_window: WindowSpec = None,
        target_is_label: bool = False,
        min_foreground: float = 0.0,
        transform: Callable[[Any], Any] | None = None,
    ) -> None:
        if len(sources) != len(targets):
            raise DataError(f"{len(sources)} sources but {len(targets)} targets")
        self.a = SliceDataset(sources, axis, source_window, min_foreground)
        cache = self.a.cache
        self.targets = [cache.get(t) for t in targets]
        for va, vb in zip(self.a.volumes, self.targets, strict=True):
            if va.spatial_shape != vb.spatial_shape or not np.allclose(
                va.affine, vb.affine, atol=1e-3
            ):
                raise DataError(
                    f"source {va.meta.get('sources')} and target {vb.meta.get('sources')} are not "
                    f"aligned (shapes {va.spatial_shape} vs {vb.spatial_shape}); "
                    "register/resample first"
                )
        self.target_is_label = target_is_label
        self.b_windows = (
            None
            if target_is_label
            else [IntensityWindow.resolve(target_window, v) for v in self.targets]
        )
        self.transform = transform

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        vi, k = self.a.index[i]
        src = self.a[i]
        tv = self.targets[vi]
        arr = np.take(tv.array, k, axis=self.a.axes[vi] + (tv.array.ndim - 3))
        if self.target_is_label:
            tgt = torch.from_numpy(np.ascontiguousarray(arr)).long()
        else:
            arr = arr if arr.ndim == 3 else arr[None]
            tgt = torch.from_numpy(np.ascontiguousarray(self.b_windows[vi].to_unit(arr))).float()
        out = (src, tgt)
        return self.transform(out) if self.transform else out


class UnpairedDataset(Dataset):
    """Items ``(a, b)`` from two unrelated image datasets (CycleGAN training).

    Item i is A's item ``i mod len(A)`` with B's item ``perm[i mod len(B)]`` for a fixed
    random permutation (``seed``): the pairing carries no meaning, only the two marginals
    matter. Length ``max(len(A), len(B))``; items that are tuples contribute their first
    element (the image). A and B items must have the same spatial size.

    Args:
        domain_a: the data set of domain A (non-empty).
        domain_b: the data set of domain B (non-empty).
        seed: seeds the permutation of B's items.
    """

    def __init__(self, domain_a: Dataset, domain_b: Dataset, seed: int = 0) -> None:
        self.a, self.b = domain_a, domain_b
        na, nb = len(domain_a), len(domain_b)  # type: ignore[arg-type]
        if not na or not nb:
            raise DataError(f"unpaired domains must be non-empty, got {na} and {nb} items")
        self.perm = np.random.default_rng(seed).permutation(nb)

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))  # type: ignore[arg-type]

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.a[i % len(self.a)]  # type: ignore[arg-type]
        b = self.b[int(self.perm[i % len(self.b)])]  # type: ignore[arg-type]
        return _image(a), _image(b)


def _image(item: Any) -> torch.Tensor:
    return item[0] if isinstance(item, tuple | list) else item


@DATASETS.register("unpaired")
def unpaired(domain_a: dict[str, Any], domain_b: dict[str, Any], seed: int = 0) -> UnpairedDataset:
    """CycleGAN data from two registered data sets: an :class:`UnpairedDataset`.

    Args:
        domain_a: domain A as ``{"name": ..., "kwargs": {...}}``, a registered data set and
            its arguments (e.g. ``mni152_slices``).
        domain_b: domain B, likewise (e.g. ``ct_phantoms`` of the same ``size``).
        seed: seeds the random pairing (:class:`UnpairedDataset`).
    """
    from medgan.config import check_kwargs
    from medgan.registry import Spec

    domains = []
    for what, d in (("domain_a", domain_a), ("domain_b", domain_b)):
        spec = Spec.from_dict(d, f"unpaired {what}")
        check_kwargs(DATASETS.get(spec.name), spec.kwargs, f"unpaired {what} {spec.name!r}")
        domains.append(DATASETS.build(spec.name, **spec.kwargs))
    return UnpairedDataset(*domains, seed=seed)


def _shared_png_scale(paths: list[Path], folder: Path) -> float:
    """The one bit depth of all the PNGs (read from headers): each image is scaled by what
    its type can hold, never by its own maximum, so a dark 16-bit image stays dark."""
    from medgan.data.io import png_max_value

    first: dict[float, Path] = {}
    for p in paths:
        first.setdefault(png_max_value(p), p)
    if len(first) > 1:
        found = ", ".join(f"{v:g} ({p.name})" for v, p in sorted(first.items()))
        raise DataError(
            f"{folder}: PNGs of different bit depths (max values {found}); one data set needs "
            "one intensity scale: convert them to the same bit depth"
        )
    return next(iter(first))


@DATASETS.register("png_folder")
class PNGFolder(Dataset):
    """All ``*.png`` under ``folder`` as grey ``(1, size, size)`` in [-1, 1]: ``v / (m/2) - 1``
    with ``m`` the largest value of the folder's one bit depth (255 for 8-bit, 65535 for
    16-bit), so all images share one scale.

    Args:
        folder: searched recursively; PNGs of different bit depths are refused (DataError).
        size: pad to square and resize to ``size`` x ``size`` pixels; None keeps each
            image's size (``(1, H, W)``).
        transform: applied to every item; None returns it as is.
    """

    def __init__(
        self,
        folder: str | Path,
        size: int | None = None,
        transform: Callable[[torch.Tensor], Any] | None = None,
    ) -> None:
        self.folder = Path(folder)
        self.paths = sorted(self.folder.rglob("*.png"))
        if not self.paths:
            raise DataError(f"{self.folder}: no .png files found")
        self.size, self.transform = size, transform
        self.max_value = _shared_png_scale(self.paths, self.folder)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        from medgan.data.io import load_png

        vol = load_png(self.paths[i])
        if vol.meta["max_value"] != self.max_value:  # replaced since the folder was listed
            raise DataError(
                f"{self.paths[i]}: bit depth changed (max value {vol.meta['max_value']:g}, the "
                f"folder's images have {self.max_value:g})"
            )
        x = torch.from_numpy(vol.array / (self.max_value / 2) - 1.0).float()
        x = _square(x, self.size)
        return self.transform(x) if self.transform else x
