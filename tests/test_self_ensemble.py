"""Geometric self-ensemble at inference (medgan.tasks.translation.DihedralMean, the
``ensemble`` option of denoise, denoise_ct, translate, enhance and ``medgan enhance
--ensemble``), and the CLI's enhance path for every enhancement model type."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medgan.data import CTPhantomSlices, IntensityWindow, Volume, load, save_nifti
from medgan.errors import ConfigError
from medgan.models import build
from medgan.tasks import CTNoisyPairs, ct_denoiser_trainer, denoise, enhance
from medgan.tasks.translation import DihedralMean


def _net() -> torch.nn.Module:
    """A small net with no symmetry of its own (random, asymmetric kernels)."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.Tanh(), torch.nn.Conv2d(4, 1, 3, padding=1)
    ).eval()


def _d4(a: np.ndarray) -> list[tuple[np.ndarray, object]]:
    """The 8 images t(a) of ``a`` (..., H, W) with their inverse maps."""
    out = []
    for flip in (False, True):
        af = np.flip(a, -1) if flip else a
        for k in range(4):

            def inverse(y: np.ndarray, k: int = k, flip: bool = flip) -> np.ndarray:
                y = np.rot90(y, -k, (-2, -1))
                return np.flip(y, -1) if flip else y

            out.append((np.ascontiguousarray(np.rot90(af, k, (-2, -1))), inverse))
    return out


def test_dihedral_mean_is_the_mean_over_the_eight_transforms_and_equivariant():
    net = _net()
    x = np.random.default_rng(0).normal(size=(2, 2, 12, 10)).astype(np.float32)
    with torch.no_grad():
        run = lambda a: net(torch.from_numpy(np.ascontiguousarray(a))).numpy()  # noqa: E731
        want = np.mean([inv(run(t)) for t, inv in _d4(x)], axis=0)
        ens = DihedralMean(net)
        got = ens(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(got, want, atol=1e-6)
        assert np.abs(got - run(x)).max() > 1e-3  # the net alone is not symmetric
        for t, inv in _d4(x):  # ens(t(x)) = t(ens(x)) for every t
            np.testing.assert_allclose(inv(ens(torch.from_numpy(t)).numpy()), got, atol=1e-5)


def test_ensemble_denoise_averages_denoise_of_the_turned_volumes_and_is_exact_at_sigma_0(
    random_denoiser,
):
    model = random_denoiser(1)
    arr = np.random.default_rng(2).uniform(0, 200, (2, 24, 24)).astype(np.float32)
    vol = Volume(arr, np.eye(4))
    got = denoise(vol, model, sigma=12.0, ensemble=True).array
    want = np.mean(
        [
            inv(denoise(Volume(t, np.eye(4)), model, sigma=12.0).array)
            for t, inv in _d4(arr)  # square slices: each t keeps the shape
        ],
        axis=0,
    )
    np.testing.assert_allclose(got, want, atol=1e-3)
    plain = denoise(vol, model, sigma=12.0).array
    assert np.abs(got - plain).max() > 0.1
    same = denoise(vol, model, sigma=0.0, ensemble=True).array
    np.testing.assert_allclose(same, arr, atol=1e-3)
    tiled = denoise(vol, model, sigma=12.0, ensemble=True, tile=16, overlap=8).array
    assert np.abs(tiled - got).mean() < 2.0  # grey levels of 200: tiles agree with slices


def test_ensemble_is_refused_for_slice_thickness_sr():
    sr = build("thickness_sr", base_channels=4, depth=2)
    vol = Volume(np.zeros((16, 16, 8), np.float32), np.diag([1.0, 1.0, 2.0, 1.0]))
    with pytest.raises(ConfigError, match="slice axis"):
        enhance(vol, sr, IntensityWindow(0.0, 1.0), axis=2, ensemble=True)


def test_cli_enhance_runs_a_ct_denoiser_checkpoint(tmp_path, capsys):
    from medgan.cli import main

    data = CTPhantomSlices(n=8, size=64, seed=0, noise_hu=10.0)
    hu = np.stack([data.hu(i) for i in range(8)])
    pairs = CTNoisyPairs(hu, IntensityWindow(-1000.0, 1000.0), sigma=(0.0, 40.0))
    ckpt = (
        ct_denoiser_trainer(pairs, 1, base_channels=8, batch_size=4).fit().save(tmp_path / "ct.pt")
    )
    src = save_nifti(Volume(hu[:3], np.eye(4)), tmp_path / "ct.nii.gz")
    for extra in ([], ["--ensemble"], ["--sigma", "15"]):
        out = tmp_path / f"out{len(extra)}.nii.gz"
        assert main(["enhance", str(src), str(out), "--checkpoint", str(ckpt), *extra]) == 0
        printed = capsys.readouterr().out
        assert " HU (" in printed and ("given" if "--sigma" in extra else "estimated") in printed
        assert load(out).array.shape == (3, 64, 64)
    assert main(["translate", str(src), str(tmp_path / "t.nii.gz"), "--checkpoint", str(ckpt)]) == 2
    assert "holds a CTDenoiser: use `medgan enhance`" in capsys.readouterr().err


def test_heldout_evaluation_scores_the_model_its_ensemble_and_tuned_baselines(random_denoiser):
    from skimage.metrics import peak_signal_noise_ratio

    from medgan.data import embedded
    from medgan.tasks.heldout import (
        H_FACTORS,
        add_noise,
        evaluate_denoiser,
        evaluate_denoisers,
        format_seeds,
        format_table,
    )

    t1 = embedded("mni152_t1").array
    sl = lambda k: np.clip(t1[20:68, 30:78, k], 0, None) / t1.max() * 255.0  # noqa: E731
    tune = {"a": sl(30), "b": sl(40)}
    report = {"c": sl(50), "d": sl(60)}
    result = evaluate_denoiser(
        random_denoiser(1), 15.0, with_dipy=False, images=(tune, report), with_bm4d=False
    )
    noisy = add_noise(report, 15.0)
    for k, clean in report.items():
        want = peak_signal_noise_ratio(clean, noisy[k].astype(np.float64), data_range=255.0)
        assert result["rows"][k]["noisy input"][0] == pytest.approx(want, abs=1e-3)
        assert set(result["rows"][k]) == {
            "noisy input",
            "GAN",
            "GAN x8",
            "GAN x8, sigma given",
            f"bias-corrected NLM (h={result['baseline_h']['bias-corrected NLM']}s)",
        }
        assert result["rows"][k]["GAN x8"] != result["rows"][k]["GAN"]
    assert result["baseline_h"]["bias-corrected NLM"] in H_FACTORS
    table = format_table(result)
    assert "GAN x8 better than its input on" in table and "clean-input check" in table
    two = evaluate_denoisers(
        [random_denoiser(1), random_denoiser(2)], 15.0, False, (tune, report), False
    )
    assert two[0]["rows"] == result["rows"]  # baselines shared, same noise: same scores
    seeds = format_seeds(two)
    assert "over 2 models" in seeds and "GAN x8, sigma given" in seeds


def test_cli_ensemble_with_a_plain_generator_and_refused_for_sr(enhance_checkpoint, tmp_path):
    from medgan.cli import main
    from medgan.tasks import superres_trainer
    from medgan.tasks.superres import ThickSlicePairs

    src, ckpt = enhance_checkpoint / "in.nii.gz", enhance_checkpoint / "c.pt"
    base = ["--checkpoint", str(ckpt), "--window", "0,255"]
    assert main(["translate", str(src), str(tmp_path / "a.nii.gz"), *base]) == 0
    assert main(["translate", str(src), str(tmp_path / "b.nii.gz"), *base, "--ensemble"]) == 0
    a, b = load(tmp_path / "a.nii.gz").array, load(tmp_path / "b.nii.gz").array
    assert a.shape == b.shape == (3, 40, 36) and np.abs(a - b).max() > 0
    window = IntensityWindow(0.0, 255.0)
    vol = np.random.default_rng(0).uniform(0, 255, (8, 32, 16)).astype(np.float32)
    sr = superres_trainer(ThickSlicePairs(vol, window), 1, base_channels=4, batch_size=4).fit()
    sr_ckpt = sr.save(tmp_path / "sr.pt")
    thick = save_nifti(Volume(vol[:2], np.diag([1.0, 1.0, 2.0, 1.0])), tmp_path / "t.nii.gz")
    argv = ["enhance", str(thick), str(tmp_path / "s.nii.gz"), "--checkpoint", str(sr_ckpt)]
    assert main([*argv, "--window", "0,255", "--axis", "2", "--ensemble"]) == 2
