"""DICOM loading on real files from pydicom's (and pydicom-data's) test data."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from medgan.data import load, load_dicom_file, load_dicom_series, save_dicom_series
from medgan.data.volume import LPS_TO_RAS, Volume
from medgan.errors import DataError, GeometryError, MedganError

DICOMDIR_TESTS = Path(get_testdata_file("CT_small.dcm")).parent / "dicomdirtests"


def ipp_ras(path) -> np.ndarray:
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return LPS_TO_RAS[:3, :3] @ np.array([float(v) for v in ds.ImagePositionPatient])


def same_voxels_in_space(back: Volume, vol: Volume, atol: float = 0.0) -> None:
    """The reader may flip the slice axis (it sorts along the normal); the voxels at each
    physical position must agree either way."""
    if np.allclose(back.affine, vol.affine, atol=1e-4):
        np.testing.assert_allclose(back.array, vol.array, atol=atol)
        return
    flipped = vol.affine.copy()
    flipped[:3, 3] += (vol.array.shape[0] - 1) * vol.affine[:3, 0]
    flipped[:3, 0] *= -1
    np.testing.assert_allclose(back.affine, flipped, atol=1e-4)
    np.testing.assert_allclose(back.array, vol.array[::-1], atol=atol)


def check_affine_hits_every_slice(vol: Volume) -> None:
    for k, src in enumerate(vol.meta["sources"]):
        assert np.abs(vol.index_to_world([k, 0, 0]) - ipp_ras(src)).max() < 1e-3


def test_reversed_instance_numbers_are_ordered_by_position():
    folder = DICOMDIR_TESTS / "98892001" / "CT5N"
    vol = load(folder)
    assert vol.array.shape == (5, 16, 16)
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in vol.meta["sources"]]
    z = [float(h.ImagePositionPatient[2]) for h in headers]
    inst = [int(h.InstanceNumber) for h in headers]
    assert z == sorted(z)  # increasing along the slice normal (axial: +z)
    assert inst == sorted(inst, reverse=True)  # InstanceNumber runs the other way
    check_affine_hits_every_slice(vol)
    assert vol.spacing == pytest.approx((2.5, 0.48828125, 0.48828125), rel=1e-6)
    assert vol.meta["unit"] == "HU" and vol.meta["modality"] == "CT"


def test_voxels_are_rescaled_stored_values():
    folder = DICOMDIR_TESTS / "98892001" / "CT5N"
    vol = load(folder)
    for k, src in enumerate(vol.meta["sources"]):
        ds = pydicom.dcmread(src)
        expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        np.testing.assert_array_equal(vol.array[k], expected.astype(np.float32))


def test_shuffled_file_names_do_not_change_the_volume(tmp_path):
    src = DICOMDIR_TESTS / "98892001" / "CT5N"
    ref = load(src)
    for i, p in enumerate(sorted(src.iterdir(), reverse=True)):
        shutil.copy(p, tmp_path / f"{i:02d}_{p.name}")
    vol = load(tmp_path)
    np.testing.assert_array_equal(vol.array, ref.array)
    np.testing.assert_allclose(vol.affine, ref.affine)


def test_gapped_series_is_refused_naming_the_gap():
    with pytest.raises(GeometryError, match=r"gap of 202\.500 mm"):
        load_dicom_series(DICOMDIR_TESTS / "77654033" / "CT2")


def test_mixed_orientation_is_refused():
    with pytest.raises(GeometryError, match="mixed orientations"):
        load_dicom_series(DICOMDIR_TESTS / "98892001" / "CT2N")
    with pytest.raises(GeometryError, match="mixed orientations"):  # radial MR localisers
        load_dicom_series(DICOMDIR_TESTS / "98892003" / "MR700")


def test_several_series_listed_then_picked():
    folder = DICOMDIR_TESTS / "98892003" / "MR2"
    with pytest.raises(DataError, match="holds 3 series") as e:
        load(folder)
    uid = "1.3.6.1.4.1.5962.1.1.0.0.0.1196533885.18148.0.136"
    assert uid in str(e.value)
    # this series is 3 orthogonal localisers (T/S/C): refused as mixed orientation
    with pytest.raises(GeometryError):
        load(folder, series_uid=uid)
    single = load(folder, series_uid="1.3.6.1.4.1.5962.1.1.0.0.0.1196533885.18148.0.481")
    assert single.array.shape[0] == 1


def test_oblique_sagittal_and_reversed_series_geometry(tmp_path):
    # An oblique volume written with pydicom (our writer) and read back: the affine must hit
    # every file's ImagePositionPatient, in whatever order the files are named.
    rng = np.random.default_rng(0)
    for name, (ax, angle) in {
        "oblique": ([1, 1, 0], 0.4),
        "sagittal": ([0, 0, 1], np.pi / 2),
        "reversed": ([1, 0, 0], np.pi),
    }.items():
        axis = np.array(ax, float) / np.linalg.norm(ax)
        k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        rot = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k  # Rodrigues
        affine = np.eye(4)
        affine[:3, :3] = rot @ np.diag([3.0, 0.7, 0.8])
        affine[:3, 3] = [10.0, -20.0, 30.0]
        vol = Volume(
            rng.integers(-1000, 1000, (6, 12, 10)).astype(np.float32), affine, {"modality": "CT"}
        )
        out = tmp_path / name
        save_dicom_series(vol, out)
        back = load(out)
        check_affine_hits_every_slice(back)
        same_voxels_in_space(back, vol)


def test_enhanced_multiframe_ct_from_functional_groups():
    path = get_testdata_file("eCT_Supplemental.dcm")  # from the pydicom-data test extra
    assert path is not None, "pydicom-data is missing: pip install -e '.[test]'"
    vol = load(path)
    ds = pydicom.dcmread(path)
    assert vol.array.shape == (2, 512, 512)
    pvt = ds.SharedFunctionalGroupsSequence[0].PixelValueTransformationSequence[0]
    slope, intercept = float(pvt.RescaleSlope), float(pvt.RescaleIntercept)
    frames = ds.pixel_array
    z = [
        float(f.PlanePositionSequence[0].ImagePositionPatient[2])
        for f in ds.PerFrameFunctionalGroupsSequence
    ]
    # the frames are sorted along the normal X x Y = (-1,0,0)x(0,1,0) = (0,0,-1): higher z first
    order = np.argsort(-np.array(z))
    np.testing.assert_array_equal(vol.array, (frames[order] * slope + intercept).astype(np.float32))
    for k, f in enumerate(order):
        pos = ds.PerFrameFunctionalGroupsSequence[f].PlanePositionSequence[0].ImagePositionPatient
        lps = np.array([float(v) for v in pos])
        assert np.abs(vol.index_to_world([k, 0, 0]) - LPS_TO_RAS[:3, :3] @ lps).max() < 1e-3
    assert vol.spacing == pytest.approx((10.0, 0.388672, 0.388672), rel=1e-5)


def test_monochrome1_is_inverted_by_hand_formula(tmp_path):
    src = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    src.PhotometricInterpretation = "MONOCHROME1"
    p = tmp_path / "mono1.dcm"
    src.save_as(p)
    vol = load_dicom_file(p)
    stored = src.pixel_array.astype(np.float64)
    m, b = float(src.RescaleSlope), float(src.RescaleIntercept)
    bits = int(src.BitsStored)
    lo, hi = (
        (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if src.PixelRepresentation else (0, 2**bits - 1)
    )
    expected = (m * (lo + hi) + 2 * b) - (m * stored + b)  # mirror of the representable range
    np.testing.assert_allclose(vol.array[0], expected, atol=1e-3)


def test_rescale_slope_and_intercept_by_hand(tmp_path):
    src = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    src.RescaleSlope, src.RescaleIntercept = "2.5", "-1024"
    p = tmp_path / "scaled.dcm"
    src.save_as(p)
    vol = load(p)
    np.testing.assert_allclose(vol.array[0], src.pixel_array * 2.5 - 1024, atol=1e-3)


def test_written_series_is_marked_synthetic_and_anonymous(tmp_path):
    vol = load(DICOMDIR_TESTS / "98892001" / "CT5N")
    paths = save_dicom_series(vol, tmp_path / "out")
    original = pydicom.dcmread(vol.meta["sources"][0])
    for p in paths:
        ds = pydicom.dcmread(p)
        assert list(ds.ImageType)[0] == "DERIVED" and ds.BurnedInAnnotation == "NO"
        assert "synthetic" in ds.ImageComments
        assert ds.SeriesInstanceUID != original.SeriesInstanceUID
        assert ds.PatientName != original.PatientName and ds.PatientID == "SYNTHETIC"
        assert ds.PatientBirthDate == "" and ds.PatientSex == ""  # type 2: present, empty
        assert "InstitutionName" not in ds
    back = load(tmp_path / "out")
    np.testing.assert_array_equal(back.array, vol.array)
    np.testing.assert_allclose(back.affine, vol.affine, atol=1e-5)


def test_non_integer_values_round_trip_within_half_a_step(tmp_path):
    rng = np.random.default_rng(1)
    vol = Volume(
        rng.normal(0, 300, (3, 8, 8)).astype(np.float32),
        np.diag([2.0, 0.5, 0.5, 1]),
        {"modality": "MR"},
    )
    save_dicom_series(vol, tmp_path / "mr")
    back = load(tmp_path / "mr")
    step = (vol.array.max() - vol.array.min()) / 65534
    same_voxels_in_space(back, vol, atol=step / 2 + 1e-3)


# ------------------------------------------------------------------ bad input corpus


def _bad_corpus(tmp: Path) -> dict[str, tuple[Path, str]]:
    ct = get_testdata_file("CT_small.dcm")
    cases: dict[str, tuple[Path, str]] = {}
    p = tmp / "text.dcm"
    p.write_text("this is not a DICOM file at all")
    cases["non-DICOM file"] = (p, "not a DICOM file")
    data = Path(ct).read_bytes()
    p = tmp / "truncated.dcm"
    p.write_bytes(data[: len(data) - 20000])
    cases["truncated file"] = (p, "truncated|unreadable|cannot read")
    ds = pydicom.dcmread(ct)
    del ds.PixelData
    p = tmp / "nopixels.dcm"
    ds.save_as(p)
    cases["no pixel data"] = (p, "no pixel data")
    ds = pydicom.dcmread(ct)
    del ds.ImagePositionPatient, ds.ImageOrientationPatient, ds.PixelSpacing
    p = tmp / "nogeometry.dcm"
    ds.save_as(p)
    cases["no geometry"] = (p, "no image geometry")
    cases["non-image SOP class"] = (Path(get_testdata_file("rtplan.dcm")), "holds no image")
    empty = tmp / "empty"
    empty.mkdir()
    cases["empty folder"] = (empty, "no DICOM files")
    import importlib.util

    if importlib.util.find_spec("libjpeg") is None:  # the JPEG-LS plug-in of medgan[dicom-codecs]
        cases["compressed, no decoder"] = (
            Path(get_testdata_file("MR_small_jpeg_ls_lossless.dcm")),
            "JPEG-LS Lossless.*pip install 'medgan\\[dicom-codecs\\]'",
        )
    return cases


def test_bad_input_corpus_each_gets_a_named_error(tmp_path):
    for what, (path, pattern) in _bad_corpus(tmp_path).items():
        with pytest.raises(MedganError, match=pattern) as e:
            load(path)
        assert path.name in str(e.value), what
        assert isinstance(e.value, DataError), what
