"""The adversarial loop: exact resume, atomic checkpoints, NaN handling, callbacks, AMP."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch import nn

import medgan
from medgan import callbacks as cb
from medgan import checkpoint as ckpt_io
from medgan.batches import GANInputs, Paired, unpack
from medgan.data import CTPhantomSlices
from medgan.errors import CheckpointError, ConfigError, TrainingDivergedError


def flat_state(tr):
    sd = {f"g.{k}": v for k, v in tr.generator.state_dict().items()}
    sd |= {f"d.{k}": v for k, v in tr.discriminator.state_dict().items()}
    sd |= {f"ema.{k}": v for k, v in tr.ema.state_dict().items()}
    for name, opt in (("og", tr.opt_g), ("od", tr.opt_d)):
        for pid, st in opt.state_dict()["state"].items():
            for k, v in st.items():
                sd[f"{name}.{pid}.{k}"] = v
    return sd


def test_resume_is_bit_identical(tmp_path, tiny_trainer):
    # 40 items / batch 8 = 5 batches per epoch; 2 D batches per step: epochs wrap mid-step.
    straight = tiny_trainer(lr_schedule="linear_decay", warmup_steps=3).fit(12)
    first = tiny_trainer(lr_schedule="linear_decay", warmup_steps=3).fit(5)
    first.save(tmp_path / "c.pt")
    resumed = tiny_trainer(seed=123, lr_schedule="linear_decay", warmup_steps=3)  # other init
    resumed.resume(tmp_path / "c.pt").fit(12)
    a, b = flat_state(straight), flat_state(resumed)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert straight.opt_g.param_groups[0]["lr"] == resumed.opt_g.param_groups[0]["lr"]
    assert (straight.epoch, straight.batch_in_epoch) == (resumed.epoch, resumed.batch_in_epoch)
    # and training really changed the weights
    fresh = tiny_trainer()
    assert not torch.equal(fresh.generator.state_dict()["net.0.weight"], a["g.net.0.weight"])


def test_resume_with_history_and_half_decay_is_bit_identical(tmp_path, tiny_trainer):
    cfg = {"fake_history": 10, "lr_schedule": "half_then_decay"}
    straight = tiny_trainer(**cfg).fit(12)
    first = tiny_trainer(**cfg).fit(5)
    first.save(tmp_path / "c.pt")
    tiny_trainer().fit(1).save(tmp_path / "plain.pt")
    resumed = tiny_trainer(seed=7, **cfg).resume(tmp_path / "c.pt")
    assert resumed.fake_history.count == 10
    resumed.fit(12)
    a, b = flat_state(straight), flat_state(resumed)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert torch.equal(straight.fake_history.images, resumed.fake_history.images)
    with pytest.raises(CheckpointError, match="history of 10 generated images"):
        tiny_trainer(fake_history=20).resume(tmp_path / "c.pt")
    with pytest.raises(CheckpointError, match="this run has 10"):
        tiny_trainer(fake_history=10).resume(tmp_path / "plain.pt")
    # and the history changed what D saw: a run without it ends elsewhere
    plain = flat_state(tiny_trainer(lr_schedule="half_then_decay").fit(12))
    assert any(not torch.equal(plain[k], a[k]) for k in a if k.startswith("d."))


def test_checkpoint_weights_only_contents_and_spec(tmp_path, tiny_trainer):
    tr = tiny_trainer(steps=2).fit()
    p = tr.save(tmp_path / "x.pt")
    raw = torch.load(p, weights_only=True)
    assert raw["generator"]["spec"] == {
        "name": "dcgan_generator",
        "kwargs": {"image_size": 16, "base_channels": 4, "latent_dim": 8},
    }
    assert raw["loss"] == {
        "name": "non_saturating",
        "kwargs": {"r1_weight": 0.5, "r2_weight": 0.0, "gp_weight": 0.0, "reg_every": 1},
    }
    assert raw["step"] == 2 and "rng" in raw and "sched_g" in raw and "scaler_g" in raw


def test_checkpoint_from_other_model_and_truncated_file(tmp_path, tiny_trainer):
    tr = tiny_trainer(steps=1).fit()
    p = tr.save(tmp_path / "x.pt")
    g = medgan.models.build("resnet_generator", image_size=16, base_channels=4, latent_dim=8)
    d = medgan.models.build("dcgan_discriminator", image_size=16, base_channels=4)
    other = medgan.Trainer(
        g, d, CTPhantomSlices(n=16, size=16), config=medgan.TrainConfig(batch_size=8, device="cpu")
    )
    with pytest.raises(CheckpointError, match="dcgan_generator"):
        other.resume(p)
    data = p.read_bytes()
    bad = tmp_path / "truncated.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        tr.resume(bad)
    with pytest.raises(CheckpointError, match="does not exist"):
        tr.resume(tmp_path / "missing.pt")
    plain = tmp_path / "plain.pt"
    torch.save({"a": torch.zeros(1)}, plain)
    with pytest.raises(CheckpointError, match="not a medgan checkpoint"):
        tr.resume(plain)


_KILLER = r"""
import sys, torch
from medgan.checkpoint import save_atomic
big = {"format": "medgan", "version": 1, "w": torch.randn(40_000_000)}
print("ready", flush=True)
while True:
    save_atomic(big, sys.argv[1])
"""


def test_interrupted_save_leaves_previous_checkpoint_loadable(tmp_path):
    target = tmp_path / "ckpt.pt"
    ckpt_io.save_atomic({"format": "medgan", "version": 1, "step": 7}, target)
    proc = subprocess.Popen([sys.executable, "-c", _KILLER, str(target)], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    deadline = time.time() + 60
    while not list(tmp_path.glob(".ckpt.pt.*.tmp")) and time.time() < deadline:
        time.sleep(0.005)  # wait until a write is in progress ...
    assert list(tmp_path.glob(".ckpt.pt.*.tmp")), "the writer never started a save"
    os.kill(proc.pid, signal.SIGKILL)  # ... and kill it mid-write
    proc.wait()
    state = ckpt_io.load(target)  # still loadable: old or new, never half
    assert state.get("step") == 7 or state["w"].numel() == 40_000_000


def test_nan_loss_stops_with_message_and_writes_nothing(tmp_path, tiny_trainer, nan_loss):
    ckdir = tmp_path / "ck"
    tr = tiny_trainer(loss=nan_loss(), callbacks=[cb.Checkpoint(ckdir, every=1)])
    with pytest.raises(TrainingDivergedError, match="step 1"):
        tr.fit()
    assert not ckdir.exists() or not list(ckdir.iterdir())


def test_nan_rollback_restores_last_checkpoint(tmp_path, tiny_trainer, nan_loss):
    tr = tiny_trainer(
        loss=nan_loss(9), on_nan="rollback", callbacks=[cb.Checkpoint(tmp_path, every=2)]
    )
    tr.fit(8)  # NaN in step 5: back to step 4's checkpoint, then on to 8
    assert tr._rollbacks == 1
    assert all(torch.isfinite(p).all() for p in tr.generator.parameters())


def test_standard_callbacks_write_grid_log_plot_checkpoints(tmp_path, tiny_trainer):
    tr = tiny_trainer(
        steps=6,
        callbacks=medgan.callbacks.standard_callbacks(
            tmp_path, checkpoint_every=2, sample_every=3, log_every=1, keep_last=2
        ),
    )
    tr.fit(progress=True)
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*.pt")) == [
        "step_00000004.pt",
        "step_00000006.pt",
    ]
    assert (tmp_path / "checkpoints" / "last.pt").exists()
    assert {p.name for p in (tmp_path / "samples").iterdir()} == {
        "samples_00000003.png",
        "samples_00000006.png",
        "samples_final.png",
    }
    rows = cb.read_metric_log(tmp_path / "metrics.csv")
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert all(math.isfinite(r["d_loss"]) and r["steps_per_s"] > 0 for r in rows)
    from PIL import Image

    assert Image.open(tmp_path / "losses.png").size[0] > 100
    # resuming from step 4 drops the log rows after it, then appends again
    tr2 = tiny_trainer(steps=6, callbacks=[cb.MetricLog(tmp_path / "metrics.csv", every=1)])
    tr2.resume(tmp_path / "checkpoints" / "step_00000004.pt").fit()
    assert [r["step"] for r in cb.read_metric_log(tmp_path / "metrics.csv")] == [1, 2, 3, 4, 5, 6]


def test_evaluate_callback_and_jsonl(tmp_path, tiny_trainer):
    ev = cb.Evaluate(
        lambda t: {"mean": float(t.ema(t.sample_noise(4)).mean())},
        every=2,
        log_path=tmp_path / "eval.jsonl",
    )
    tiny_trainer(steps=4, callbacks=[ev]).fit()
    assert [h["step"] for h in ev.history] == [2, 4]
    assert len((tmp_path / "eval.jsonl").read_text().splitlines()) == 2


def test_class_conditional_training_hands_g_the_batch_labels(tiny_gan):
    """Every label is 1: G's embedding of class 1 learns, that of class 0 is never looked up
    (the G update draws the batch's labels, not random ones); the output depends on it."""
    g, d = tiny_gan(num_classes=2)
    data = torch.utils.data.TensorDataset(
        torch.rand(16, 1, 16, 16) * 2 - 1, torch.ones(16, dtype=torch.long)
    )
    before = g.inputs.embed.weight.detach().clone()
    cfg = medgan.TrainConfig(steps=2, batch_size=8, device="cpu")
    tr = medgan.Trainer(g, d, data, config=cfg, loss=medgan.losses.Hinge()).fit()
    after = tr.generator.inputs.embed.weight.detach()
    assert torch.equal(after[0], before[0]) and not torch.equal(after[1], before[1])
    z = tr.sample_noise(4)
    with torch.no_grad():
        zeros, ones = torch.zeros(4, dtype=torch.long), torch.ones(4, dtype=torch.long)
        assert (tr.generator(z, zeros) - tr.generator(z, ones)).abs().max() > 1e-3


def test_3d_wgan_gp_trains_with_a_nonzero_penalty():
    medgan.seed_everything(0)
    g3 = medgan.models.build(
        "dcgan_generator", image_size=16, base_channels=2, latent_dim=8, spatial_dims=3
    )
    d3 = medgan.models.build(
        "dcgan_discriminator", image_size=16, base_channels=2, spatial_dims=3, norm="none"
    )
    vols = torch.rand(8, 1, 16, 16, 16) * 2 - 1
    tr = medgan.Trainer(
        g3,
        d3,
        vols,
        config=medgan.TrainConfig(steps=3, batch_size=4, device="cpu", n_critic=2),
        loss=medgan.losses.Wasserstein(),
    )
    before = [p.detach().clone() for p in g3.parameters()]
    logs = [tr.train_step() for _ in range(3)]
    assert all(float(x["gp"]) > 0 for x in logs)  # ||grad D|| != 1 at an untrained D
    assert (
        len({float(x["d_loss"]) for x in logs}) == 3
        and len({float(x["g_loss"]) for x in logs}) == 3
    )
    assert any(not torch.equal(a, b) for a, b in zip(before, g3.parameters()))


def test_paired_adapter_trains_image_to_image():
    class Translator(nn.Module):  # a user's image-to-image generator
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x):
            return torch.tanh(self.conv(x))

    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    class CondD(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(
                nn.Conv2d(2, 4, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(), nn.LazyLinear(1)
            )

        def forward(self, x, source):
            seen.append((x.detach(), source.detach()))
            return self.net(torch.cat([x, source], 1)).squeeze(1)

    src = torch.rand(16, 1, 16, 16) * 2 - 1
    data = torch.utils.data.TensorDataset(src, -src)
    d = CondD()
    d(src[:1], src[:1])
    seen.clear()
    g = Translator()
    before = g.conv.weight.detach().clone()
    tr = medgan.Trainer(
        g,
        d,
        data,
        adapter=Paired(),
        config=medgan.TrainConfig(steps=3, batch_size=8, device="cpu"),
    )
    tr.fit()
    assert not torch.equal(tr.generator.conv.weight, before)
    # D judges (target, its own source) pairs: every real image it saw came with -image
    real_calls = [(x, s) for x, s in seen if any(torch.equal(x[0], -t) for t in src)]
    assert real_calls and all(torch.equal(s, -x) for x, s in real_calls)


def test_the_adapter_marks_the_noise_the_generator_update_redraws(tiny_gan):
    """The trainer redraws the argument the adapter marks as noise (here the second), never
    assumes it is the first; an adapter that marks none keeps its arguments."""
    base, d = tiny_gan()
    calls: list[tuple[str, torch.Tensor]] = []

    class TaggedG(nn.Module):  # G(tag, z): the noise is not the first argument
        latent_dim = 8

        def __init__(self):
            super().__init__()
            self.net = base

        def forward(self, tag, z):
            calls.append((tag, z.detach().clone()))
            return self.net(z)

    def adapter(batch, sample_noise):
        real, _ = unpack(batch)
        return GANInputs(real, ("tag", sample_noise(real.shape[0])), None, noise_arg=1)

    cfg = medgan.TrainConfig(steps=1, batch_size=8, device="cpu", n_critic=1)
    tr = medgan.Trainer(TaggedG(), d, CTPhantomSlices(n=16, size=16), adapter=adapter, config=cfg)
    tr.train_step()
    (tag_d, z_d), (tag_g, z_g) = calls
    assert tag_d == tag_g == "tag"
    assert z_g.shape == z_d.shape and not torch.equal(z_g, z_d)  # fresh z for the G update
    x = GANInputs(torch.zeros(2, 1), ("source",))
    assert x.renoise(lambda n: 1 / 0) is x  # G takes no noise: nothing drawn


def test_fixed_inputs_neither_consume_data_nor_touch_training_randomness(tiny_trainer):
    tr = tiny_trainer()
    noise = tr.noise_rng.get_state()
    a, b = tr.fixed_inputs(4, seed=5), tr.fixed_inputs(4, seed=5)
    assert torch.equal(a.real, b.real) and torch.equal(a.g_args[0], b.g_args[0])
    assert torch.equal(a.real, torch.stack([tr.dataset[i] for i in range(4)]))
    picked = tr.fixed_inputs([3, 1], seed=5)
    assert torch.equal(picked.real, torch.stack([tr.dataset[3], tr.dataset[1]]))
    assert torch.equal(tr.noise_rng.get_state(), noise)
    assert (tr.epoch, tr.batch_in_epoch) == (0, 0)

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            yield from CTPhantomSlices(n=16, size=16)

    streamed = tiny_trainer(data=Stream())
    first = streamed.fixed_inputs(3, seed=0)  # the first 3 of the next batch, peeked
    assert first.real.shape[0] == first.g_args[0].shape[0] == 3
    assert (streamed.epoch, streamed.batch_in_epoch) == (0, 0)
    assert torch.equal(streamed.next_inputs().real[:3], first.real)
    with pytest.raises(ConfigError, match="cannot be indexed"):
        streamed.fixed_inputs([0, 1], seed=0)


def test_bf16_autocast_path_runs_on_cpu(tiny_trainer):
    tr = tiny_trainer(steps=2, amp="bf16", n_critic=1).fit()
    assert all(torch.isfinite(p).all() for p in tr.generator.parameters())


def test_config_validation(tiny_trainer):
    with pytest.raises(ConfigError, match="n_critic"):
        medgan.TrainConfig(n_critic=0)
    with pytest.raises(ConfigError, match="amp"):
        medgan.TrainConfig(amp="fp8")
    with pytest.raises(ConfigError, match="fp16"):
        tiny_trainer(amp="fp16")
    with pytest.raises(ConfigError, match="batch_size"):
        tiny_trainer(batch_size=64)
    with pytest.raises(ConfigError, match="unknown TrainConfig"):
        medgan.TrainConfig.from_dict({"stepz": 3})
    c = medgan.TrainConfig(steps=5, betas=[0.0, 0.9])
    assert medgan.TrainConfig.from_dict(c.to_dict()) == c


def test_trainer_step_has_no_loss_formula():
    # STYLE: the trainer calls the loss object; it never writes softplus/log/relu itself.
    src = Path(medgan.trainer.__file__).read_text()
    for token in ("softplus", "logsigmoid", "F.relu", ".log("):
        assert token not in src


def test_exploding_weights_without_nan_are_flagged(caplog, monkeypatch, tiny_trainer):
    """Issue #11: lr 10 keeps every loss finite while the weights blow up; training must
    warn while it happens, and stop once a weight passes the divergence limit."""
    import logging

    import medgan.trainer as trainer_mod

    for seed in range(3):  # a chaotic game: the property must hold for every seed
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="medgan.trainer"):
            tiny_trainer(seed, lr_g=10.0, lr_d=10.0, steps=25, ema_halflife_kimg=None).fit()
        assert any("weights are exploding" in r.getMessage() for r in caplog.records), seed
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="medgan.trainer"):
            tiny_trainer(seed, steps=25).fit()  # the default learning rates: no warning
        assert not any("exploding" in r.getMessage() for r in caplog.records), seed
    monkeypatch.setattr(trainer_mod, "DIVERGED_WEIGHT", 20.0)
    with pytest.raises(TrainingDivergedError, match="weight exceeded 20"):
        tiny_trainer(lr_g=10.0, lr_d=10.0, steps=25, ema_halflife_kimg=None).fit()


def test_rollback_continues_on_new_batches_not_a_replay(tmp_path, tiny_trainer, nan_loss):
    """Issue #11: after a rollback the data stream goes on past the batches that diverged."""
    seen: list[torch.Tensor] = []
    tr = tiny_trainer(
        loss=nan_loss(9), on_nan="rollback", callbacks=[cb.Checkpoint(tmp_path, every=2)]
    )
    inner = tr.next_inputs

    def recording():
        x = inner()
        seen.append(x.real.clone())
        return x

    tr.next_inputs = recording
    tr.fit(8)
    assert tr._rollbacks == 1
    # steps 5-6 after the rollback (to step 4) used batches 11.. (not a replay of 9-10)
    replayed = [
        i for i in range(10, len(seen)) if any(torch.equal(seen[i], seen[j]) for j in (8, 9))
    ]
    assert not replayed, replayed
