"""DICOM series and files -> :class:`~medgan.data.volume.Volume` with exact geometry.

Geometry (DICOM PS3.3 C.7.6.2.1.1): for a slice with ImagePositionPatient S,
ImageOrientationPatient (X, Y) (X: direction of increasing column index, Y: of increasing
row index) and PixelSpacing (dr, dc) = (between rows, between columns), pixel (r, c) sits at

    P(r, c) = S + c * dc * X + r * dr * Y          (LPS+ mm)

Slices are ordered by the projection of S on the normal n = X x Y, never by
InstanceNumber or file name. The volume array has axes (slice, row, column) and

    affine_LPS = [[D, dr * Y, dc * X, S_0], [0, 0, 0, 1]],   D = (S_last - S_0) / (n - 1)

converted to RAS+ by ``diag(-1, -1, 1, 1) @ affine_LPS``. Stored values v become
``slope * v + intercept`` (HU for CT); MONOCHROME1 images are inverted so that larger
always means brighter.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from medgan.data.volume import LPS_TO_RAS, Volume
from medgan.errors import DataError, GeometryError, MissingDecoderError

log = logging.getLogger(__name__)

#: SOP classes that hold no image (structured reports, RT plans/structures, waveforms, ...)
_NON_IMAGE_MODALITIES = {"SR", "RTPLAN", "RTSTRUCT", "RTRECORD", "ECG", "KO", "PR", "DOC", "REG"}

# relative tolerance for "equal" slice gaps, and absolute for orientation cosines
GAP_RTOL, GAP_ATOL_MM, ORIENT_ATOL = 0.01, 0.01, 1e-4
# how far direction cosines may be from unit length / right angles (rounding in the header)
ORIENT_UNIT_TOL = 1e-2
# plausible voxel sizes: from 0.1 micrometre to 100 m (beyond them the header is damaged)
MIN_MM, MAX_MM = 1e-4, 1e5
MAX_POSITION_MM = 1e7


def _pydicom():
    import pydicom

    return pydicom


def read_header(path: Path) -> Any:
    """Read the header (no pixels) of the DICOM file at ``path``, every value converted
    (a pydicom ``Dataset``); non-DICOM or damaged files raise DataError naming the file."""
    pydicom = _pydicom()
    try:
        return _parsed(pydicom.dcmread(path, stop_before_pixels=True))
    except pydicom.errors.InvalidDicomError as e:
        raise DataError(f"{path}: not a DICOM file ({e})") from None
    except Exception as e:  # EOF, bad VRs, ...
        raise DataError(f"{path}: cannot read DICOM header ({type(e).__name__}: {e})") from None


def _parsed(ds: Any) -> Any:
    """``ds`` with every element's value converted now (pydicom converts lazily): a damaged
    value (a decimal string "1e-", an unknown VR) fails here, inside the reader's error
    handling that names the file, not later in whatever code first touches it."""
    for elem in ds.iterall():
        elem.value  # noqa: B018 (the access is the conversion)
    return ds


def _read_full(path: Path) -> Any:
    pydicom = _pydicom()
    try:
        return _parsed(pydicom.dcmread(path))
    except pydicom.errors.InvalidDicomError as e:
        raise DataError(f"{path}: not a DICOM file ({e})") from None
    except Exception as e:
        raise DataError(f"{path}: cannot read DICOM file ({type(e).__name__}: {e})") from None


def _check_image(ds: Any, path: Path, header_only: bool = False) -> None:
    modality = str(ds.get("Modality", ""))
    if modality in _NON_IMAGE_MODALITIES:
        raise DataError(
            f"{path}: a {modality} object ({ds.get('SOPClassUID', '?')!s}) holds no image"
        )
    if header_only and ("Rows" not in ds or "Columns" not in ds):
        raise DataError(f"{path}: the DICOM file has no image (no Rows/Columns)")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    samples = _int(ds, "SamplesPerPixel", 1, path)
    if photometric not in ("MONOCHROME1", "MONOCHROME2") or samples != 1:
        raise DataError(
            f"{path}: PhotometricInterpretation {photometric} with {samples} sample(s) per "
            "pixel: a colour or palette image, not grey-scale intensities; medgan reads "
            "MONOCHROME1/MONOCHROME2 only (convert the image to grey-scale first)"
        )
    image_type = [str(v).upper() for v in _as_list(ds.get("ImageType", []))]
    if "MOSAIC" in image_type or (0x0019, 0x100A) in ds:
        n = ds.get((0x0019, 0x100A))
        tiles = f"{n.value} slices" if n is not None else "several slices"
        raise DataError(
            f"{path}: a Siemens MOSAIC image ({tiles} tiled in one frame); medgan does not "
            "unpack mosaics: convert the series to NIfTI first (e.g. `dcm2niix`) and load that"
        )
    if header_only:
        return
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise DataError(f"{path}: the DICOM file has no pixel data")


def _pixels(ds: Any, path: Path) -> np.ndarray:
    """Decoded stored values; a missing decoder plug-in is named in the error."""
    try:
        arr = ds.pixel_array
    except Exception as e:
        ts = ds.file_meta.get("TransferSyntaxUID", "?") if hasattr(ds, "file_meta") else "?"
        name = getattr(ts, "name", str(ts))
        msg = str(e)
        if (
            "decode" in msg.lower()
            or "plugin" in msg.lower()
            or "handler" in msg.lower()
            or "missing required dependencies" in msg.lower()
        ):
            raise MissingDecoderError(
                f"{path}: cannot decode pixel data compressed as {name!r}. Install a decoder, e.g. "
                f"`pip install 'medgan[dicom-codecs]'` (pylibjpeg, pylibjpeg-libjpeg, "
                f"pylibjpeg-openjpeg, pylibjpeg-rle). pydicom said: {msg.splitlines()[0]}"
            ) from None
        raise DataError(
            f"{path}: pixel data unreadable (truncated?): {type(e).__name__}: {msg}"
        ) from None
    arr = np.asarray(arr)
    _check_pixel_length(ds, arr, path)
    return arr


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | bytes):
        return [value]
    try:
        return list(value)
    except TypeError:
        return [value]


def _check_pixel_length(ds: Any, arr: np.ndarray, path: Path) -> None:
    """Uncompressed pixel data must hold exactly Rows x Columns x frames values (plus the
    one pad byte DICOM allows): more means the header does not describe the data."""
    rows, cols = _int(ds, "Rows", 0, path), _int(ds, "Columns", 0, path)
    frames = _int(ds, "NumberOfFrames", 1, path)
    expected_shape = (rows, cols) if frames == 1 else (frames, rows, cols)
    if arr.shape != expected_shape:
        raise DataError(
            f"{path}: decoded pixel array {arr.shape} does not match Rows x Columns x "
            f"NumberOfFrames {expected_shape}"
        )
    ts = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if "PixelData" not in ds or (ts is not None and getattr(ts, "is_compressed", False)):
        return
    bits = _int(ds, "BitsAllocated", 16, path)
    expected = -(-rows * cols * frames * bits // 8)
    actual = len(ds.PixelData)
    if actual > expected + 1:
        raise DataError(
            f"{path}: PixelData holds {actual} bytes but Rows x Columns x NumberOfFrames x "
            f"BitsAllocated = {rows} x {cols} x {frames} x {bits} bits = {expected} bytes; "
            "the header does not describe the pixel data (wrong Rows/Columns/NumberOfFrames?)"
        )


def _int(ds: Any, tag: str, default: int, path: Path) -> int:
    """An integer attribute (absent or empty: ``default``); a damaged value is a DataError."""
    raw = ds.get(tag)
    if raw is None or str(raw).strip() == "":
        return default
    try:
        return int(raw)
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{path}: {tag} is not one integer: {str(raw)[:40]!r}") from None


def _float_list(value: Any, n: int, what: str, path: Path) -> np.ndarray:
    try:
        out = np.array([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{path}: {what} is not numeric: {value!r}") from None
    if out.shape != (n,):
        raise DataError(f"{path}: {what} must have {n} values, got {len(out)}")
    return out


def _rescale(values: np.ndarray, ds_or_item: Any, ds: Any, path: Path) -> tuple[np.ndarray, str]:
    slope = _rescale_value(ds_or_item, "RescaleSlope", 1.0, path)
    intercept = _rescale_value(ds_or_item, "RescaleIntercept", 0.0, path)
    if slope == 0.0:
        raise DataError(f"{path}: RescaleSlope is 0, which would erase the image")
    with np.errstate(over="ignore", invalid="ignore"):
        out = values.astype(np.float32) * np.float32(slope) + np.float32(intercept)
    if not np.isfinite(out).all():
        raise DataError(
            f"{path}: RescaleSlope {slope:g} / RescaleIntercept {intercept:g} take the stored "
            "values beyond float32 (inf/NaN voxels); the rescale tags are damaged"
        )
    if str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        # invert within the range of representable values, so max<->min are swapped
        bits = _int(ds, "BitsStored", 16, path)
        lo, hi = (
            (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
            if _int(ds, "PixelRepresentation", 0, path)
            else (0, 2**bits - 1)
        )
        out = np.float32(slope * (lo + hi) + 2 * intercept) - out
    modality = str(ds.get("Modality", ""))
    unit = "HU" if modality == "CT" else str(ds_or_item.get("RescaleType", "") or "arbitrary")
    return out, unit


def _rescale_value(ds: Any, tag: str, default: float, path: Path) -> float:
    raw = ds.get(tag)
    if raw is None or str(raw).strip() == "":
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise DataError(f"{path}: {tag} is not a number: {raw!r}") from None
    if not np.isfinite(value):
        raise DataError(f"{path}: {tag} is {value}; the voxels would all be NaN/inf")
    return value


def _check_geometry(
    s: np.ndarray, iop: np.ndarray, sp: np.ndarray, path: Path
) -> tuple[np.ndarray, np.ndarray]:
    """Refuse a position, orientation or spacing that would give a NaN or singular affine;
    return the unit row and column cosines (X, Y)."""
    if not (np.isfinite(s).all() and np.abs(s).max() <= MAX_POSITION_MM):
        raise GeometryError(
            f"{path}: ImagePositionPatient {s.tolist()} is not a finite position within "
            f"{MAX_POSITION_MM:g} mm of the origin; the slice has no usable position"
        )
    if not (np.isfinite(sp).all() and (sp >= MIN_MM).all() and (sp <= MAX_MM).all()):
        raise GeometryError(
            f"{path}: PixelSpacing {sp.tolist()} must be two distances between {MIN_MM:g} "
            f"and {MAX_MM:g} mm"
        )
    x, y = iop[:3], iop[3:]
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    if not np.isfinite(iop).all() or min(nx, ny) < 1e-6:
        raise GeometryError(
            f"{path}: ImageOrientationPatient {iop.tolist()} is not two direction cosines "
            "(NaN/inf or a zero vector)"
        )
    cos = float(np.dot(x, y) / (nx * ny))
    if abs(nx - 1) > ORIENT_UNIT_TOL or abs(ny - 1) > ORIENT_UNIT_TOL or abs(cos) > ORIENT_UNIT_TOL:
        raise GeometryError(
            f"{path}: ImageOrientationPatient {iop.tolist()} is not orthonormal (|row| = "
            f"{nx:.4f}, |column| = {ny:.4f}, row . column = {cos:.4f}); the row and column "
            "directions must be unit vectors at right angles"
        )
    return x / nx, y / ny


def _thickness(ds: Any, path: Path) -> float:
    """Slice thickness of a lone slice (SpacingBetweenSlices, else SliceThickness, else 1 mm)."""
    for tag in ("SpacingBetweenSlices", "SliceThickness"):
        raw = ds.get(tag)
        if raw is None or str(raw).strip() == "":
            continue
        try:
            value = abs(float(raw))
        except (TypeError, ValueError):
            raise GeometryError(f"{path}: {tag} is not a number: {raw!r}") from None
        if not MIN_MM <= value <= MAX_MM:  # also NaN
            raise GeometryError(
                f"{path}: {tag} {raw!r} must be a distance between {MIN_MM:g} and {MAX_MM:g} mm"
            )
        return value
    return 1.0


def _geometry(ds: Any, path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(position S, row cosine X, column cosine Y, spacing (dr, dc)) of a classic slice."""
    for tag in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"):
        if tag not in ds:
            raise DataError(f"{path}: no {tag}: this image has no patient geometry")
    s = _float_list(ds.ImagePositionPatient, 3, "ImagePositionPatient", path)
    iop = _float_list(ds.ImageOrientationPatient, 6, "ImageOrientationPatient", path)
    sp = _float_list(ds.PixelSpacing, 2, "PixelSpacing", path)
    x, y = _check_geometry(s, iop, sp, path)
    return s, x, y, sp


def _affine(
    s0: np.ndarray, step: np.ndarray, x: np.ndarray, y: np.ndarray, sp: np.ndarray
) -> np.ndarray:
    lps = np.eye(4)
    lps[:3, 0] = step
    lps[:3, 1] = sp[0] * y
    lps[:3, 2] = sp[1] * x
    lps[:3, 3] = s0
    return LPS_TO_RAS @ lps


def _order_and_step(positions: np.ndarray, normal: np.ndarray, names: list[str], where: str):
    """Sort by projection on the normal; check even, non-zero gaps; return order and step."""
    proj = positions @ normal
    order = np.argsort(proj, kind="stable")
    if len(order) == 1:
        return order, normal * 1.0
    d = np.diff(proj[order])
    dup = np.flatnonzero(np.abs(d) < 1e-6)
    if dup.size:
        i = order[dup[0]]
        j = order[dup[0] + 1]
        raise GeometryError(
            f"{where}: {names[i]} and {names[j]} have the same slice position "
            f"({proj[i]:.3f} mm); several acquisitions in one series? pick one"
        )
    med = float(np.median(d))
    bad = np.flatnonzero(np.abs(d - med) > max(GAP_ATOL_MM, GAP_RTOL * abs(med)))
    if bad.size:
        k = bad[0]
        raise GeometryError(
            f"{where}: uneven slice spacing: gap of {d[k]:.3f} mm between {names[order[k]]} "
            f"and {names[order[k + 1]]} "
            f"(position {proj[order[k]]:.3f} -> {proj[order[k + 1]]:.3f} mm) "
            f"where the typical gap is {med:.3f} mm; missing slices?"
        )
    step = (positions[order[-1]] - positions[order[0]]) / (len(order) - 1)
    return order, step


def list_series(folder: str | Path) -> dict[str, list[Path]]:
    """SeriesInstanceUID -> files, for every readable DICOM file under ``folder``."""
    folder = Path(folder)
    series: dict[str, list[Path]] = defaultdict(list)
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or p.name == "DICOMDIR":
            continue
        try:
            ds = read_header(p)
        except DataError:
            log.debug("skipping non-DICOM file %s", p)
            continue
        series[str(ds.get("SeriesInstanceUID", "<no SeriesInstanceUID>"))].append(p)
    return dict(series)


def load_dicom_series(folder: str | Path, series_uid: str | None = None) -> Volume:
    """One DICOM series in ``folder`` (searched recursively) as a Volume (slice, row, col).

    With several series in the folder, pass ``series_uid``; the error lists those found.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    series = list_series(folder)
    if not series:
        raise DataError(f"{folder}: no DICOM files found (searched recursively)")
    if series_uid is None:
        if len(series) > 1:
            lines = []
            for uid, files in series.items():
                h = read_header(files[0])
                lines.append(
                    f"  {uid}: {len(files)} file(s), {h.get('Modality', '?')}, "
                    f"'{h.get('SeriesDescription', '')}'"
                )
            raise DataError(
                f"{folder} holds {len(series)} series; pass series_uid= one of:\n"
                + "\n".join(lines)
            )
        series_uid = next(iter(series))
    if series_uid not in series:
        raise DataError(f"{folder}: no series {series_uid!r}; found {sorted(series)}")
    return load_series_files(series[series_uid], str(folder))


def load_series_files(files: list[Path], where: str = "series") -> Volume:
    """The ``files`` of one series (as :func:`list_series` groups them) as a Volume (slice,
    row, col), ordered along the slice normal; ``where`` names the series (its folder) in
    errors. A single file is read as :func:`load_dicom_file` reads it."""
    if len(files) == 1:
        return load_dicom_file(files[0])
    return _stack(files, where)


def _stack(files: list[Path], where: str) -> Volume:
    headers = [read_header(p) for p in files]
    for h, p in zip(headers, files, strict=True):
        _check_image(h, p, header_only=True)
        if _int(h, "NumberOfFrames", 1, p) > 1:
            raise DataError(
                f"{p}: a multi-frame file inside a series of single frames; load it alone"
            )
    modalities = {str(h.get("Modality", "")) for h in headers}
    if len(modalities) > 1:
        first = {}
        for h, p in zip(headers, files, strict=True):
            first.setdefault(str(h.get("Modality", "")), p.name)
        raise DataError(
            f"{where}: one series mixes modalities "
            + ", ".join(f"{m or '(none)'} ({name})" for m, name in sorted(first.items()))
            + "; their intensities are not comparable: load them separately"
        )
    geo = [_geometry(h, p) for h, p in zip(headers, files, strict=True)]
    x0, y0, sp0 = geo[0][1], geo[0][2], geo[0][3]
    for (_, x, y, sp), p in zip(geo, files, strict=True):
        if not (np.allclose(x, x0, atol=ORIENT_ATOL) and np.allclose(y, y0, atol=ORIENT_ATOL)):
            raise GeometryError(
                f"{where}: mixed orientations: {files[0].name} has ImageOrientationPatient "
                f"{np.r_[x0, y0].round(4).tolist()} but {p.name} has "
                f"{np.r_[x, y].round(4).tolist()}"
            )
        if not np.allclose(sp, sp0, rtol=1e-4):
            raise GeometryError(
                f"{where}: mixed PixelSpacing {sp0.tolist()} vs {sp.tolist()} ({p.name})"
            )
    shapes = {
        (_int(h, "Rows", 0, p), _int(h, "Columns", 0, p))
        for h, p in zip(headers, files, strict=True)
    }
    if len(shapes) > 1:
        raise GeometryError(f"{where}: slices of different sizes {sorted(shapes)}")
    normal = np.cross(x0, y0)
    positions = np.stack([g[0] for g in geo])
    order, step = _order_and_step(positions, normal, [p.name for p in files], where)
    slices, units = [], set()
    for k in order:
        ds = _read_full(files[k])
        _check_image(ds, files[k])
        values, unit = _rescale(_pixels(ds, files[k]), ds, ds, files[k])
        if values.ndim != 2:
            raise DataError(
                f"{files[k]}: expected a grey-scale slice, got pixel array {values.shape}"
            )
        slices.append(values)
        units.add(unit)
    h0 = headers[order[0]]
    affine = _affine(positions[order[0]], step, x0, y0, sp0)
    return Volume(
        np.stack(slices), affine, _meta(h0, [files[k] for k in order], _one_unit(units, where))
    )


def _one_unit(units: set[str], where: str | Path) -> str:
    if len(units) > 1:
        raise DataError(
            f"{where}: slices/frames in different units {sorted(units)} (RescaleType); "
            "they cannot form one volume"
        )
    return units.pop()


def _meta(h: Any, paths: list[Path], unit: str) -> dict[str, Any]:
    return {
        "modality": str(h.get("Modality", "")),
        "series_uid": str(h.get("SeriesInstanceUID", "")),
        "series_description": str(h.get("SeriesDescription", "")),
        "sources": [str(p) for p in paths],
        "unit": unit,
        "format": "dicom",
    }


def load_dicom_file(path: str | Path) -> Volume:
    """The DICOM file at ``path`` as a Volume: one slice (a volume of 1 slice) or an
    (enhanced) multi-frame image; values rescaled (HU for CT)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    ds = _read_full(path)
    _check_image(ds, path)
    values = _pixels(ds, path)
    frames = _int(ds, "NumberOfFrames", 1, path)
    if "PerFrameFunctionalGroupsSequence" in ds:
        return _enhanced(ds, values if frames > 1 else values[None], path)
    values = values if frames > 1 else values[None]
    out, unit = _rescale(values, ds, ds, path)
    if "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds and "PixelSpacing" in ds:
        s, x, y, sp = _geometry(ds, path)
        if frames > 1:
            raise DataError(
                f"{path}: a classic multi-frame image without per-frame positions; "
                "its slice geometry is unknown"
            )
        thickness = _thickness(ds, path)
        affine = _affine(s, np.cross(x, y) * thickness, x, y, sp)
    else:
        if "PixelSpacing" not in ds and "ImagerPixelSpacing" not in ds:
            raise DataError(
                f"{path}: no image geometry (ImagePositionPatient/Orientation, PixelSpacing)"
            )
        sp = _float_list(
            ds.get("PixelSpacing", ds.get("ImagerPixelSpacing")), 2, "PixelSpacing", path
        )
        _check_geometry(np.zeros(3), np.array([1.0, 0, 0, 0, 1, 0]), sp, path)
        affine = np.diag([1.0, sp[0], sp[1], 1.0])  # projection image: no patient position
        log.info(
            "%s: projection image without patient position; affine uses pixel spacing only", path
        )
    return Volume(out, affine, _meta(ds, [path], unit))


def _enhanced(ds: Any, values: np.ndarray, path: Path) -> Volume:
    """Enhanced multi-frame (e.g. Enhanced CT/MR): geometry and rescale from functional groups."""
    shared = ds.get("SharedFunctionalGroupsSequence", [None])[0]
    per = ds.PerFrameFunctionalGroupsSequence

    def group(i: int, name: str) -> Any:
        item = per[i].get(name) if per[i] is not None else None
        if item is None and shared is not None:
            item = shared.get(name)
        if item is None:
            raise DataError(f"{path}: frame {i} has no {name} (shared or per-frame)")
        return item[0]

    positions, rescaled, units = [], [], set()
    iop0 = None
    for i in range(values.shape[0]):
        pos = _float_list(
            group(i, "PlanePositionSequence").ImagePositionPatient, 3, "ImagePositionPatient", path
        )
        iop = _float_list(
            group(i, "PlaneOrientationSequence").ImageOrientationPatient,
            6,
            "ImageOrientationPatient",
            path,
        )
        _check_geometry(pos, iop, np.ones(2), path)
        if iop0 is None:
            iop0 = iop
        elif not np.allclose(iop, iop0, atol=ORIENT_ATOL):
            raise GeometryError(f"{path}: frames with mixed orientations (frame 0 vs frame {i})")
        try:
            pvt = group(i, "PixelValueTransformationSequence")
        except DataError:
            pvt = ds
        v, unit = _rescale(values[i], pvt, ds, path)
        rescaled.append(v)
        units.add(unit)
        positions.append(pos)
    sp = _float_list(group(0, "PixelMeasuresSequence").PixelSpacing, 2, "PixelSpacing", path)
    x, y = _check_geometry(positions[0], iop0, sp, path)
    normal = np.cross(x, y)
    positions = np.stack(positions)
    names = [f"frame {i}" for i in range(len(positions))]
    order, step = _order_and_step(positions, normal, names, str(path))
    if len(order) == 1:
        thickness = _thickness(group(0, "PixelMeasuresSequence"), path)
        step = normal * thickness
    affine = _affine(positions[order[0]], step, x, y, sp)
    arr = np.stack([rescaled[k] for k in order])
    return Volume(arr, affine, _meta(ds, [path], _one_unit(units, path)))
