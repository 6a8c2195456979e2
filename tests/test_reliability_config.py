"""Issue #11: refusals are one named line with exit status 2, and results that used to be
silently wrong (a grid counted as a sample, features added to loaded statistics ignored,
models of another size than the data) are right or refused."""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest
import torch

import medgan
from medgan.callbacks import Checkpoint, Evaluate, MetricLog, SampleGrid
from medgan.checks import check_first_batch
from medgan.cli import main
from medgan.config import TrainConfig
from medgan.data import save_png
from medgan.errors import ConfigError
from medgan.experiment import ExperimentConfig, build_trainer
from medgan.metrics import FID
from medgan.metrics.frechet import FeatureStats


def _models(g_size=16, d_size=16, **d_kw):
    g = medgan.models.build("dcgan_generator", image_size=g_size, base_channels=2, latent_dim=8)
    d = medgan.models.build("dcgan_discriminator", image_size=d_size, base_channels=2, **d_kw)
    return g, d


def _trainer(data, g_size=16, d_size=16):
    g, d = _models(g_size, d_size)
    return medgan.Trainer(
        g, d, data, config=TrainConfig(steps=1, batch_size=4, device="cpu", seed=1)
    )


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "c.pt"
    _trainer(torch.rand(8, 1, 16, 16) * 2 - 1).fit().save(path)
    return path


def _one_line_error(capsys, command):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"medgan {command}: error: "), err
    return err


def _pngs(folder, sizes):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i, s in enumerate(sizes):
        save_png(rng.uniform(-1, 1, (s, s)), folder / f"{i:03d}.png")
    return folder


# --------------------------------------------------------------------------- 1. config types


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("betas", "ab", "a list of 2: [number, number]"),
        ("betas", [0.5], "a list of 2"),
        ("grad_clip", "1", "a number or null"),
        ("seed", 2**70, "[0, 2**53)"),
        ("seed", -1, ">= 0"),
        ("steps", 1.5, "an integer"),
        ("steps", "16", "an integer"),
        ("lr_g", True, "a number"),
        ("compile", 1, "true or false"),
        ("channels_last", "yes", "true or false"),
        ("device", 0, "a string"),
        ("max_minutes", float("nan"), "> 0 or null"),
    ],
)
def test_train_config_names_field_value_and_expected_type(field, value, expected):
    with pytest.raises(ConfigError) as e:
        TrainConfig(**{field: value})
    msg = str(e.value)
    assert f"TrainConfig.{field} must be" in msg and expected in msg, msg
    assert str(value) in msg or repr(value) in msg, msg


def test_train_config_accepts_json_forms():
    cfg = TrainConfig.from_dict(
        {"betas": [0.0, 0.99], "grad_clip": 1, "lr_g": 1, "seed": 2**53 - 1}
    )
    assert cfg.betas == (0.0, 0.99) and cfg.grad_clip == 1 and cfg.seed == 2**53 - 1


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"log_every": 0}, "ExperimentConfig.log_every must be an integer >= 1, got 0"),
        ({"sample_every": -2}, "ExperimentConfig.sample_every must be an integer >= 1, got -2"),
        ({"checkpoint_every": 0}, "ExperimentConfig.checkpoint_every must be an integer >= 1"),
        (
            {"checkpoint_every": "5"},
            "ExperimentConfig.checkpoint_every must be an integer, got '5'",
        ),
        ({"resume": 3}, "ExperimentConfig.resume must be a string or null, got 3"),
        ({"train": 5}, "TrainConfig must be an object"),
        ({"train": {"betas": "ab"}}, "TrainConfig.betas must be a list of 2"),
        ({"data": {"name": "ct_phantoms", "kwargs": []}}, "data.kwargs must be an object"),
    ],
)
def test_experiment_config_refusals(patch, message):
    base = {"data": {"name": "ct_phantoms", "kwargs": {"n": 8, "size": 16}}}
    with pytest.raises(ConfigError) as e:
        ExperimentConfig.from_dict(base | patch)
    assert message in str(e.value), str(e.value)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"data": {"name": "ct_phantoms", "kwargs": {"size": "16"}}}, "data 'ct_phantoms': size"),
        (
            {
                "generator": {"name": "dcgan_generator", "kwargs": {"image_size": "16"}},
                "discriminator": "dcgan_discriminator",
            },
            "generator 'dcgan_generator': image_size must be an integer, got '16' (str)",
        ),
        (
            {"loss": {"name": "relativistic", "kwargs": {"r1_weight": "1"}}},
            "loss 'relativistic': r1_weight must be a number, got '1'",
        ),
    ],
)
def test_registry_kwargs_are_type_checked_against_the_builder(tmp_path, patch, message):
    base = {
        "data": {"name": "ct_phantoms", "kwargs": {"n": 8, "size": 16}},
        "out_dir": str(tmp_path / "run"),
    }
    with pytest.raises(ConfigError) as e:
        build_trainer(ExperimentConfig.from_dict(base | patch))
    assert message in str(e.value), str(e.value)


def test_callbacks_refuse_zero_or_negative_intervals(tmp_path):
    for make in (
        lambda: SampleGrid(tmp_path, every=0),
        lambda: MetricLog(tmp_path / "m.csv", every=0),
        lambda: Evaluate(lambda t: {}, every=-1),
        lambda: Checkpoint(tmp_path, every=0),
    ):
        with pytest.raises(ValueError, match="every"):  # ConfigError is a ValueError
            make()


def test_cli_train_bad_config_is_one_line(tmp_path, capsys):
    for patch, needle in (
        ({"train": {"seed": 2**70}}, "TrainConfig.seed must be an integer in [0, 2**53)"),
        ({"train": {"grad_clip": "1"}}, "TrainConfig.grad_clip must be a number or null"),
        ({"log_every": 0}, "log_every must be an integer >= 1, got 0"),
    ):
        cfg = {"data": "ct_phantoms", "out_dir": str(tmp_path / "run")} | patch
        path = tmp_path / "cfg.json"
        path.write_text(json.dumps(cfg))
        assert main(["train", "--config", str(path)]) == 2
        err = _one_line_error(capsys, "train")
        assert str(path) in err and needle in err, err


# --------------------------------------------------------------------------- 2. CLI errors


def test_out_that_is_an_existing_file(tmp_path, capsys, checkpoint):
    f = tmp_path / "taken"
    f.write_text("x")
    assert main(["sample", str(checkpoint), "-n", "2", "--out", str(f)]) == 2
    assert f"--out {f} is an existing file" in _one_line_error(capsys, "sample")
    assert main(["demo", "--out", str(f / "sub"), "--steps", "1", "--size", "16"]) == 2
    assert f"is under the file {f}" in _one_line_error(capsys, "demo")
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({"data": "ct_phantoms", "out_dir": str(f)}))
    assert main(["train", "--config", str(cfg)]) == 2
    assert f"out_dir {f} is an existing file" in _one_line_error(capsys, "train")
    a = _pngs(tmp_path / "a", [16, 16])
    args = ["audit", "--generated", str(a), "--train", str(a), "--held-out", str(a)]
    assert main([*args, "--out", str(f)]) == 2
    assert "is an existing file" in _one_line_error(capsys, "audit")


@pytest.mark.parametrize(
    ("argv", "command", "needle"),
    [
        (
            ["sample", "c.pt", "-n", "0", "--out", "s"],
            "sample",
            "argument -n: must be an integer >= 1, got 0",
        ),
        (
            ["sample", "c.pt", "-n", "x", "--out", "s"],
            "sample",
            "argument -n: must be an integer, got 'x'",
        ),
        (["sample", "c.pt", "--seed", str(2**70), "--out", "s"], "sample", "[0, 2**53)"),
        (
            ["fid", "a", "b", "--batch-size", "0"],
            "fid",
            "argument --batch-size: must be an integer >= 1",
        ),
        (["demo", "--steps", "-3"], "demo", "argument --steps: must be an integer >= 1, got -3"),
        (["sample", "c.pt"], "sample", "required: --out"),
    ],
)
def test_argument_errors_are_one_line(capsys, argv, command, needle):
    with pytest.raises(SystemExit) as e:  # argparse's convention: the command line exits
        main(argv)
    assert e.value.code == 2
    assert needle in _one_line_error(capsys, command)


def test_fid_needs_two_images_per_side(tmp_path, capsys):
    one, many = _pngs(tmp_path / "one", [16]), _pngs(tmp_path / "many", [16] * 4)
    assert main(["fid", str(many), str(one), "--features", "domain", "--quiet"]) == 2
    err = _one_line_error(capsys, "fid")
    assert f"{one}: 1 image(s); FID needs at least 2 images per side" in err


def test_fid_junk_weights_and_junk_npz(tmp_path, capsys):
    a = _pngs(tmp_path / "a", [16] * 3)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a state dict\n" * 10)
    assert main(["fid", str(a), str(a), "--weights", str(junk), "--quiet"]) == 2
    assert f"--weights {junk} is not a readable FID Inception weights file" in _one_line_error(
        capsys, "fid"
    )
    assert main(["fid", str(a), str(a), "--features", "domain", "--weights", str(junk)]) == 2
    assert "--features domain does not use it" in _one_line_error(capsys, "fid")
    for content in (b"", b"junk" * 100, b"PK\x03\x04broken zip"):
        npz = tmp_path / "s.npz"
        npz.write_bytes(content)
        assert main(["fid", str(npz), str(a), "--features", "domain", "--quiet"]) == 2
        assert f"{npz}: not a statistics file" in _one_line_error(capsys, "fid")


def test_audit_with_mixed_image_sizes(tmp_path, capsys):
    mixed = _pngs(tmp_path / "mixed", [16, 16, 32])
    same = _pngs(tmp_path / "same", [16] * 3)
    argv = ["audit", "--generated", str(mixed), "--train", str(same), "--held-out", str(same)]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = _one_line_error(capsys, "audit")
    assert f"{mixed}: images of different sizes [(1, 16, 16), (1, 32, 32)]" in err


def test_disk_full_and_permission_denied_are_one_line_naming_the_path(
    tmp_path, capsys, monkeypatch, checkpoint
):
    import medgan.images

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")  # write() names no file

    out = tmp_path / "s"
    monkeypatch.setattr(medgan.images, "save_pngs", full)
    assert main(["sample", str(checkpoint), "-n", "2", "--out", str(out)]) == 2
    assert f"error: {out}: No space left on device" in _one_line_error(capsys, "sample")

    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(out / "sample_00000.png"))

    monkeypatch.setattr(medgan.images, "save_pngs", denied)
    assert main(["sample", str(checkpoint), "-n", "2", "--out", str(out)]) == 2
    err = _one_line_error(capsys, "sample")
    assert f"error: {out / 'sample_00000.png'}: Permission denied" in err


# --------------------------------------------------------------------------- 3. sample folder


def test_sample_folder_holds_exactly_the_samples(tmp_path, capsys, checkpoint):
    out = tmp_path / "S"
    assert main(["sample", str(checkpoint), "-n", "5", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"sample_{i:05d}.png" for i in range(5)]
    assert (tmp_path / "S_grid.png").is_file()
    capsys.readouterr()
    assert main(["fid", str(out), str(out), "--features", "domain", "--quiet"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n1"] == result["n2"] == 5
    # a second run into the same folder would mix old and new samples: refused
    assert main(["sample", str(checkpoint), "-n", "2", "--out", str(out)]) == 2
    assert "already holds 5 sample file(s)" in _one_line_error(capsys, "sample")
    # a grid an older version wrote among the samples is refused, not scored
    (tmp_path / "S_grid.png").rename(out / "grid.png")
    assert main(["fid", str(out), str(out), "--features", "domain", "--quiet"]) == 2
    assert "grid.png is the overview grid" in _one_line_error(capsys, "fid")


# --------------------------------------------------------------------------- 4. statistics


def _stats(f):
    s = FeatureStats()
    s.update(f)
    return s


def test_features_added_to_loaded_statistics_merge_exactly(tmp_path):
    rng = np.random.default_rng(0)
    a, b = rng.normal(1.0, 2.0, (300, 8)), rng.normal(-0.5, 1.0, (200, 8))
    written = _stats(a).save(tmp_path / "real")  # numpy appends .npz: the path says so
    assert written == tmp_path / "real.npz" and written.is_file()
    loaded = FeatureStats.load(written)
    loaded.update(b)
    both = np.concatenate([a, b])
    assert loaded.n == 500
    np.testing.assert_allclose(loaded.mu, both.mean(0), rtol=1e-12)
    np.testing.assert_allclose(loaded.sigma, np.cov(both, rowvar=False), rtol=1e-10, atol=1e-12)
    merged = _stats(b).merge(FeatureStats.load(written))
    np.testing.assert_allclose(merged.sigma, np.cov(both, rowvar=False), rtol=1e-10, atol=1e-12)

    # through FID: the given statistics are not modified, and reset() restores them
    given = FeatureStats.load(written)
    fid = FID(torch.nn.Identity(), real_stats=given)
    fid.update_features(b, real=True)
    np.testing.assert_allclose(fid.real.mu, both.mean(0), rtol=1e-12)
    np.testing.assert_array_equal(given.mu, a.mean(0))  # the file's values, untouched
    fid.reset()
    assert fid.real.n == 300
    np.testing.assert_allclose(fid.real.sigma, np.cov(a, rowvar=False), rtol=1e-12)


def test_statistics_without_a_count_are_frozen(tmp_path):
    rng = np.random.default_rng(1)
    a = rng.normal(size=(50, 4))
    path = tmp_path / "pytorch_fid.npz"
    np.savez(path, mu=a.mean(0), sigma=np.cov(a, rowvar=False))  # pytorch-fid's layout
    fid = FID(torch.nn.Identity(), real_stats=FeatureStats.load(path))
    with pytest.raises(ConfigError, match=r"pytorch_fid.npz.*no sample count.*frozen"):
        fid.update_features(a, real=True)
    with pytest.raises(ConfigError, match="no sample count"):
        _stats(a).merge(FeatureStats.load(path))
    fid.update_features(a, real=False)
    assert fid.compute() == pytest.approx(0.0, abs=1e-9)  # used as it is: still fine


# --------------------------------------------------------------------------- 5. model sizes


def test_models_of_another_size_than_the_data_fail_in_one_line():
    with pytest.raises(ConfigError) as e:
        _trainer(torch.rand(8, 1, 98, 116) * 2 - 1).fit()
    msg = str(e.value)
    assert "items are (1, 98, 116) but the generator makes (1, 16, 16): pass size=16" in msg
    with pytest.raises(ConfigError, match=r"discriminator fails on them .*spatial size \(16, 16\)"):
        _trainer(torch.rand(8, 1, 16, 16) * 2 - 1, d_size=32).fit()


def test_the_first_batch_check_changes_no_state():
    from medgan.augment import AugmentedDiscriminator, DiffAugment

    g, d = _models()
    d = AugmentedDiscriminator(d, DiffAugment(p=0.5, seed=3))
    tr = medgan.Trainer(
        g,
        d,
        torch.rand(8, 1, 16, 16) * 2 - 1,
        config=TrainConfig(steps=1, batch_size=4, device="cpu"),
    )
    g.train()
    d.eval()  # mixed modes must come back as they were
    rng, aug = torch.get_rng_state(), d.augment.rng.get_state()
    noise = tr.noise_rng.get_state()
    check_first_batch(tr)
    assert g.training and not d.training and not d.discriminator.training
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.equal(d.augment.rng.get_state(), aug)
    assert torch.equal(tr.noise_rng.get_state(), noise)
