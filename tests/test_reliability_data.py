"""Issue #11: every malformed DICOM/NIfTI/PNG input is refused with an error naming the file
and the problem, never loaded with a NaN or singular affine, NaN voxels or a wrong shape."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from medgan.data import load
from medgan.errors import DataError, GeometryError

CT5N = Path(get_testdata_file("CT_small.dcm")).parent / "dicomdirtests" / "98892001" / "CT5N"


def _single(tmp: Path, name: str, edit: Callable[[pydicom.Dataset], None], src="CT_small.dcm"):
    ds = pydicom.dcmread(get_testdata_file(src))
    edit(ds)
    p = tmp / f"{name}.dcm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the invalid values we write
        ds.save_as(p)
    return p


def _series(tmp: Path, name: str, edit: Callable[[pydicom.Dataset], None]) -> tuple[Path, str]:
    """CT5N (5 slices) with one slice edited; returns the folder and the edited file's name."""
    folder = tmp / name
    shutil.copytree(CT5N, folder)
    victim = sorted(folder.iterdir())[2]
    ds = pydicom.dcmread(victim)
    edit(ds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.save_as(victim)
    return folder, victim.name


def _set(keyword: str, value) -> Callable[[pydicom.Dataset], None]:
    def edit(ds: pydicom.Dataset) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            setattr(ds, keyword, value)

    return edit


def _del(*keywords: str) -> Callable[[pydicom.Dataset], None]:
    def edit(ds: pydicom.Dataset) -> None:
        for k in keywords:
            delattr(ds, k)

    return edit


def _at_position_of(index: int) -> Callable[[pydicom.Dataset], None]:
    """Move the slice to where CT5N's slice ``index`` (in file-name order) lies."""

    def edit(ds: pydicom.Dataset) -> None:
        other = pydicom.dcmread(sorted(CT5N.iterdir())[index], stop_before_pixels=True)
        ds.ImagePositionPatient = list(other.ImagePositionPatient)

    return edit


SINGLE_CASES = {
    "PixelSpacing NaN": (_set("PixelSpacing", ["nan", "0.5"]), GeometryError, "PixelSpacing"),
    "PixelSpacing zero": (_set("PixelSpacing", ["0", "0.5"]), GeometryError, "PixelSpacing"),
    "PixelSpacing negative": (_set("PixelSpacing", ["-1", "0.5"]), GeometryError, "PixelSpacing"),
    "IPP inf": (_set("ImagePositionPatient", ["inf", "0", "0"]), GeometryError, "Position"),
    "IOP all zeros": (_set("ImageOrientationPatient", [0] * 6), GeometryError, "Orientation"),
    "IOP row == column": (
        _set("ImageOrientationPatient", [1, 0, 0, 1, 0, 0]),
        GeometryError,
        "not orthonormal",
    ),
    "IOP not unit": (
        _set("ImageOrientationPatient", [2, 0, 0, 0, 1, 0]),
        GeometryError,
        "not orthonormal",
    ),
    "SpacingBetweenSlices NaN": (
        _set("SpacingBetweenSlices", "nan"),
        GeometryError,
        "SpacingBetweenSlices",
    ),
    "RescaleSlope NaN": (_set("RescaleSlope", "nan"), DataError, "RescaleSlope"),
    "RescaleSlope overflow": (_set("RescaleSlope", "1e300"), DataError, "RescaleSlope"),
    "RescaleSlope zero": (_set("RescaleSlope", "0"), DataError, "RescaleSlope is 0"),
    "RescaleIntercept inf": (_set("RescaleIntercept", "inf"), DataError, "RescaleIntercept"),
    "pixel data too long": (
        lambda ds: setattr(ds, "PixelData", ds.PixelData + bytes(2 * 128 * 3)),
        DataError,
        "PixelData holds",
    ),
    "Siemens mosaic": (
        lambda ds: (
            setattr(ds, "ImageType", ["ORIGINAL", "PRIMARY", "M", "MOSAIC"]),
            ds.add_new((0x0019, 0x100A), "US", 48),
        ),
        DataError,
        "MOSAIC.*48 slices.*dcm2niix",
    ),
    "Rows halved": (_set("Rows", 64), DataError, r"decoded pixel array .* does not match"),
    "classic multi-frame": (
        lambda ds: (_set("NumberOfFrames", 2)(ds), _set("Rows", 64)(ds)),
        DataError,
        "classic multi-frame image without per-frame positions",
    ),
}


@pytest.mark.parametrize("case", sorted(SINGLE_CASES))
def test_damaged_single_dicom_is_refused_naming_file_and_tag(tmp_path, case):
    edit, error, pattern = SINGLE_CASES[case]
    path = _single(tmp_path, case.replace(" ", "_").replace("=", ""), edit)
    with pytest.raises(error, match=pattern) as e:
        load(path)
    assert path.name in str(e.value)


@pytest.mark.parametrize(
    "name, pattern",
    [("OBXXXX1A.dcm", "PALETTE COLOR"), ("SC_rgb_2frame.dcm", "RGB with 3 sample")],
)
def test_colour_and_palette_images_are_not_read_as_intensities(name, pattern):
    path = Path(get_testdata_file(name))
    with pytest.raises(DataError, match=pattern) as e:
        load(path)
    assert path.name in str(e.value)


SERIES_CASES = {
    "IPP NaN in one slice": (
        _set("ImagePositionPatient", ["nan", "0", "0"]),
        GeometryError,
        "ImagePositionPatient.*not a finite",
    ),
    "mixed modalities": (_set("Modality", "MR"), DataError, "mixes modalities CT.*MR"),
    "IOP row == column in one slice": (
        _set("ImageOrientationPatient", [1, 0, 0, 1, 0, 0]),
        GeometryError,
        "not orthonormal",
    ),
    "no Rows in one slice": (_del("Rows"), DataError, "no image \\(no Rows/Columns\\)"),
    "no IPP in one slice": (_del("ImagePositionPatient"), DataError, "no ImagePositionPatient"),
    "multi-frame file in a series": (
        _set("NumberOfFrames", 2),
        DataError,
        "multi-frame file inside a series",
    ),
    "mixed PixelSpacing": (
        _set("PixelSpacing", ["0.1", "0.1"]),
        GeometryError,
        "mixed PixelSpacing",
    ),
    "one slice of another size": (_set("Rows", 256), GeometryError, "different sizes"),
    "two slices at one position": (_at_position_of(1), GeometryError, "same slice position"),
}


@pytest.mark.parametrize("case", sorted(SERIES_CASES))
def test_damaged_slice_in_a_series_is_refused_naming_it(tmp_path, case):
    edit, error, pattern = SERIES_CASES[case]
    folder, victim = _series(tmp_path, "series", edit)
    with pytest.raises(error, match=pattern) as e:
        load(folder)
    msg = str(e.value)
    assert victim in msg or folder.name in msg


def test_valid_files_still_load_with_finite_non_singular_geometry():
    for path in (CT5N, Path(get_testdata_file("CT_small.dcm")), get_testdata_file("MR_small.dcm")):
        vol = load(path)
        assert np.isfinite(vol.affine).all() and abs(np.linalg.det(vol.affine[:3, :3])) > 0
        assert np.isfinite(vol.array).all()


def test_series_folder_refusals_name_the_folder_and_skip_non_dicom_files(tmp_path):
    from medgan.data.dicom import load_dicom_file, load_dicom_series

    folder, _ = _series(tmp_path, "series", lambda ds: None)
    (folder / "notes.txt").write_text("not DICOM")  # skipped, as is a DICOMDIR
    shutil.copy(sorted(folder.glob("[0-9]*"))[0], folder / "DICOMDIR")
    assert load(folder).array.shape[0] == 5
    with pytest.raises(DataError, match=f"{folder}: no series '1.2.3'; found"):
        load(folder, series_uid="1.2.3")
    with pytest.raises(DataError, match="notes.txt: not a folder"):
        load_dicom_series(folder / "notes.txt")
    with pytest.raises(DataError, match="gone.dcm: no such file"):
        load_dicom_file(tmp_path / "gone.dcm")


def test_one_series_in_two_units_is_refused(tmp_path):
    folder, victim = _series(tmp_path, "mr", _set("RescaleType", "US"))
    for p in folder.iterdir():  # an MR series: the unit comes from RescaleType
        ds = pydicom.dcmread(p)
        ds.Modality = "MR"
        ds.save_as(p)
    with pytest.raises(DataError, match="mr: slices/frames in different units.*'US'"):
        load(folder)


def test_a_slice_without_patient_position_gets_a_pixel_spacing_affine(tmp_path):
    """A projection image (no position or orientation) is placed by its pixel spacing alone;
    a slice without SliceThickness/SpacingBetweenSlices is 1 mm thick."""
    src = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    path = _single(tmp_path, "projection", _del("ImagePositionPatient", "ImageOrientationPatient"))
    sp = [float(v) for v in src.PixelSpacing]
    np.testing.assert_array_equal(load(path).affine, np.diag([1.0, *sp, 1.0]))
    path = _single(tmp_path, "thin", _del("SliceThickness", "SpacingBetweenSlices"))
    assert load(path).spacing[0] == pytest.approx(1.0)


def _enhanced_edit(edit: Callable[[pydicom.Dataset], None], tmp: Path) -> Path:
    ds = pydicom.dcmread(get_testdata_file("eCT_Supplemental.dcm"))
    edit(ds)
    ds.save_as(tmp / "enhanced.dcm")
    return tmp / "enhanced.dcm"


def test_enhanced_multiframe_without_a_frame_position_or_with_mixed_orientations(tmp_path):
    def no_position(ds):
        del ds.PerFrameFunctionalGroupsSequence[1].PlanePositionSequence

    with pytest.raises(DataError, match="enhanced.dcm: frame 1 has no PlanePositionSequence"):
        load(_enhanced_edit(no_position, tmp_path))

    def turned(ds):  # frame 1 gets its own orientation, at right angles to the shared one
        shared = ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence
        own = pydicom.Sequence([pydicom.Dataset()])
        own[0].ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
        assert list(shared[0].ImageOrientationPatient) != [0, 1, 0, 0, 0, -1]
        ds.PerFrameFunctionalGroupsSequence[1].PlaneOrientationSequence = own

    with pytest.raises(GeometryError, match="enhanced.dcm: frames with mixed orientations"):
        load(_enhanced_edit(turned, tmp_path))


# ------------------------------------------------------------------ NIfTI


def _nifti_with_srows(path: Path, rows) -> Path:
    """A 4^3 NIfTI whose sform rows are ``rows`` (qform off), written byte by byte: nibabel's
    writer refuses to build such affines itself."""
    import nibabel as nib

    hdr = nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4)).header
    hdr["qform_code"], hdr["sform_code"] = 0, 1
    hdr["srow_x"], hdr["srow_y"], hdr["srow_z"] = rows
    path.write_bytes(hdr.binaryblock + bytes(4) + np.ones(64, np.float32).tobytes())
    return path


@pytest.mark.parametrize(
    "name, rows, pattern",
    [
        ("zero", [[0, 0, 0, 0]] * 3, "singular"),
        ("repeated_axis", [[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0]], "singular"),
        ("nan", [[np.nan, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]], "NaN/inf"),
    ],
)
def test_nifti_with_unusable_affine_is_a_geometry_error(tmp_path, name, rows, pattern):
    path = _nifti_with_srows(tmp_path / f"{name}.nii", rows)
    with pytest.raises(GeometryError, match=pattern) as e:
        load(path)
    assert path.name in str(e.value)


def test_nifti_that_is_not_one_or_of_too_many_axes_is_refused(tmp_path):
    import nibabel as nib

    from medgan.data.nifti import load_nifti

    garbage = tmp_path / "garbage.nii"
    garbage.write_text("not a NIfTI file " * 40)
    with pytest.raises(DataError, match="garbage.nii: not a valid NIfTI image"):
        load(garbage)
    with pytest.raises(DataError, match="gone.nii: no such file"):
        load_nifti(tmp_path / "gone.nii")
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4, 2, 3), np.float32), np.eye(4)), tmp_path / "5d.nii")
    with pytest.raises(DataError, match=r"5d.nii: expected a 3D \(or 4D\) image"):
        load(tmp_path / "5d.nii")
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4, 2), np.float32), np.eye(4)), tmp_path / "4d.nii")
    with pytest.raises(DataError, match="4d.nii: 4D image .*four_d='channels'"):
        load(tmp_path / "4d.nii", four_d="error")
    assert load(tmp_path / "4d.nii").array.shape == (2, 4, 4, 4)  # the 4th axis: channels
    vector = np.ones((4, 4, 4, 1, 3), np.float32)  # NIfTI's vector images: t = 1, 3 components
    nib.save(nib.Nifti1Image(vector, np.eye(4)), tmp_path / "vector.nii")
    assert load(tmp_path / "vector.nii").array.shape == (3, 4, 4, 4)
    nib.save(nib.Nifti1Image(np.ones((8, 6), np.float32), np.eye(4)), tmp_path / "2d.nii")
    assert load(tmp_path / "2d.nii").array.shape == (8, 6, 1)  # a 2D image: one slice


def test_complex_nifti_is_refused_not_silently_made_real(tmp_path):
    import nibabel as nib

    data = (np.ones((4, 4, 4)) + 2j * np.ones((4, 4, 4))).astype(np.complex64)
    path = tmp_path / "complex.nii"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    with pytest.raises(DataError, match="complex-valued.*imaginary") as e:
        load(path)
    assert path.name in str(e.value)


def test_decompression_bomb_nifti_is_refused_before_allocating(tmp_path, monkeypatch):
    """A small .nii.gz whose header declares 2 GiB (zeros compress ~1000:1); and a header
    claiming 4096^3 voxels: both refused from the header alone, within the memory limit."""
    import gzip
    import resource

    import nibabel as nib

    hdr = nib.Nifti1Image(np.zeros((2, 2, 2), np.float32), np.eye(4)).header
    hdr.set_data_shape((1024, 1024, 512))  # 2 GiB of float32
    path = tmp_path / "bomb.nii.gz"
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(hdr.binaryblock + bytes(4))
        chunk = bytes(1 << 24)
        for _ in range(8):  # only 128 MiB actually stored: the header is what matters
            f.write(chunk)
    monkeypatch.setenv("MEDGAN_MAX_BYTES", "1G")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(
        DataError, match=r"bomb\.nii\.gz.*2\.0 GiB.*1\.0 GiB limit.*MEDGAN_MAX_BYTES"
    ):
        load(path)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB

    hdr.set_data_shape((4096, 4096, 4096))
    path = tmp_path / "huge.nii"
    path.write_bytes(hdr.binaryblock + bytes(4))
    monkeypatch.delenv("MEDGAN_MAX_BYTES")
    with pytest.raises(DataError, match=r"huge\.nii.*256\.0 GiB"):
        load(path)


def test_max_bytes_setting_is_validated(monkeypatch):
    from medgan.errors import ConfigError
    from medgan.limits import DEFAULT_MAX_BYTES, max_bytes

    assert max_bytes() == DEFAULT_MAX_BYTES
    monkeypatch.setenv("MEDGAN_MAX_BYTES", "8G")
    assert max_bytes() == 8 * 1024**3
    monkeypatch.setenv("MEDGAN_MAX_BYTES", "lots")
    with pytest.raises(ConfigError, match="MEDGAN_MAX_BYTES"):
        max_bytes()


# ------------------------------------------------------------------ PNG


def test_huge_png_is_refused_with_a_named_error_not_a_pil_traceback(tmp_path, monkeypatch):
    from PIL import Image

    path = tmp_path / "wide.png"
    Image.new("L", (15000, 15000)).save(path)  # 225 Mpixel: PIL's DecompressionBombError
    with pytest.raises(DataError, match="wide.png.*decompression bomb"):
        load(path)
    path = tmp_path / "big.png"
    Image.new("L", (3000, 3000)).save(path)
    monkeypatch.setenv("MEDGAN_MAX_BYTES", "10M")
    with pytest.raises(DataError, match=r"big\.png.*3000 x 3000.*limit"):
        load(path)


def test_png_of_a_mode_without_a_known_range_is_refused(tmp_path):
    from PIL import Image

    path = tmp_path / "float.png"  # really a float TIFF: PIL opens by content, not name
    Image.fromarray(np.ones((4, 4), np.float32)).save(path, format="TIFF")
    with pytest.raises(DataError, match="float.png: unsupported PNG mode F"):
        load(path)


def test_png_folder_scales_by_bit_depth_not_by_each_files_maximum(tmp_path):
    from PIL import Image

    from medgan.data import PNGFolder

    folder = tmp_path / "pngs"
    folder.mkdir()
    dark = np.full((8, 8), 200, np.uint16)  # a dark 16-bit image: max <= 255
    bright = np.full((8, 8), 60000, np.uint16)
    Image.fromarray(dark).save(folder / "a.png")
    Image.fromarray(bright).save(folder / "b.png")
    ds = PNGFolder(folder)
    assert ds.max_value == 65535
    assert float(ds[0].mean()) == pytest.approx(200 / 32767.5 - 1, abs=1e-6)
    assert float(ds[1].mean()) == pytest.approx(60000 / 32767.5 - 1, abs=1e-6)
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(folder / "c.png")
    with pytest.raises(DataError, match="different bit depths.*255 \\(c.png\\).*65535"):
        PNGFolder(folder)


# ------------------------------------------------------------------ DICOM writer


def _volume(shape=(3, 8, 8)):
    from medgan.data.volume import Volume

    affine = np.diag([2.123456789012, 0.712345678901, 0.712345678901, 1.0])
    affine[:3, 3] = [-123456.789123, 98765.4321987, -0.000012345678]  # long decimal strings
    return Volume(np.linspace(-1000, 1000, np.prod(shape)).reshape(shape), affine)


def test_save_dicom_series_refuses_non_finite_voxels(tmp_path):
    from medgan.data import save_dicom_series

    vol = _volume()
    arr = vol.array.copy()
    arr[1, 2, 3] = np.nan
    with pytest.raises(DataError, match="1 NaN/inf voxel"):
        save_dicom_series(vol.with_array(arr), tmp_path / "out", modality="CT")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def _skewed() -> np.ndarray:
    a = np.eye(4)
    a[1, 2] = 0.5  # rows and columns not at right angles
    return a


@pytest.mark.parametrize(
    "shape, affine, modality, pattern",
    [
        ((3, 8, 8), np.eye(4), "US", "writes CT or MR, got modality 'US'"),
        ((2, 3, 8, 8), np.eye(4), "CT", "single-channel volume"),
        ((3, 8, 8), np.diag([1.0, 1.0, 0.0, 1.0]), "CT", "not finite and invertible"),
        ((3, 8, 8), _skewed(), "CT", "in-plane axes are not orthogonal"),
    ],
)
def test_save_dicom_series_refuses_what_dicom_cannot_hold(
    tmp_path, shape, affine, modality, pattern
):
    from medgan.data import save_dicom_series
    from medgan.data.volume import Volume

    with pytest.raises(DataError, match=pattern):
        save_dicom_series(Volume(np.zeros(shape), affine), tmp_path / "out", modality=modality)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_save_dicom_series_enforces_value_lengths(tmp_path):
    from medgan.data import save_dicom_series
    from medgan.errors import ConfigError

    with pytest.raises(ConfigError, match="65 characters.*at most 64"):
        save_dicom_series(_volume(), tmp_path / "o", "CT", series_description="x" * 65)


@pytest.mark.parametrize("modality", ["CT", "MR"])
def test_written_series_holds_type2_attributes_and_valid_decimal_strings(tmp_path, modality):
    from pydicom import config as pdconfig

    from medgan.data import save_dicom_series

    vol = _volume()
    paths = save_dicom_series(vol, tmp_path / modality, modality=modality)
    required = [
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyDate",
        "StudyTime",
        "StudyID",
        "AccessionNumber",
        "ReferringPhysicianName",
        "Manufacturer",
        "PositionReferenceIndicator",
        "SeriesNumber",
        "InstanceNumber",
        "SliceThickness",
    ]
    if modality == "MR":
        required += ["ScanningSequence", "SequenceVariant", "EchoTime", "MRAcquisitionType"]
    old = pdconfig.settings.reading_validation_mode
    pdconfig.settings.reading_validation_mode = pdconfig.RAISE  # invalid VRs raise
    try:
        for p in paths:
            ds = pydicom.dcmread(p)
            missing = [k for k in required if k not in ds]
            assert not missing, (p.name, missing)
            for kw in ("ImagePositionPatient", "PixelSpacing", "RescaleSlope", "SliceLocation"):
                for v in np.atleast_1d(ds[kw].value):
                    assert len(str(v)) <= 16, (kw, str(v))
    finally:
        pdconfig.settings.reading_validation_mode = old
    back = load(tmp_path / modality)  # may come back slice-flipped (sorted along the normal)
    np.testing.assert_allclose(back.affine[:3, 1:3], vol.affine[:3, 1:3], rtol=1e-6)
    ends = [vol.index_to_world([k, 0, 0]) for k in (0, vol.array.shape[0] - 1)]
    got = [back.index_to_world([k, 0, 0]) for k in (0, back.array.shape[0] - 1)]
    np.testing.assert_allclose(sorted(map(tuple, got)), sorted(map(tuple, ends)), rtol=1e-7)


# ------------------------------------------------------------------ medgan enhance arguments


@pytest.mark.parametrize(
    "args, pattern",
    [
        (["--tile", "32", "--overlap", "-4"], "overlap"),
        (["--tile", "32", "--overlap", "32"], "overlap"),
        (["--tile", "0"], "tile"),
        (["--tile", "33"], "multiple of"),
        (["--tile", "-32"], "tile"),
        (["--axis", "5"], "axis"),
        (["--axis", "-1"], "axis"),
        (["--window", "5,1"], "hi > lo"),
        (["--window", "0,inf"], "finite"),
        (["--window", "nan,1"], "finite"),
        (["--window", "a,b"], "window"),
        (["--window", "nosuchwindow"], "window"),
    ],
)
def test_enhance_refuses_bad_tiling_axis_and_window_without_writing(
    enhance_checkpoint, tmp_path, capsys, args, pattern
):
    from medgan.cli import main

    out = tmp_path / "out.nii.gz"
    argv = ["enhance", str(enhance_checkpoint / "in.nii.gz"), str(out)]
    argv += ["--checkpoint", str(enhance_checkpoint / "c.pt")]
    if "--window" not in args:
        argv += ["--window", "0,255"]
    try:
        code = main(argv + args)
    except SystemExit as e:  # argparse's own refusals exit with status 2
        code = e.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert pattern in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_a_model_that_outputs_nan_writes_nothing():
    import torch

    from medgan.tasks.translation import apply_slices

    class Broken(torch.nn.Module):
        def forward(self, x):
            return x * float("nan")

    with pytest.raises(DataError, match="Broken produced .* NaN/inf"):
        apply_slices(np.zeros((2, 1, 16, 16), np.float32), Broken())
