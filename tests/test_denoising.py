"""MR denoising that does no harm: blind noise estimation, Rician bias correction, the
noise-level-conditioned residual denoiser (identity at sigma = 0, tiling-independent
inference), the do-no-harm report and warnings, the baselines and the CLI."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from medgan.data import Volume, embedded, load, save_nifti
from medgan.errors import ConfigError, DataError
from medgan.models import build
from medgan.tasks import (
    DenoiseAugment,
    NoisyPatches,
    denoise,
    denoiser_trainer,
    enhance,
    estimate_noise_sigma,
    mr_training_images,
    rician_noise,
)
from medgan.tasks.baselines import nlm_denoise, nlm_rician
from medgan.tasks.noise import rician_mean, rician_mean_inverse


@pytest.fixture(scope="module")
def t1() -> np.ndarray:
    return embedded("mni152_t1").array


def test_blind_noise_estimate_is_unbiased_for_white_noise():
    for seed, sigma in enumerate((0.5, 3.0, 40.0)):
        z = 100 + sigma * np.random.default_rng(seed).standard_normal((12, 200, 200))
        assert estimate_noise_sigma(z, foreground=False) == pytest.approx(sigma, rel=0.03)


@pytest.mark.parametrize("sigma", [5.0, 15.0, 25.0])
def test_blind_noise_estimate_on_rician_brain_within_ten_percent(t1, sigma):
    own = estimate_noise_sigma(t1)  # the template's own pixel-scale variation
    assert own < 3.0  # an average of 152 brains: little noise
    expected = np.hypot(sigma, own)
    for axis in range(3):
        noisy = rician_noise(t1, np.random.default_rng(int(sigma)), sigma)
        est = estimate_noise_sigma(noisy, axis=axis)
        assert abs(est - expected) / expected < 0.1, (axis, est)


def test_noise_estimate_rejects_bad_shapes():
    with pytest.raises(ValueError, match="2D image or a 3D"):
        estimate_noise_sigma(np.zeros(5))
    with pytest.raises(ValueError, match="too small"):
        estimate_noise_sigma(np.zeros((6, 6)))


def test_rician_mean_matches_samples_and_inverts():
    rng = np.random.default_rng(0)
    for a in (0.0, 0.7, 2.0, 8.0, 80.0):
        m = rician_noise(np.full(400_000, a), rng, 1.0).mean()
        assert rician_mean(a) == pytest.approx(m, rel=5e-3, abs=5e-3)
    nu = np.linspace(0.2, 100, 300)
    np.testing.assert_allclose(rician_mean_inverse(rician_mean(nu) * 3.0, 3.0), nu * 3, rtol=2e-3)
    assert rician_mean_inverse(np.array([1.0]), 1.0)[0] == 0.0  # below the noise floor
    assert rician_mean_inverse(np.float64(200.0), 2.0) == pytest.approx(np.sqrt(200**2 - 4))


def test_denoiser_is_the_identity_at_zero_noise_and_scales_with_sigma(random_denoiser):
    m = random_denoiser()
    x = torch.rand(2, 1, 32, 48) * 2 - 1
    same = m(torch.cat([x, torch.zeros_like(x)], 1))
    assert torch.equal(same, x)
    small = m(torch.cat([x, torch.full_like(x, 1e-3)], 1))
    assert 0 < (small - x).abs().max() < 0.05
    with pytest.raises(ValueError, match=r"\(N, 2, H, W\)"):
        m(x)


def test_denoiser_starts_as_identity_before_training():
    m = build("noise_level_denoiser", base_channels=8)
    x = torch.rand(1, 1, 32, 32)
    assert torch.equal(m(torch.cat([x, torch.full_like(x, 0.2)], 1)), x)


def test_denoise_is_independent_of_tiling(t1, random_denoiser):
    vol = Volume(rician_noise(t1[:, :, 30:36], np.random.default_rng(0), 15.0), np.eye(4))
    m = random_denoiser()
    whole = denoise(vol, m, axis=2)
    # the default equals the model applied to each whole slice (padded to a multiple of 8)
    scale = float(np.percentile(vol.array, 99.5))
    sigma = whole.meta["denoise"]["noise_sigma"]
    s = np.moveaxis(vol.array, 2, 0)[:, None] / scale * 2 - 1
    s = np.pad(s, ((0, 0), (0, 0), (0, 6), (0, 4)), mode="reflect")  # 98 x 116 -> 104 x 120
    with torch.no_grad():
        ref = m(torch.from_numpy(np.concatenate([s, np.full_like(s, 2 * sigma / scale)], 1)))
    ref = np.moveaxis((ref[:, 0, :98, :116].numpy() + 1) * scale / 2, 0, 2)
    np.testing.assert_allclose(whole.array, ref, atol=1e-5 * scale)
    # tiles with a generous overlap stay within a small tolerance of whole slices
    tiled = denoise(vol, m, axis=2, tile=64, overlap=32)
    err = np.abs(tiled.array - whole.array)
    assert err.mean() < 0.01 * scale and err.max() < 0.1 * scale
    # and the same scan cut into halves along the slice axis gives the same slices
    halves = np.concatenate(
        [
            denoise(vol.with_array(a), m, axis=2, sigma=sigma).array
            for a in (vol.array[:, :, :3], vol.array[:, :, 3:])
        ],
        2,
    )
    assert np.abs(halves - whole.array).max() < 0.02 * scale


def test_denoise_reports_and_warns_on_unlike_input(t1, caplog, random_denoiser):
    m = random_denoiser()
    data = NoisyPatches(mr_training_images(synthetic_contrasts=0)[:20], length=32)
    from medgan.tasks.denoising import calibrate

    calibrate(m, data)
    vol = Volume(
        rician_noise(t1[:, :, 40:44], np.random.default_rng(0), 10.0),
        np.eye(4),
        {"sources": ["brain.nii"]},
    )
    out = enhance(vol, m, axis=2)  # enhance is the entry point; it routes to denoise
    r = out.meta["denoise"]
    assert r["noise_sigma_estimated"] and abs(r["noise_sigma"] - 10) < 1.5
    assert r["change_rms"] > 0 and np.isfinite(r["change_psnr_db"])
    assert r["histogram_distance"] < 0.25 and not r["warnings"]
    given = denoise(vol, m, sigma=12.0, axis=2).meta["denoise"]
    assert given["noise_sigma"] == 12.0 and not given["noise_sigma_estimated"]

    ct = embedded("ct_small")  # HU: negative air, not a magnitude image
    with caplog.at_level(logging.WARNING):
        warned = denoise(ct.with_array(ct.array + 0.0), m).meta["denoise"]["warnings"]
    assert any("negative" in w for w in warned)
    assert any("looks unlike" in rec.message for rec in caplog.records)
    flat = Volume(np.full((3, 32, 32), 7.0, np.float32), np.eye(4))  # e.g. a blank mask
    assert any("intensity histogram" in w for w in denoise(flat, m).meta["denoise"]["warnings"])
    loud = Volume(rician_noise(t1[:, :, 40:44], np.random.default_rng(0), 60.0), np.eye(4))
    assert any(
        "outside the trained range" in w
        for w in denoise(loud, m, axis=2).meta["denoise"]["warnings"]
    )


def test_denoise_rejects_bad_input(t1, random_denoiser):
    m = random_denoiser()
    bad = t1[:, :, :3].copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(DataError, match="src.nii: contains NaN"):
        denoise(Volume(bad, np.eye(4), {"sources": ["src.nii"]}), m)
    with pytest.raises(DataError, match="positive intensities"):
        denoise(Volume(np.zeros((4, 16, 16), np.float32), np.eye(4)), m)
    with pytest.raises(DataError, match="a.dcm .and 2 more files.: denoise expects"):
        denoise(Volume(np.ones((2, 4, 16, 16)), np.eye(4), {"sources": ["a.dcm", "b", "c"]}), m)
    with pytest.raises(DataError, match="too small to estimate noise"):
        denoise(Volume(np.ones((3, 6, 6), np.float32), np.eye(4)), m)
    for sigma in (-1.0, float("nan")):
        with pytest.raises(ConfigError, match="sigma must be"):
            denoise(Volume(t1[:, :, :2], np.eye(4)), m, sigma=sigma)
    with pytest.raises(ConfigError, match="window"):
        enhance(Volume(t1[:, :, :2], np.eye(4)), build("unet_generator", base_channels=4))


def test_noisy_patches_are_deterministic_and_cover_the_range():
    ims = mr_training_images(synthetic_contrasts=1)
    assert len(ims) > 100 and all(i.ndim == 2 for i in ims)
    ds = NoisyPatches(ims, patch=32, length=400, augment=DenoiseAugment(sigma=(0, 30)))
    x, y = ds[7]
    assert x.shape == (2, 32, 32) and y.shape == (1, 32, 32)
    assert torch.equal(ds[7][0], x)  # same (seed, index), same draw
    items = [ds[i] for i in range(400)]
    told = np.array([float(x[1, 0, 0]) * 127.5 for x, _ in items])
    clean = np.array([bool(torch.equal(x[:1], y)) for x, y in items])
    assert 0.03 < clean.mean() < 0.2 and told.max() > 25  # clean patches and loud ones
    assert (told[clean] == 0).all()  # clean patches are told so
    assert np.isfinite(np.stack([x.numpy() for x, _ in items])).all()
    # the noisy channel is the clean one plus noise of the stated level (where bright)
    x, y = next((x, y) for (x, y), c, t in zip(items, clean, told, strict=True) if t > 10 and not c)
    resid = (x[0] - y[0]) * 127.5
    bright = y[0] > 0
    assert resid[bright].std() == pytest.approx(float(x[1, 0, 0]) * 127.5, rel=0.35)


def test_bias_corrected_nlm_removes_the_dark_bias(t1):
    clean = t1[:, :, 40:42].transpose(2, 0, 1)
    noisy = rician_noise(clean, np.random.default_rng(0), 15.0)
    bg = clean < 5
    plain = nlm_denoise(noisy, 1.0, 15.0)
    fixed = nlm_rician(noisy, 1.0, 15.0)
    assert plain[bg].mean() > 12  # the Rician floor ~ 1.25 sigma
    assert fixed[bg].mean() < 0.4 * plain[bg].mean()
    assert np.mean((fixed - clean) ** 2) < np.mean((plain - clean) ** 2)


def test_denoiser_trains_saves_and_runs_from_the_cli(tmp_path, t1, capsys):
    from medgan.cli import main

    ims = mr_training_images(synthetic_contrasts=0)[::8]
    tr = denoiser_trainer(NoisyPatches(ims, patch=32, length=64), 2, base_channels=8, batch_size=4)
    assert float(tr.generator.trained_sigma[1]) == 30.0
    sums = tr.generator.reference_hist.sum(1)
    assert torch.allclose(sums, torch.ones_like(sums), atol=1e-4)
    tr.fit()
    ckpt = tr.save(tmp_path / "denoiser.pt")
    src = save_nifti(
        Volume(
            rician_noise(t1[:, :, 40:43], np.random.default_rng(0), 10.0),
            np.diag([2.0, 2.0, 2.0, 1.0]),
        ),
        tmp_path / "noisy.nii.gz",
    )
    assert (
        main(
            [
                "enhance",
                str(src),
                str(tmp_path / "out.nii.gz"),
                "--checkpoint",
                str(ckpt),
                "--axis",
                "2",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "noise sigma" in printed and "estimated" in printed
    out = load(tmp_path / "out.nii.gz")
    assert out.array.shape == (98, 116, 3)
    np.testing.assert_allclose(out.affine, np.diag([2.0, 2.0, 2.0, 1.0]))
    with pytest.raises(SystemExit):
        main(
            [
                "enhance",
                str(src),
                str(tmp_path / "o2.nii.gz"),
                "--checkpoint",
                str(ckpt),
                "--sigma",
                "x",
            ]
        )
