"""The `medgan` command: demo, train --config (with auto-resume), sample, listings, errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import torch

from medgan.callbacks import read_metric_log
from medgan.cli import main


def test_demo_writes_grid_plot_checkpoint(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--steps", "4", "--size", "16", "--quiet"]) == 0
    printed = capsys.readouterr().out
    for rel in (
        "samples/samples_final.png",
        "losses.png",
        "metrics.csv",
        "checkpoints/last.pt",
        "config.json",
        "samples/real_vs_generated.png",
    ):
        assert (out / rel).exists(), rel
        assert str(out / rel) in printed or rel == "config.json"


def test_demo_batch_size_and_threads_are_used_and_threads_restored(tmp_path):
    import json

    import torch

    before = torch.get_num_threads()
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--steps", "2", "--size", "16", "--quiet"]
    assert main([*argv, "--batch-size", "4", "--threads", "1"]) == 0
    assert json.loads((out / "config.json").read_text())["train"]["batch_size"] == 4
    assert torch.get_num_threads() == before
    # restored on failure too (an unknown data set ends the command with status 2)
    bad = ["demo", "--out", str(tmp_path / "d2"), "--threads", "1", "--data", "no_such_data"]
    assert main(bad) == 2
    assert torch.get_num_threads() == before


def _config(tmp_path, steps, **fields):
    """A ``medgan train --config`` file: 32 CT phantoms of 16 px, batch 8, on the CPU, into
    ``tmp_path / "run"`` (the ``tmp_run_dir`` fixture); ``fields`` add or replace keys."""
    cfg = {
        "data": {"name": "ct_phantoms", "kwargs": {"n": 32, "size": 16}},
        "train": {"steps": steps, "batch_size": 8, "device": "cpu"},
        "out_dir": str(tmp_path / "run"),
        "checkpoint_every": 2,
        "sample_every": 2,
        "log_every": 1,
    }
    p = tmp_path / "cfg.json"
    p.write_text(json.dumps(cfg | fields))
    return p


TINY_DCGAN = {
    "generator": {
        "name": "dcgan_generator",
        "kwargs": {"image_size": 16, "base_channels": 4, "latent_dim": 8},
    },
    "discriminator": {
        "name": "dcgan_discriminator",
        "kwargs": {"image_size": 16, "base_channels": 4},
    },
    "loss": {"name": "hinge"},
}


def test_train_config_resumes_automatically(tmp_path, tmp_run_dir):
    assert main(["train", "--config", str(_config(tmp_path, 4, **TINY_DCGAN)), "--quiet"]) == 0
    assert main(["train", "--config", str(_config(tmp_path, 6, **TINY_DCGAN)), "--quiet"]) == 0
    rows = read_metric_log(tmp_run_dir / "metrics.csv")
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]


def test_train_config_without_models_uses_the_recipe(tmp_path, tmp_run_dir):
    relativistic = {"name": "relativistic", "kwargs": {"r1_weight": 0.5}}
    kw = {"loss": relativistic, "checkpoint_every": 1, "sample_every": 3}
    assert main(["train", "--config", str(_config(tmp_path, 3, **kw)), "--quiet"]) == 0
    path = _config(tmp_path, 5, **kw)
    assert main(["train", "--config", str(path), "--quiet"]) == 0  # resumes at step 3
    rows = read_metric_log(tmp_run_dir / "metrics.csv")
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5] and "aug_p" in rows[0]
    last = tmp_run_dir / "checkpoints" / "last.pt"
    ckpt = torch.load(last, weights_only=True)
    assert ckpt["generator"]["spec"]["name"] == "modern_generator"
    assert ckpt["loss"]["kwargs"]["r1_weight"] == 0.5 and ckpt["config"]["batch_size"] == 8
    assert main(["sample", str(last), "-n", "3", "--out", str(tmp_path / "s")]) == 0
    path = _config(tmp_path, 5, **(kw | {"loss": {"name": "hinge"}}))
    assert main(["train", "--config", str(path), "--quiet"]) == 2  # the recipe is relativistic


def test_sample_from_checkpoint(tmp_path, tmp_run_dir):
    assert main(["train", "--config", str(_config(tmp_path, 2, **TINY_DCGAN)), "--quiet"]) == 0
    out = tmp_path / "samples"
    last = tmp_run_dir / "checkpoints" / "last.pt"
    assert main(["sample", str(last), "-n", "5", "--out", str(out)]) == 0
    assert len(list(out.glob("*.png"))) == 5 and (tmp_path / "samples_grid.png").exists()


def test_3d_training_and_nifti_samples(tmp_path):
    # 3D models on 2D phantom data would be wrong: use random volumes through the python API
    import torch

    import medgan

    g = medgan.models.build(
        "dcgan_generator", image_size=16, base_channels=2, latent_dim=8, spatial_dims=3
    )
    d = medgan.models.build("dcgan_discriminator", image_size=16, base_channels=2, spatial_dims=3)
    tr = medgan.Trainer(
        g,
        d,
        torch.rand(8, 1, 16, 16, 16) * 2 - 1,
        config=medgan.TrainConfig(steps=1, batch_size=4, device="cpu"),
    ).fit()
    tr.save(tmp_path / "c.pt")
    assert main(["sample", str(tmp_path / "c.pt"), "-n", "2", "--out", str(tmp_path / "s")]) == 0
    vol = nib.load(tmp_path / "s" / "sample_00000.nii.gz")
    assert vol.shape == (16, 16, 16)
    # written by medgan.data.save_nifti: sform and qform set, the values' unit named
    assert int(vol.header["sform_code"]) == int(vol.header["qform_code"]) == 1
    assert b"unit=[-1,1]" in vol.header["descrip"].item()
    from medgan.generate import generate, load_generator

    want = generate(load_generator(tmp_path / "c.pt"), 2, seed=0)[0, 0].numpy()
    np.testing.assert_array_equal(np.asarray(vol.dataobj), want)


def test_errors_are_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"generator": "dcgan_generator", "discriminator": "nope", "data": "ct_phantoms"})
    )
    assert main(["train", "--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'nope'" in err and "dcgan_discriminator" in err
    assert main(["train", "--config", str(tmp_path / "missing.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["sample", str(tmp_path / "missing.pt"), "--out", str(tmp_path)]) == 2


def test_module_entry_point_lists_registries():
    exe = shutil.which("medgan")
    cmd = [exe] if exe else [sys.executable, "-m", "medgan"]
    r = subprocess.run([*cmd, "losses"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "hinge" in r.stdout.split()
