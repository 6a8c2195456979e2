"""Property-based fuzzing of everything medgan reads (issue #11).

Every generated input must either load as a Volume with a finite, non-singular affine and
finite voxels (or, for configs, build), or raise a MedganError subclass: never another
exception type, never a silent NaN. The default profile ("ci") runs a few hundred
examples in total within the CI budget; ``pytest tests/test_fuzz.py
--hypothesis-profile thorough`` runs 20x more (about 10 minutes on 2 cores).
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from hypothesis import assume, event, given
from hypothesis import strategies as st
from pydicom.data import get_testdata_file

from medgan.data import load
from medgan.data.volume import Volume
from medgan.errors import MedganError

LIMIT = "64M"  # the memory limit under fuzzing: any header may claim anything


def assert_loads_sanely_or_refuses(path: Path) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pydicom/nibabel warn about what we broke
            vol = load(path)
    except MedganError as e:
        event(f"refused: {type(e).__name__}")
        return  # refused by name: fine
    event("loaded")
    assert isinstance(vol, Volume)
    assert np.isfinite(vol.affine).all(), vol.affine
    assert abs(np.linalg.det(vol.affine[:3, :3])) > 0, vol.affine
    assert np.isfinite(vol.array).all(), f"{int((~np.isfinite(vol.array)).sum())} NaN/inf voxels"
    assert vol.array.size > 0


@pytest.fixture(autouse=True)
def _small_memory_limit(monkeypatch):
    monkeypatch.setenv("MEDGAN_MAX_BYTES", LIMIT)


# ------------------------------------------------------------------ DICOM

_CT = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
_floats = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1000, 1000),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 1e300, -1e300, 1e-300, 0.5]),
)


def _rotated_orientation(angles: tuple[float, float]) -> list[float]:
    """Row and column cosines of the axial plane turned by two angles: valid geometry."""
    a, b = angles
    row = np.array([math.cos(a), math.sin(a), 0.0])
    col = np.array([-math.sin(a) * math.cos(b), math.cos(a) * math.cos(b), math.sin(b)])
    return [float(v) for v in np.r_[row, col]]


def _ds_text(x: float) -> str:
    return repr(float(x))[:16]


_DICOM_EDITS = dict(
    {
        "ImagePositionPatient": st.lists(_floats, min_size=3, max_size=3)
        | st.lists(_floats, max_size=4),
        "ImageOrientationPatient": st.tuples(st.floats(-3.2, 3.2), st.floats(-3.2, 3.2)).map(
            _rotated_orientation
        )
        | st.lists(_floats, max_size=7),
        "PixelSpacing": st.lists(st.floats(0.01, 10), min_size=2, max_size=2)
        | st.lists(_floats, max_size=3),
        "SliceThickness": _floats,
        "SpacingBetweenSlices": _floats,
        "RescaleSlope": _floats,
        "RescaleIntercept": _floats,
        "Rows": st.just(128) | st.integers(0, 300),
        "Columns": st.just(128) | st.integers(0, 300),
        "BitsAllocated": st.sampled_from([1, 8, 12, 16, 32, 64]),
        "BitsStored": st.integers(0, 40),
        "PixelRepresentation": st.integers(0, 2),
        "SamplesPerPixel": st.integers(0, 4),
        "NumberOfFrames": st.integers(0, 6),
        "PhotometricInterpretation": st.sampled_from(
            ["MONOCHROME1", "MONOCHROME2", "RGB", "PALETTE COLOR", "YBR_FULL", ""]
        ),
        "Modality": st.sampled_from(["CT", "MR", "SR", "OT", "RTPLAN", ""]),
        "delete": st.lists(
            st.sampled_from(
                [
                    "ImagePositionPatient",
                    "ImageOrientationPatient",
                    "PixelSpacing",
                    "RescaleSlope",
                    "Rows",
                    "PixelData",
                    "BitsAllocated",
                    "PhotometricInterpretation",
                ]
            ),
            max_size=3,
        ),
        "pixel_bytes": st.integers(-40000, 40000),  # truncate (<0) or extend (>0)
    }
)
# one to three edits per file: most then still load, so the checks on what loads run too
_dicom_edits = st.lists(st.sampled_from(sorted(_DICOM_EDITS)), max_size=3, unique=True).flatmap(
    lambda keys: st.fixed_dictionaries({k: _DICOM_EDITS[k] for k in keys})
)


@given(edits=_dicom_edits)
def test_fuzzed_dicom_headers_load_sanely_or_are_refused(tmp_path_factory, edits):
    ds = copy.deepcopy(_CT)  # a shallow copy would share (and lose) elements
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key, value in edits.items():
            if key == "delete":
                for tag in value:
                    if tag in ds:
                        delattr(ds, tag)
            elif key == "pixel_bytes":
                if "PixelData" in ds:
                    data = ds.PixelData
                    ds.PixelData = data[:value] if value < 0 else data + bytes(value)
            else:
                if isinstance(value, list):
                    value = [_ds_text(v) for v in value]
                elif isinstance(value, float):
                    value = _ds_text(value)
                try:
                    setattr(ds, key, value)
                except (ValueError, OverflowError):  # pydicom will not even hold it
                    assume(False)
        path = tmp_path_factory.mktemp("dcm") / "fuzzed.dcm"
        try:
            ds.save_as(path)
        except Exception:  # pydicom refused to write it: nothing for medgan to read
            assume(False)
    assert_loads_sanely_or_refuses(path)


@given(data=st.data())
def test_bit_flipped_dicom_files_load_sanely_or_are_refused(tmp_path_factory, data):
    raw = bytearray(Path(get_testdata_file("MR_small.dcm")).read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] ^= 1 << data.draw(st.integers(0, 7))
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(raw))))
    path = tmp_path_factory.mktemp("dcm") / "flipped.dcm"
    path.write_bytes(bytes(raw[:cut]))
    assert_loads_sanely_or_refuses(path)


# ------------------------------------------------------------------ NIfTI


def _nifti_bytes(draw_header: dict, payload: bytes) -> bytes:
    import nibabel as nib

    hdr = nib.Nifti1Header()
    hdr.set_data_dtype(np.float32)
    hdr.set_data_shape((4, 4, 4))
    hdr["sform_code"], hdr["qform_code"] = 1, 1
    hdr["srow_x"], hdr["srow_y"], hdr["srow_z"] = np.eye(4)[:3]
    for key, value in draw_header.items():
        try:
            hdr[key] = value
        except Exception:  # a value the field's dtype cannot hold
            assume(False)
    return hdr.binaryblock + bytes(4) + payload


_nifti_fields = st.fixed_dictionaries(
    {},
    optional={
        "dim": st.lists(st.integers(-2, 70000), min_size=8, max_size=8),
        "datatype": st.sampled_from([0, 2, 4, 8, 16, 32, 64, 128, 256, 512, 768, 1792, 2304, 77]),
        "bitpix": st.sampled_from([0, 8, 16, 32, 64, 128]),
        "pixdim": st.lists(
            _floats.filter(lambda v: abs(v) < 1e30 or not math.isfinite(v)), min_size=8, max_size=8
        ),
        "srow_x": st.lists(
            _floats.filter(lambda v: abs(v) < 1e30 or not math.isfinite(v)), min_size=4, max_size=4
        ),
        "sform_code": st.integers(0, 5),
        "qform_code": st.integers(0, 5),
        "quatern_b": st.floats(-2, 2),
        "scl_slope": st.floats(allow_nan=True, allow_infinity=True, width=32),
        "scl_inter": st.floats(allow_nan=True, allow_infinity=True, width=32),
        "vox_offset": st.sampled_from([0.0, 352.0, 348.0, 1e9, -5.0]),
    },
)


@given(
    fields=_nifti_fields, n_payload=st.integers(0, 600), gz=st.booleans(), seed=st.integers(0, 9)
)
def test_fuzzed_nifti_headers_load_sanely_or_are_refused(
    tmp_path_factory, fields, n_payload, gz, seed
):
    payload = np.random.default_rng(seed).normal(size=n_payload // 4 + 1).astype(np.float32)
    raw = _nifti_bytes(fields, payload.tobytes()[:n_payload])
    folder = tmp_path_factory.mktemp("nii")
    path = folder / ("fuzzed.nii.gz" if gz else "fuzzed.nii")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    assert_loads_sanely_or_refuses(path)


# ------------------------------------------------------------------ PNG


@given(
    mode=st.sampled_from(["L", "I;16", "RGB", "RGBA", "P", "1", "LA"]),
    w=st.integers(1, 40),
    h=st.integers(1, 40),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 7)), max_size=4),
    cut=st.one_of(st.none(), st.integers(0, 2000)),
)
def test_fuzzed_pngs_load_sanely_or_are_refused(tmp_path_factory, mode, w, h, flips, cut):
    from PIL import Image

    rng = np.random.default_rng(w * 41 + h)
    arr = rng.integers(0, 255, (h, w), dtype=np.uint8)
    im = (
        Image.fromarray(arr).convert(mode)
        if mode != "I;16"
        else Image.fromarray(arr.astype(np.uint16) * 257)
    )
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    raw = bytearray(buf.getvalue())
    for pos, bit in flips:
        raw[pos % len(raw)] ^= 1 << bit
    path = tmp_path_factory.mktemp("png") / "fuzzed.png"
    path.write_bytes(bytes(raw[:cut]))
    assert_loads_sanely_or_refuses(path)


# ------------------------------------------------------------------ experiment configs

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
_train_fields = [
    "steps",
    "batch_size",
    "lr_g",
    "lr_d",
    "betas",
    "n_critic",
    "ema_halflife_kimg",
    "amp",
    "device",
    "seed",
    "lr_schedule",
    "warmup_steps",
    "check_finite_every",
    "on_nan",
    "grad_clip",
    "max_minutes",
    "channels_last",
    "compile",
    "bogus",
]


@given(fields=st.dictionaries(st.sampled_from(_train_fields), _json_values, max_size=4))
def test_fuzzed_train_configs_build_or_raise_config_error(fields):
    from medgan.config import TrainConfig

    try:
        TrainConfig.from_dict(fields)
    except MedganError:
        pass


@given(
    top=st.dictionaries(
        st.sampled_from(
            [
                "data",
                "generator",
                "discriminator",
                "loss",
                "train",
                "out_dir",
                "resume",
                "checkpoint_every",
                "sample_every",
                "log_every",
                "extra",
            ]
        ),
        _json_values,
        max_size=5,
    ),
    data_kwargs=st.dictionaries(
        st.sampled_from(["n", "size", "seed", "zzz"]), _json_values, max_size=2
    ),
)
def test_fuzzed_experiment_configs_parse_or_raise_config_error(top, data_kwargs):
    from medgan.experiment import ExperimentConfig

    d = {"data": {"name": "ct_phantoms", "kwargs": data_kwargs}, **top}
    try:
        ExperimentConfig.from_dict(json.loads(json.dumps(d, allow_nan=True)))
    except MedganError:
        pass
