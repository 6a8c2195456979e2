"""Slice-thickness super-resolution that does no harm: the level-conditioned residual base
(identity at level 0), ThicknessSR's exact identity at factor 1, the factor from the
geometry and its refusals, the slab-resampling affine, tiling consistency, the plane
orientation, the training pairs, the CLI, and (over 3 seeds) that a short run beats linear
interpolation on held-out anatomy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import medgan
from medgan.data import IntensityWindow, Volume, load, save_nifti
from medgan.errors import ConfigError, DataError
from medgan.models import build
from medgan.models.conditioned import LevelConditionedResidual, ThicknessSR
from medgan.tasks import (
    ThickSlicePairs,
    enhance,
    resample_slabs,
    superres,
    superres_trainer,
    thick_slices,
    thick_volume,
)
from medgan.tasks.superres import factor_from_geometry

WINDOW = IntensityWindow(0.0, 255.0)


def _random(name: str = "thickness_sr", seed: int = 0, **kw) -> torch.nn.Module:
    """A model whose residual branch is not zero (as after training)."""
    torch.manual_seed(seed)
    m = build(name, base_channels=4, depth=2, **kw)
    torch.nn.init.normal_(m.net.out.weight, std=0.3)
    return m.eval()


def _volume(shape=(24, 20, 16), spacing=(1.0, 1.0, 1.0), seed=0) -> Volume:
    arr = np.random.default_rng(seed).uniform(0, 255, shape).astype(np.float32)
    return Volume(arr, np.diag([*spacing, 1.0]))


@pytest.mark.parametrize("name", ["thickness_sr", "noise_level_denoiser"])
def test_level_conditioned_residual_is_the_identity_at_level_zero(name):
    m = _random(name)
    assert isinstance(m, LevelConditionedResidual)
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    zero = torch.cat([x, torch.zeros_like(x)], 1)
    assert torch.equal(m(zero), x)
    level = torch.full_like(x, 0.7)
    with torch.no_grad():  # y = x - level * g([x, level / level_ref]), by hand
        g = m.net(torch.cat([x, level / m.level_ref], 1))
        y = m(torch.cat([x, level], 1))
    torch.testing.assert_close(y, x - 0.7 * g)
    assert (y - x).abs().mean() > 1e-3
    with pytest.raises(ValueError, match=r"\(N, 2, H, W\)"):
        m(x)


def test_untrained_thickness_sr_is_the_identity_and_records_its_range():
    m = build("thickness_sr", base_channels=4, depth=2, max_factor=3)
    x = torch.rand(1, 1, 16, 16)
    assert torch.equal(m(torch.cat([x, torch.full_like(x, 2.0)], 1)), x)
    assert m.factor_range == (1, 3)
    assert "trained_factors" in m.state_dict()
    with pytest.raises(ConfigError, match="max_factor"):
        build("thickness_sr", max_factor=0)


def test_factor_one_returns_the_volume_exactly():
    m = _random()
    thin = _volume(spacing=(0.8, 0.8, 0.8))
    for out in (enhance(thin, m, WINDOW, axis=2), enhance(thin, m, WINDOW, axis=2, factor=1)):
        assert np.array_equal(out.array, thin.array) and np.array_equal(out.affine, thin.affine)
        assert out.meta["superres"]["factor"] == 1
    # the same planes told factor 4 are changed: the identity is the factor's, not a no-op
    told = enhance(thin, m, WINDOW, axis=2, factor=4)
    assert told.array.shape == thin.array.shape and np.abs(told.array - thin.array).max() > 1


@pytest.mark.parametrize(
    "spacing, axis, factor",
    [
        ((2.0, 2.0, 2.0), 2, 1),
        ((1.0, 1.0, 4.0), 2, 4),
        ((0.5, 0.5, 1.5), 2, 3),
        ((3.0, 1.0, 1.0), 0, 3),
        ((0.9, 1.1, 2.0), 2, 2),  # mean in-plane spacing
        ((1.0, 2.0, 1.0), 1, 2),
    ],
)
def test_factor_from_geometry(spacing, axis, factor):
    vol = _volume(spacing=spacing)
    assert factor_from_geometry(vol, axis) == factor
    out = enhance(vol, _random(), WINDOW, axis=axis)
    shape = list(vol.array.shape)
    shape[axis] *= factor
    assert out.array.shape == tuple(shape)
    assert out.meta["superres"] | {"views": None} == {
        "factor": factor,
        "factor_from_geometry": True,
        "spacing_ratio": pytest.approx(factor),
        "resampled_to_fine_grid": factor > 1,
        "views": None,
        "spatial_dims": 2,
    }
    np.testing.assert_allclose(out.spacing[axis], spacing[axis] / factor)


def test_refusals_name_the_values():
    m = _random()  # trained range 1-4
    iso, thick = _volume(), _volume(spacing=(1.0, 1.0, 2.0))
    cases = [
        (_volume(spacing=(2.0, 2.0, 5.0)), {}, r"= 2\.500 .*2, 2, 5 mm.*not an integer"),
        (_volume(spacing=(2.0, 2.0, 1.0)), {}, r"= 0\.500 .*thinner.*thickest\) is 0"),
        (_volume(spacing=(1.0, 1.0, 6.0)), {}, r"factor 6 \(from the geometry\).*range 1-4"),
        (iso, {"factor": 5}, r"factor 5 \(given\).*range 1-4"),
        (iso, {"factor": 2.5}, r"integer >= 1.*2\.5"),
        (iso, {"factor": 0}, r"integer >= 1.*got 0"),
        (thick, {"factor": 4}, r"factor 4 does not match.*2\.000 times"),
        (thick, {"factor": 1}, r"factor 1 does not match"),
    ]
    for vol, kw, message in cases:
        with pytest.raises(ConfigError, match=message):
            enhance(vol, m, WINDOW, axis=2, **kw)
    with pytest.raises(ConfigError, match="views"):
        superres(thick, m, WINDOW, axis=2, views=[2])
    with pytest.raises(ConfigError, match="ThicknessSR"):
        enhance(iso, build("unet_generator", base_channels=4, depth=2), WINDOW, factor=2)
    with pytest.raises(ConfigError, match="window"):
        enhance(thick, m, None, axis=2)
    with pytest.raises(DataError, match="single-channel"):
        enhance(Volume(np.zeros((2, 8, 8, 8)), np.eye(4)), m, WINDOW, axis=2)


def test_slab_resampling_affine_puts_fine_slices_at_their_physical_positions():
    # an oblique, anisotropic, shifted grid: rotation about S, spacing (0.9, 1.1, 1.3) mm
    c, s = np.cos(0.4), np.sin(0.4)
    affine = np.eye(4)
    affine[:3, :3] = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ np.diag([0.9, 1.1, 1.3])
    affine[:3, 3] = [-40.0, 12.5, 7.0]
    ramp = np.broadcast_to(np.arange(12, dtype=np.float32)[None, :, None], (5, 12, 4))
    fine = Volume(ramp * 10.0, affine)
    for f in (2, 3, 4):
        thick = thick_volume(fine, f, axis=1)
        assert thick.array.shape == (5, 12 // f, 4)
        np.testing.assert_allclose(thick.spacing, [0.9, 1.1 * f, 1.3])
        # each slab sits at the mean physical position of the fine slices it averages
        idx = np.stack(np.meshgrid([0], np.arange(12), [0], indexing="ij"), -1).reshape(-1, 3)
        centres = fine.index_to_world(idx).reshape(12 // f, f, 3).mean(1)
        slabs = np.stack([[0, j, 0] for j in range(12 // f)])
        np.testing.assert_allclose(thick.index_to_world(slabs), centres, atol=1e-9)
        back = resample_slabs(thick, f, axis=1)
        assert back.array.shape == fine.array.shape
        np.testing.assert_allclose(back.affine, fine.affine, atol=1e-12)
        # fine slice k is read at slab coordinate (k - (f - 1) / 2) / f, where it lies
        k = np.arange(12)
        pos = back.index_to_world(np.stack([0 * k, k, 0 * k], -1))
        at = thick.index_to_world(np.stack([0 * k, (k - (f - 1) / 2) / f, 0 * k], -1))
        np.testing.assert_allclose(pos, at, atol=1e-9)
        # a linear ramp survives averaging + linear interpolation between the slab centres
        inside = slice((f - 1) // 2 + 1, 12 - f // 2 - 1)
        np.testing.assert_allclose(back.array[:, inside], fine.array[:, inside], atol=1e-4)
        # and the thick volume restored by a model lands on the same grid
        out = enhance(thick, _random(), WINDOW, axis=1, factor=f)
        np.testing.assert_allclose(out.affine, fine.affine, atol=1e-12)


@pytest.mark.parametrize("axis, view", [(2, 0), (2, 1), (0, 1), (1, 2)])
def test_planes_hold_the_slice_axis_along_w(axis, view):
    """The model sees each plane with the slice axis last, as it was trained."""
    m, f = _random(), 2
    vol = _volume((16, 12, 8), spacing=[2.0 if a == axis else 1.0 for a in range(3)])
    out = superres(vol, m, WINDOW, axis=axis, views=[view]).array
    fine = resample_slabs(vol, f, axis).array
    expect = np.empty_like(fine)
    (other,) = {0, 1, 2} - {axis, view}
    for j in range(fine.shape[view]):
        index = [slice(None)] * 3
        index[view] = j
        plane = fine[tuple(index)]  # the two other axes, in increasing order
        if axis < other:
            plane = plane.T  # slice axis last
        x = torch.from_numpy(WINDOW.to_unit(plane))[None, None]
        with torch.no_grad():
            y = m(torch.cat([x, torch.full_like(x, f - 1.0)], 1))[0, 0].clamp(-1, 1).numpy()
        expect[tuple(index)] = WINDOW.from_unit(y.T if axis < other else y)
    np.testing.assert_allclose(out, expect, atol=1e-3)


def test_output_does_not_depend_on_tiling(t1):
    m = _random()
    vol = t1.with_array(t1.array[16:80, 40:44, 16:48])
    thick = thick_volume(vol, 4, axis=2)
    whole = enhance(thick, m, WINDOW, axis=2).array
    tiled = enhance(thick, m, WINDOW, axis=2, tile=32, overlap=16).array
    diff = np.abs(tiled - whole) / 255.0
    assert diff.mean() < 0.01 and diff.max() < 0.1, (diff.mean(), diff.max())


def test_thick_slice_pairs_cover_every_factor_deterministically():
    planes = np.random.default_rng(0).uniform(0, 255, (3, 8, 12)).astype(np.float32)
    data = ThickSlicePairs(planes, WINDOW, max_factor=3)
    assert len(data) == 9
    for i in range(9):
        (src, tgt), again = data[i], data[i]
        plane, f = planes[i // 3], i % 3 + 1
        assert torch.equal(src, again[0])
        assert torch.equal(tgt[0], torch.from_numpy(WINDOW.to_unit(plane)))
        assert torch.all(src[1] == f - 1)
        thick = plane if f == 1 else thick_slices(plane, f, axis=1)
        np.testing.assert_allclose(src[0].numpy(), WINDOW.to_unit(thick), atol=1e-6)
    assert torch.equal(data[0][0][0], data[0][1][0])  # factor 1: identity pairs
    with pytest.raises(ConfigError, match="max_factor"):
        ThickSlicePairs(planes, WINDOW, max_factor=13)


def test_thickness_sr_beats_linear_interpolation_on_held_out_planes(t1):
    """A short run (150 steps, 4-8-16-32 channels) on 32x32 coronal crops of the posterior
    half; scored on an 8 mm acquisition of the anterior half, factor 4 from its geometry."""
    crop = t1.with_array(t1.array[32:64, :, 31:63])
    anterior = crop.with_array(crop.array[:, 64:96])
    thick = thick_volume(anterior, 4, axis=2)
    linear = resample_slabs(thick, 4, axis=2).array

    def psnr(a: np.ndarray) -> float:
        return float(10 * np.log10(255.0**2 / np.mean((a - anterior.array) ** 2)))

    gains = []
    for seed in range(3):
        medgan.seed_everything(seed)
        data = ThickSlicePairs(crop.array[:, 20:56:2].transpose(1, 0, 2), WINDOW)
        g = superres_trainer(data, 150, base_channels=8).fit().ema
        assert isinstance(g, ThicknessSR) and g.factor_range == (1, 4)
        gains.append(psnr(enhance(thick, g, WINDOW, axis=2).array) - psnr(linear))
    report = f"gain over linear {np.mean(gains):.2f} +- {np.std(gains):.2f} dB ({gains})"
    assert min(gains) > 0.2, report


def test_cli_enhance_restores_a_thick_nifti_and_refuses_bad_factors(tmp_path, t1, capsys):
    from medgan.cli import main

    data = ThickSlicePairs(t1.array[32:64, 20:28, 31:63].transpose(1, 0, 2), WINDOW)
    ckpt = superres_trainer(data, 1, base_channels=4, batch_size=4).fit().save(tmp_path / "sr.pt")
    fine = t1.with_array(t1.array[32:64, 60:63, 31:63])
    src = save_nifti(thick_volume(fine, 4, axis=2), tmp_path / "thick.nii.gz")
    base = ["enhance", str(src), "--checkpoint", str(ckpt), "--window", "0,255", "--axis", "2"]
    assert main([*base[:2], str(tmp_path / "out.nii.gz"), *base[2:]]) == 0
    assert "factor 4 along axis 2 (from the geometry)" in capsys.readouterr().out
    out = load(tmp_path / "out.nii.gz")
    assert out.array.shape == fine.array.shape
    np.testing.assert_allclose(out.affine, fine.affine, atol=1e-4)
    assert main([*base[:2], str(tmp_path / "o.nii.gz"), *base[2:], "--factor", "2"]) == 2
    assert "factor 2 does not match" in capsys.readouterr().err
    for bad in ("2.5", "0"):
        with pytest.raises(SystemExit) as e:
            main([*base[:2], str(tmp_path / "o.nii.gz"), *base[2:], "--factor", bad])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert "--factor" in err and len(err.strip().splitlines()) == 1
