"""One entry point to read images, and writers for NIfTI, DICOM series and PNG."""

from __future__ import annotations

import datetime
import zlib
from pathlib import Path

import numpy as np

from medgan.data.dicom import load_dicom_file, load_dicom_series
from medgan.data.nifti import load_nifti, save_nifti
from medgan.data.volume import LPS_TO_RAS, Volume
from medgan.errors import ConfigError, DataError
from medgan.limits import check_size

__all__ = ["load", "load_png", "save_dicom_series", "save_nifti", "save_png"]


def load(path: str | Path, **kwargs) -> Volume:
    """Read ``path`` as a Volume: a DICOM folder (one series), a DICOM file (also enhanced
    multi-frame), ``.nii``/``.nii.gz``, or a 2D PNG. Keyword arguments go to the specific
    loader (``series_uid`` for DICOM folders; ``canonical``, ``nonfinite`` for NIfTI)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        return load_dicom_series(path, **kwargs)
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return load_nifti(path, **kwargs)
    if name.endswith(".png"):
        return load_png(path)
    return load_dicom_file(path)


#: the largest stored value of each PNG mode medgan reads (PIL's mode names)
PNG_MAX_VALUE = {
    "1": 1.0,
    "L": 255.0,
    "P": 255.0,
    "RGB": 255.0,
    "RGBA": 255.0,
    "LA": 255.0,
    "I;16": 65535.0,
    "I;16B": 65535.0,
    "I": 65535.0,  # PIL's mode for 16-bit grey PNGs in older versions
}


def png_max_value(path: str | Path) -> float:
    """The largest value the bit depth of the PNG at ``path`` can store (1, 255 or 65535),
    read from its header only: the scale a data set of such images shares, whatever each
    file's own maximum."""
    with _open_png(Path(path)) as im:
        return PNG_MAX_VALUE[im.mode]


def _open_png(path: Path):
    """PIL image of ``path``, header read, size checked against the memory limit."""
    from PIL import Image, UnidentifiedImageError

    try:
        im = Image.open(path)
    except Image.DecompressionBombError as e:
        raise DataError(f"{path}: refused as a decompression bomb by PIL ({e})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as e:
        raise DataError(f"{path}: not a readable PNG ({e})") from None
    if im.mode not in PNG_MAX_VALUE:
        im.close()
        raise DataError(f"{path}: unsupported PNG mode {im.mode}")
    try:
        check_size(4 * im.size[0] * im.size[1], f"{path}: a {im.size[0]} x {im.size[1]} PNG")
    except DataError:
        im.close()
        raise
    return im


def load_png(path: str | Path) -> Volume:
    """The grey-scale PNG at ``path`` as a 1-slice Volume ``(1, H, W)`` (unit: the stored
    integer value; 1 mm pixels); colour images are converted to grey.

    ``meta["max_value"]`` is the largest value its bit depth can hold (255 or 65535)."""
    import warnings

    from PIL import Image

    path = Path(path)
    with _open_png(path) as im:
        max_value = PNG_MAX_VALUE[im.mode]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # size checked
                if im.mode in ("RGB", "RGBA", "P", "LA"):
                    im = im.convert("L")
                arr = np.asarray(im, dtype=np.float32)
        except (OSError, SyntaxError, ValueError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: not a readable PNG ({e})") from None
    # rows run top->bottom, no patient position: index (0, r, c) -> (c, r, 0) mm
    affine = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
    return Volume(
        arr[None],
        affine,
        {
            "modality": "OT",
            "sources": [str(path)],
            "unit": "pixel value",
            "format": "png",
            "max_value": max_value,
        },
    )


def save_png(
    image: np.ndarray, path: str | Path, value_range: tuple[float, float] = (-1.0, 1.0)
) -> Path:
    """Write the 2D array ``image`` ``(H, W)`` to ``path`` as an 8-bit grey PNG, mapping
    ``value_range`` (lo, hi) linearly to 0..255 (values outside clipped); returns the
    path."""
    from PIL import Image

    lo, hi = value_range
    arr = np.clip((np.asarray(image, dtype=np.float64) - lo) / (hi - lo), 0, 1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(arr * 255).astype(np.uint8)).save(path)
    return path


_SOP_CLASS = {"CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4"}

# Type 2 attributes (must be present, may be empty) of the CT/MR Image IODs (PS3.3 A.3, A.4)
# whose value medgan cannot know: Patient, General Study, Frame of Reference, General
# Equipment, General Image and the modality's image module.
_TYPE2_COMMON = (
    "PatientBirthDate",
    "PatientSex",
    "ReferringPhysicianName",
    "AccessionNumber",
    "PositionReferenceIndicator",
    "PatientOrientation",
    "Laterality",
    "AcquisitionNumber",
)
_TYPE2_EMPTY = {
    "CT": (*_TYPE2_COMMON, "KVP"),
    "MR": (
        *_TYPE2_COMMON,
        "MRAcquisitionType",
        "EchoTime",
        "EchoTrainLength",
        "RepetitionTime",
        "ImagingFrequency",
        "MagneticFieldStrength",
    ),
}


def _ds(value: float) -> str:
    """A decimal string (DS) of at most 16 characters, as the value representation demands."""
    from pydicom.valuerep import format_number_as_ds

    return format_number_as_ds(float(value))


def save_dicom_series(
    volume: Volume,
    folder: str | Path,
    modality: str | None = None,
    series_description: str = "medgan synthetic",
) -> list[Path]:
    """Write a Volume (axes: slice, row, column) as a CT or MR DICOM series, one file per slice.

    Fresh UIDs; geometry from the affine (RAS -> LPS); values stored as int16 with
    RescaleSlope/Intercept chosen to cover the data range (slope 1 for integer HU). Marked
    derived and synthetic (ImageType DERIVED\\SECONDARY, ImageComments, BurnedInAnnotation
    NO); no patient-identifying attribute is copied from anywhere.

    Args:
        volume: a single-channel Volume (3 axes), finite values in its physical units (HU
            for CT), with a finite, invertible affine.
        folder: where the files go (created if missing).
        modality: "CT" or "MR"; None takes ``volume.meta["modality"]``, else "CT".
        series_description: SeriesDescription, at most 64 characters and no backslash.

    Returns:
        The files written, one per slice.
    """
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    modality = modality or volume.meta.get("modality") or "CT"
    if modality not in _SOP_CLASS:
        raise DataError(f"save_dicom_series writes CT or MR, got modality {modality!r}")
    if volume.array.ndim != 3:
        raise DataError("save_dicom_series needs a single-channel volume (3 axes)")
    bad = int(np.count_nonzero(~np.isfinite(volume.array)))
    if bad:
        raise DataError(
            f"save_dicom_series: the volume has {bad} NaN/inf voxel(s); DICOM stores integers "
            "with one rescale per file, so one NaN would make the whole series NaN. Replace "
            "them first (e.g. np.nan_to_num)"
        )
    if not np.isfinite(volume.affine).all() or abs(np.linalg.det(volume.affine[:3, :3])) < 1e-12:
        raise DataError("save_dicom_series: the volume's affine is not finite and invertible")
    if len(series_description) > 64 or "\\" in series_description:
        raise ConfigError(
            f"series_description is {len(series_description)} characters; DICOM's LO value "
            "representation allows at most 64 and no backslash"
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lps = np.linalg.inv(LPS_TO_RAS) @ volume.affine
    step, col_vec, row_vec = lps[:3, 0], lps[:3, 1], lps[:3, 2]  # axes: slice, row, column
    dr, dc = np.linalg.norm(col_vec), np.linalg.norm(row_vec)
    x, y = row_vec / dc, col_vec / dr  # X: along a row (increasing column); Y: down a column
    if abs(float(np.dot(x, y))) > 1e-4:
        raise DataError(
            "the volume's in-plane axes are not orthogonal; resample it before writing DICOM"
        )
    data = volume.array.astype(np.float64)
    lo, hi = float(data.min()), float(data.max())
    integer = np.allclose(data, np.round(data)) and lo >= -32768 and hi <= 32767
    if integer:
        slope, intercept = 1.0, 0.0
    else:
        slope = max(hi - lo, 1e-6) / 65534.0
        intercept = (hi + lo) / 2.0
    stored = np.clip(np.round((data - intercept) / slope), -32767, 32767).astype(np.int16)

    study, series, frame_of_ref = generate_uid(), generate_uid(), generate_uid()
    now = datetime.datetime.now()
    paths = []
    for k in range(stored.shape[0]):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = _SOP_CLASS[modality]
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        p = folder / f"slice_{k:05d}.dcm"
        ds = FileDataset(str(p), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = meta.MediaStorageSOPClassUID
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = (
            study,
            series,
            frame_of_ref,
        )
        ds.Modality = modality
        ds.PatientName = "SYNTHETIC^MEDGAN"
        ds.PatientID = "SYNTHETIC"
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
        for keyword in _TYPE2_EMPTY[modality]:  # required, unknown: present and empty
            setattr(ds, keyword, "")
        ds.Manufacturer = "medgan"
        ds.StudyID = "1"
        if modality == "MR":  # type 1 in the MR Image module; "RM": research mode
            ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions = "RM", "NONE", ""
        ds.SeriesDescription = series_description
        ds.ImageType = ["DERIVED", "SECONDARY"]
        ds.ImageComments = "synthetic image generated by medgan; not a real patient"
        ds.BurnedInAnnotation = "NO"
        ds.SeriesNumber, ds.InstanceNumber = 1, k + 1
        pos = lps[:3, 3] + k * step
        ds.ImagePositionPatient = [_ds(v) for v in pos]
        ds.ImageOrientationPatient = [_ds(v) for v in np.r_[x, y]]
        ds.PixelSpacing = [_ds(dr), _ds(dc)]
        ds.SliceThickness = _ds(np.linalg.norm(step))
        ds.SliceLocation = _ds(np.dot(pos, np.cross(x, y)))
        ds.Rows, ds.Columns = stored.shape[1], stored.shape[2]
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = _ds(slope), _ds(intercept)
        ds.RescaleType = "HU" if modality == "CT" else "US"
        ds.PixelData = stored[k].tobytes()
        pydicom.dcmwrite(p, ds, enforce_file_format=True)
        paths.append(p)
    return paths
