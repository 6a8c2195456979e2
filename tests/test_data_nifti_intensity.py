"""NIfTI against nibabel on real files; intensity maps; resampling against hand values."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nibabel.testing import data_path

from medgan.data import IntensityWindow, Volume, load, load_nifti, resample, save_nifti
from medgan.errors import ConfigError, DataError

ANAT = Path(data_path) / "anatomical.nii"
EXAMPLE4D = Path(data_path) / "example4d.nii.gz"


def test_nifti_matches_nibabel_raw_and_canonical():
    img = nib.load(ANAT)
    raw = load_nifti(ANAT, canonical=False)
    np.testing.assert_array_equal(raw.array, img.get_fdata(dtype=np.float32))
    np.testing.assert_allclose(raw.affine, img.affine)
    can = load(ANAT)
    ref = nib.as_closest_canonical(img)
    np.testing.assert_array_equal(can.array, ref.get_fdata(dtype=np.float32))
    np.testing.assert_allclose(can.affine, ref.affine)
    assert can.orientation == "RAS"
    assert can.spacing == pytest.approx(tuple(float(z) for z in ref.header.get_zooms()[:3]))
    # the canonical and raw volumes put the same voxel value at the same world point
    idx_raw = np.array([3, 5, 7])
    world = raw.index_to_world(idx_raw)
    idx_can = np.round(np.linalg.solve(can.affine[:3, :3], world - can.affine[:3, 3])).astype(int)
    assert raw.array[tuple(idx_raw)] == can.array[tuple(idx_can)]


def test_scl_slope_applied(tmp_path):
    data = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    img = nib.Nifti1Image(data, np.diag([2.0, 3.0, 4.0, 1.0]))
    img.header.set_slope_inter(0.5, -10)
    nib.save(img, tmp_path / "s.nii.gz")
    vol = load(tmp_path / "s.nii.gz")
    np.testing.assert_allclose(vol.array, data * 0.5 - 10)
    assert vol.spacing == (2.0, 3.0, 4.0)


def test_four_d_as_channels_or_refused():
    vol = load(EXAMPLE4D)
    n = nib.load(EXAMPLE4D).shape[3]
    assert vol.array.ndim == 4 and vol.array.shape[0] == n
    with pytest.raises(DataError, match="4D"):
        load_nifti(EXAMPLE4D, four_d="error")


def test_nonfinite_reported_or_replaced(tmp_path):
    data = np.ones((4, 4, 4), np.float32)
    data[0, 0, 0], data[1, 1, 1] = np.nan, np.inf
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "nan.nii")
    with pytest.raises(DataError, match="2 NaN/inf voxels"):
        load(tmp_path / "nan.nii")
    assert load_nifti(tmp_path / "nan.nii", nonfinite="zero").array[0, 0, 0] == 0


def test_truncated_and_wrong_files(tmp_path):
    blob = EXAMPLE4D.read_bytes()
    p = tmp_path / "cut.nii.gz"
    p.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="cut.nii.gz"):
        load(p)
    q = tmp_path / "text.nii"
    q.write_text("not nifti")
    with pytest.raises(DataError, match="text.nii"):
        load(q)
    with pytest.raises(DataError, match="no such file"):
        load(tmp_path / "missing.nii.gz")


def test_nifti_round_trip_keeps_voxels_affine_and_unit(tmp_path):
    rng = np.random.default_rng(0)
    aff = np.array([[0, 0, 2.5, -40], [0, 0.7, 0, 10], [-0.7, 0, 0, 5], [0, 0, 0, 1.0]])
    vol = Volume(
        rng.normal(size=(5, 6, 7)).astype(np.float32), aff, {"modality": "CT", "unit": "HU"}
    )
    save_nifti(vol, tmp_path / "v.nii.gz")
    back = load_nifti(tmp_path / "v.nii.gz", canonical=False)
    np.testing.assert_array_equal(back.array, vol.array)
    np.testing.assert_allclose(back.affine, aff, atol=1e-6)
    assert back.meta["unit"] == "HU" and back.meta["modality"] == "CT"


def test_ct_windows_and_inverse():
    hu = np.array([-2000.0, -1000.0, 0.0, 1000.0, 3000.0])
    np.testing.assert_allclose(IntensityWindow.ct("full").to_unit(hu), [-1, -1, 0, 1, 1])
    w = IntensityWindow.ct("lung")  # level -600, width 1500 -> [-1350, 150]
    assert (w.lo, w.hi) == (-1350.0, 150.0)
    inside = np.array([-1350.0, -600.0, 150.0])
    np.testing.assert_allclose(w.from_unit(w.to_unit(inside)), inside)
    brain = IntensityWindow.ct((40, 80))  # (level, width) -> [0, 80] HU
    np.testing.assert_allclose(brain.to_unit(np.array([35.0])), [(35 - 40) / 40])
    np.testing.assert_allclose(brain.from_unit(brain.to_unit(np.array([35.0]))), [35.0])
    with pytest.raises(ConfigError, match="unknown CT window"):
        IntensityWindow.ct("lungs")


def test_window_centre_maps_to_zero_exactly():
    # u = (v - c) * 2 / (hi - lo): the window's centre (water, 0 HU, in "full") is exactly 0
    # and float32 data keeps its relative precision near it
    hu = np.array([0.0, 1e-3, -1e-3], np.float32)
    u = IntensityWindow.ct("full").to_unit(hu)
    assert u.dtype == np.float32 and u[0] == 0.0
    np.testing.assert_allclose(u[1:], [1e-6, -1e-6], rtol=1e-6)


def test_resolve_every_kind_of_window_spec():
    ct = Volume(np.linspace(-1000, 1000, 27, dtype=np.float32).reshape(3, 3, 3), np.eye(4))
    ct.meta["unit"] = "HU"
    mr = Volume(np.arange(1000, dtype=np.float32).reshape(10, 10, 10), np.eye(4))
    given = IntensityWindow(1.0, 2.0)
    assert IntensityWindow.resolve(given, mr) is given
    lung = IntensityWindow.resolve("lung", mr)  # a CT window name, whatever the volume
    assert (lung.lo, lung.hi, lung.unit) == (-1350.0, 150.0, "HU")
    for spec in ("-100,300", " -100 , 300", (-100, 300), [-100.0, 300.0]):
        w = IntensityWindow.resolve(spec, mr)
        assert (w.lo, w.hi) == (-100.0, 300.0), spec
    assert IntensityWindow.resolve(lambda v: given, mr) is given
    full = IntensityWindow.resolve(None, ct)  # HU data: the full CT window
    assert (full.lo, full.hi) == (-1000.0, 1000.0)
    auto = IntensityWindow.resolve(None, mr)  # other units: 0.5 and 99.5th percentiles
    assert (auto.lo, auto.hi) == pytest.approx(tuple(np.percentile(mr.array, [0.5, 99.5])))
    with pytest.raises(ConfigError, match=r"--window 'a,b': expected a CT window name or 'lo,hi'"):
        IntensityWindow.resolve("a,b", mr, "--window")
    with pytest.raises(ConfigError, match="finite hi > lo"):
        IntensityWindow.resolve("5,1", mr)
    with pytest.raises(ConfigError, match="unknown CT window"):
        IntensityWindow.resolve("lungs", mr)
    with pytest.raises(ConfigError, match=r"window \(1, 2, 3\): expected"):
        IntensityWindow.resolve((1, 2, 3), mr)


def test_mr_percentile_ignores_nan():
    a = np.arange(1000, dtype=np.float64)
    a[:10] = np.nan
    w = IntensityWindow.percentile(a, 1, 99)
    ref = np.nanpercentile(a, [1, 99])
    assert (w.lo, w.hi) == pytest.approx(tuple(ref))
    u = w.to_unit(np.array([w.lo, w.hi]))
    np.testing.assert_allclose(u, [-1, 1])


def test_resample_linear_and_nearest_by_hand():
    arr = np.arange(5, dtype=np.float32)[:, None, None] * np.ones((5, 2, 2), np.float32)
    vol = Volume(arr, np.diag([2.0, 1.0, 1.0, 1.0]))
    up = resample(vol, (1.0, 1.0, 1.0))
    np.testing.assert_allclose(up.array[:, 0, 0], np.arange(9) / 2)  # halfway values
    assert up.spacing == (1.0, 1.0, 1.0)
    np.testing.assert_allclose(up.index_to_world([8, 0, 0]), vol.index_to_world([4, 0, 0]))
    lab = resample(vol, (1.0, 1.0, 1.0), labels=True)
    assert set(np.unique(lab.array)) <= set(range(5))  # nearest: no new label values


def test_wrong_dimensionality_refused(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((3, 3, 3, 2, 2), np.float32), np.eye(4)), tmp_path / "5d.nii")
    with pytest.raises(DataError, match=r"5d.nii: expected a 3D \(or 4D\) image"):
        load(tmp_path / "5d.nii")
