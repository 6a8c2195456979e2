"""NIfTI (.nii, .nii.gz) <-> Volume, through nibabel.

Intensities come from ``get_fdata`` (scl_slope/scl_inter applied). The affine is the
image's best affine (sform, else qform), mapping array indices (i, j, k) to RAS+ mm.
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from medgan.data.volume import Volume
from medgan.errors import DataError, GeometryError, MedganError
from medgan.limits import check_size


def load_nifti(
    path: str | Path,
    canonical: bool = True,
    nonfinite: str = "error",
    four_d: str = "channels",
) -> Volume:
    """Load a NIfTI file as a Volume.

    Args:
        path: a ``.nii`` or ``.nii.gz`` file.
        canonical: reorder axes to RAS+ (nibabel's ``as_closest_canonical``).
        nonfinite: "error" (raise, naming how many voxels are NaN/inf), or "zero"/"min"
            to replace them with 0 or the finite minimum.
        four_d: "channels" (4th axis becomes a leading channel axis) or "error".
    """
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        img = nib.load(path)
        _check_header(img, path)
        if len(img.shape) < 3:  # a 2D image: one slice, so that it can be reoriented
            img = nib.Nifti1Image(
                np.asanyarray(img.dataobj).reshape(img.shape + (1,) * (3 - len(img.shape))),
                img.affine,
                img.header,
            )
        if canonical:
            try:
                img = nib.as_closest_canonical(img)
            except nib.orientations.OrientationError as e:
                raise GeometryError(
                    f"{path}: the header's affine {np.round(img.affine, 4).tolist()} has "
                    f"degenerate axes and cannot be reoriented to RAS+ ({e})"
                ) from None
        data = np.asarray(img.get_fdata(dtype=np.float32))
    except MedganError:
        raise
    except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as e:
        raise DataError(f"{path}: truncated or corrupt file ({type(e).__name__}: {e})") from None
    except (nib.filebasedimages.ImageFileError, nib.spatialimages.HeaderDataError) as e:
        raise DataError(f"{path}: not a valid NIfTI image ({e})") from None
    except ValueError as e:  # nibabel: "Expected N bytes, got M" on short data
        raise DataError(f"{path}: unreadable image data, truncated? ({e})") from None
    if data.ndim == 5 and data.shape[3] == 1:
        data = data[:, :, :, 0]
    if data.ndim == 2:
        data = data[:, :, None]
    if data.ndim == 4:
        if four_d == "error":
            raise DataError(f"{path}: 4D image {data.shape}; pass four_d='channels' to load it")
        data = np.moveaxis(data, 3, 0)
    elif data.ndim != 3:
        raise DataError(f"{path}: expected a 3D (or 4D) image, got shape {data.shape}")
    bad = ~np.isfinite(data)
    if bad.any():
        if nonfinite == "error":
            raise DataError(
                f"{path}: {int(bad.sum())} NaN/inf voxels; "
                "pass nonfinite='zero' or 'min' to replace them"
            )
        fill = 0.0 if nonfinite == "zero" else float(np.min(data[~bad])) if (~bad).any() else 0.0
        data = np.where(bad, np.float32(fill), data)
    meta = {"modality": "", "sources": [str(path)], "unit": "arbitrary", "format": "nifti"}
    # medgan's writer records modality and unit in the header's 80-byte description
    descrip = img.header.get("descrip", b"")
    descrip = (descrip.item() if hasattr(descrip, "item") else descrip).decode("latin-1", "ignore")
    for part in descrip.split():
        key, _, value = part.partition("=")
        if key in ("modality", "unit") and value:
            meta[key] = value
    return Volume(np.ascontiguousarray(data), img.affine, meta)


def _check_header(img, path: Path) -> None:
    """Refuse, from the header alone, data medgan cannot represent and geometry that would
    give a NaN or singular affine; and anything that would allocate more than the limit."""
    dtype = img.get_data_dtype()
    if dtype.kind == "c":
        raise DataError(
            f"{path}: complex-valued data ({dtype}); medgan reads real intensities and will not "
            "drop the imaginary part: save the magnitude (or real and imaginary parts as a 4D "
            "image) and load that"
        )
    if dtype.kind not in "iufb":
        raise DataError(f"{path}: voxel type {dtype} is not a scalar intensity (RGB?)")
    shape = tuple(int(n) for n in img.header.get_data_shape())
    if not shape or min(shape) < 1:
        raise DataError(f"{path}: the header declares an empty image (shape {shape})")
    check_size(4 * math.prod(shape), f"{path}: header shape {shape}")
    affine = img.affine
    if affine is None or not np.isfinite(affine).all():
        raise GeometryError(
            f"{path}: the header's affine (sform/qform) has NaN/inf entries: no voxel geometry"
        )
    if abs(np.linalg.det(affine[:3, :3])) < 1e-12:
        source = "sform" if int(img.header["sform_code"]) > 0 else "qform"
        raise GeometryError(
            f"{path}: the header's {source} affine is singular (zero or repeated axes: "
            f"{np.round(affine[:3, :3], 4).tolist()}); voxels have no position in space"
        )


def save_nifti(volume: Volume, path: str | Path) -> Path:
    """Write ``volume`` to ``path`` as NIfTI-1 (float32) with its affine as sform and qform
    (a channel axis becomes the 4th axis); returns the path."""
    import nibabel as nib

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = volume.array if volume.array.ndim == 3 else np.moveaxis(volume.array, 0, -1)
    img = nib.Nifti1Image(data, volume.affine)
    img.set_sform(volume.affine, code=1)
    img.set_qform(volume.affine, code=1)
    modality = volume.meta.get("modality") or ""
    unit = str(volume.meta.get("unit") or "").replace(" ", "_")
    img.header["descrip"] = f"medgan modality={modality} unit={unit}"[:79].encode()
    nib.save(img, path)
    return path
