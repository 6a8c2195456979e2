"""`medgan fid` and `medgan audit` on real image folders; the memorisation audit's flag."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from medgan.cli import main
from medgan.data import CTPhantomSlices, save_png
from medgan.errors import ConfigError
from medgan.metrics.domain import DomainEncoderFeatures
from medgan.metrics.features import InceptionV3Features, build_features
from medgan.metrics.memorization import memorization_audit


def _folder(path, images):
    path.mkdir(parents=True, exist_ok=True)
    for i, x in enumerate(images):
        save_png(x[0].numpy(), path / f"{i:03d}.png")
    return path


def _phantoms(n, seed):
    ds = CTPhantomSlices(n=n, size=64, seed=seed)
    return torch.stack([ds[i] for i in range(n)])


def test_fid_cli_on_png_folders_and_npz(tmp_path, capsys):
    a = _folder(tmp_path / "a", _phantoms(30, 1))
    b = _folder(tmp_path / "b", (_phantoms(30, 2) + 0.3 * torch.randn(30, 1, 64, 64)).clamp(-1, 1))
    c = _folder(tmp_path / "c", _phantoms(30, 3))
    args = ["fid", str(a), "--features", "domain", "--kid", "--pr", "--quiet"]
    assert main([*args[:2], str(b), *args[2:], "--save-stats", str(tmp_path / "a.npz")]) == 0
    out = capsys.readouterr()
    noisy = json.loads(out.out)
    assert "rank-deficient" in out.err  # 30 samples < 128 features: warned
    assert main(["fid", str(a), str(c), "--features", "domain", "--quiet"]) == 0
    clean = json.loads(capsys.readouterr().out)
    assert clean["fid"] < noisy["fid"] and noisy["n1"] == noisy["n2"] == 30
    assert {"kid_mean", "kid_std", "precision", "recall", "weights_sha256"} <= set(noisy)
    assert main(["fid", str(tmp_path / "a.npz"), str(c), "--features", "domain", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["fid"] == pytest.approx(clean["fid"], rel=1e-9)


def test_fid_between_is_the_fid_of_the_features_by_hand(tmp_path):
    from medgan.errors import DataError, MedganError
    from medgan.metrics import fid_between
    from medgan.metrics.frechet import frechet_distance

    real, fake = _phantoms(20, 1), _phantoms(20, 2)
    a, b = _folder(tmp_path / "a", real), _folder(tmp_path / "b", fake)
    enc = DomainEncoderFeatures()
    with pytest.warns(UserWarning, match="rank-deficient"):  # 20 samples < 128 features
        got = fid_between(a, b, enc, save_real_stats=tmp_path / "a.npz")
    # the PNGs hold the images to 8 bits: score what was written, read back
    fa = enc(torch.stack([_read(p) for p in sorted(a.glob("*.png"))])).double().numpy()
    fb = enc(torch.stack([_read(p) for p in sorted(b.glob("*.png"))])).double().numpy()
    hand = frechet_distance(
        fa.mean(0), np.cov(fa, rowvar=False), fb.mean(0), np.cov(fb, rowvar=False)
    )
    assert got["fid"] == pytest.approx(hand, rel=1e-6) and got["n1"] == got["n2"] == 20
    assert got["saved_stats"] == str(tmp_path / "a.npz")
    with pytest.warns(UserWarning):
        again = fid_between(tmp_path / "a.npz", b, enc)
    assert again["fid"] == pytest.approx(got["fid"], rel=1e-9)
    with pytest.raises(MedganError, match=r"a\.npz: KID/precision-recall need images"):
        fid_between(tmp_path / "a.npz", b, enc, kid=True)
    one = _folder(tmp_path / "one", real[:1])
    with pytest.raises(DataError, match="1 image.*at least 2"):
        fid_between(one, b, enc)


def _read(path):
    from medgan.data import load_png

    vol = load_png(path)
    return torch.from_numpy(vol.array / (vol.meta["max_value"] / 2) - 1.0).float()


def test_missing_inception_weights_say_where(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MEDGAN_INCEPTION_WEIGHTS", raising=False)
    with pytest.raises(
        ConfigError, match="pt_inception-2015-12-05-6726825d.pth.*MEDGAN_INCEPTION_WEIGHTS"
    ):
        InceptionV3Features()
    with pytest.raises(ConfigError, match="does not exist"):
        build_features("inception", tmp_path / "nope.pth")
    a = _folder(tmp_path / "a", _phantoms(2, 1))
    assert main(["fid", str(a), str(a), "--quiet"]) == 2
    assert "MEDGAN_INCEPTION_WEIGHTS" in capsys.readouterr().err


def test_memorization_audit_flags_copies_not_fresh_samples(tmp_path, capsys):
    x = _phantoms(60, 4)
    train, held = x[:30], x[30:]
    fresh = _phantoms(20, 5)
    copies = (train[:20] + 0.01 * torch.randn(20, 1, 64, 64)).clamp(-1, 1)
    enc = DomainEncoderFeatures()
    ok = memorization_audit(fresh, train, held, enc)
    bad = memorization_audit(copies, train, held, enc)
    assert not ok.flagged and bad.flagged
    assert bad.feature_ratio < 0.5 < ok.feature_ratio
    assert bad.closest_pairs[0][1] == bad.closest_pairs[0][0]  # copy i is nearest to train i
    g, t, h = (
        _folder(tmp_path / n, imgs) for n, imgs in (("g", copies), ("t", train), ("h", held))
    )
    assert (
        main(
            [
                "audit",
                "--generated",
                str(g),
                "--train",
                str(t),
                "--held-out",
                str(h),
                "--out",
                str(tmp_path / "audit"),
            ]
        )
        == 0
    )
    assert "FLAG" in capsys.readouterr().out
    report = json.loads((tmp_path / "audit" / "audit.json").read_text())
    assert report["flagged"] and (tmp_path / "audit" / "closest_pairs.png").exists()
    assert np.isfinite(report["pixel_ratio"])
