"""No lost runs, no memory bombs (issue #11): one writer per run folder, atomic metric-log
rewrites, orphaned temporary files, checksummed checkpoints, checkpoints that would build
a giant model or hold NaN weights, and resumes that cannot continue the run exactly."""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import subprocess
import sys
import time

import pytest
import torch

from medgan import callbacks as cb
from medgan import checkpoint as ckpt_io
from medgan.cli import main
from medgan.errors import CheckpointError, TrainingDivergedError
from medgan.generate import load_generator
from medgan.registry import MODELS
from medgan.rundir import LOCK_NAME, RunLock


def dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def write_lock(folder, pid, host=None):
    folder.mkdir(parents=True, exist_ok=True)
    info = {"pid": pid, "host": host or socket.gethostname(), "started": "2026-01-01T00:00:00"}
    (folder / LOCK_NAME).write_text(json.dumps(info | {"token": "theirs"}))
    return folder / LOCK_NAME


def same(a, b) -> bool:
    """Deep equality of checkpoint contents (tensors by dtype, shape and values)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return type(a) is type(b) and a == b


# ---------------------------------------------------------------- 1. run-folder lock


_HOLDER = r"""
import sys, time
from medgan.rundir import RunLock
lock = RunLock(sys.argv[1]).acquire()
print("ready", flush=True)
time.sleep(60)
"""


def test_second_process_in_a_run_folder_is_refused_naming_the_holder(tmp_run_dir, tiny_trainer):
    out = tmp_run_dir
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(out / "checkpoints")], stdout=subprocess.PIPE
    )
    try:
        assert holder.stdout.readline().strip() == b"ready"
        tr = tiny_trainer(callbacks=[cb.Checkpoint(out / "checkpoints", every=1)])
        with pytest.raises(CheckpointError) as e:
            tr.fit(2)
        msg = str(e.value)
        assert str(out / "checkpoints") in msg and f"pid {holder.pid}" in msg
        assert socket.gethostname() in msg
        assert tr.step == 0 and not list((out / "checkpoints").glob("*.pt"))
        # the holder's lock is untouched by the refused run
        assert json.loads((out / "checkpoints" / LOCK_NAME).read_text())["pid"] == holder.pid
    finally:
        holder.kill()
        holder.wait()


def test_refused_run_leaves_the_other_runs_metric_log_alone(tmp_path, tiny_trainer):
    log_text = "step,d_loss\n1,0.5\n2,0.4\n3,0.3\n"
    (tmp_path / "metrics.csv").write_text(log_text)
    write_lock(tmp_path, os.getppid())  # a live process on this host
    tr = tiny_trainer(callbacks=cb.standard_callbacks(tmp_path, 2, 2, 1))
    with pytest.raises(CheckpointError, match=f"pid {os.getppid()}"):
        tr.fit(2)  # starts at step 0: unlocked, it would drop rows 1-3
    assert (tmp_path / "metrics.csv").read_text() == log_text


def test_lock_is_held_while_training_and_released_at_the_end_and_on_errors(
    tmp_path, tiny_trainer, nan_loss
):
    seen = []

    class Spy(cb.Callback):
        def on_step_end(self, trainer, logs):
            seen.append(json.loads((tmp_path / LOCK_NAME).read_text()))

    tr = tiny_trainer(callbacks=[cb.Checkpoint(tmp_path, every=2), Spy()])
    tr.fit(2)
    assert seen[0]["pid"] == os.getpid() and seen[0]["host"] == socket.gethostname()
    assert not (tmp_path / LOCK_NAME).exists()
    tr.fit(4)  # the same process continues in the same folder
    assert not (tmp_path / LOCK_NAME).exists()

    bad = tiny_trainer(loss=nan_loss(), callbacks=[cb.Checkpoint(tmp_path / "b", every=1)])
    with pytest.raises(TrainingDivergedError):
        bad.fit()
    assert not (tmp_path / "b" / LOCK_NAME).exists()
    # a lock left by this very process (e.g. a run stopped by an error) is taken back
    write_lock(tmp_path, os.getpid())
    tiny_trainer(callbacks=[cb.Checkpoint(tmp_path, every=2)]).fit(1)
    assert not (tmp_path / LOCK_NAME).exists()


def test_stale_lock_of_a_dead_process_is_taken_over_with_a_log_line(tmp_path, caplog, tiny_trainer):
    pid = dead_pid()
    write_lock(tmp_path, pid)
    with caplog.at_level(logging.WARNING, logger="medgan.rundir"):
        tiny_trainer(callbacks=[cb.Checkpoint(tmp_path, every=2)]).fit(2)
    assert any(f"stale lock of pid {pid}" in r.getMessage() for r in caplog.records)
    assert (tmp_path / "step_00000002.pt").exists() and not (tmp_path / LOCK_NAME).exists()
    # another host's lock cannot be checked: refused, with how to clear it
    write_lock(tmp_path, pid, host="elsewhere")
    with pytest.raises(CheckpointError, match=f"host elsewhere.*delete {tmp_path / LOCK_NAME}"):
        tiny_trainer(callbacks=[cb.Checkpoint(tmp_path, every=2)]).fit(2)


def test_locks_are_reentrant_within_a_process(tmp_path):
    a, b = RunLock(tmp_path).acquire(), RunLock(tmp_path).acquire()
    a.release()
    assert (tmp_path / LOCK_NAME).exists()  # b still holds it
    b.release()
    assert not (tmp_path / LOCK_NAME).exists()


# ---------------------------------------------------------------- 2. metric log rewrite


def test_metric_log_truncation_on_resume_is_one_atomic_replace(tmp_path, monkeypatch, tiny_trainer):
    path = tmp_path / "metrics.csv"
    tr = tiny_trainer(callbacks=[cb.MetricLog(path, every=1)]).fit(4)
    ck = tr.save(tmp_path / "c.pt")
    tr.fit(6)
    before = path.read_bytes()
    lines = before.splitlines(keepends=True)
    assert len(lines) == 7  # header + steps 1..6

    def killed(*a, **k):  # the process dies between writing the new file and the rename
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        tiny_trainer(callbacks=[cb.MetricLog(path, every=1)]).resume(ck).fit(6)
    assert path.read_bytes() == before  # no row lost
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt", "metrics.csv"]
    monkeypatch.undo()

    inode = path.stat().st_ino
    tiny_trainer(callbacks=[cb.MetricLog(path, every=1)]).resume(ck).fit(6)
    assert path.stat().st_ino != inode  # replaced, not deleted and re-appended
    after = path.read_bytes().splitlines(keepends=True)
    assert after[:5] == lines[:5]  # rows up to the resumed step, byte for byte
    assert [r["step"] for r in cb.read_metric_log(path)] == [1, 2, 3, 4, 5, 6]


def test_metric_log_drops_a_torn_last_line(tmp_path, tiny_trainer):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "d_loss": 0.5}\n{"step": 2, "d_loss": 0.4}\n{"step": 3, "d_')
    tr = tiny_trainer(callbacks=[cb.MetricLog(path, every=1)])
    tr.step = 2
    tr.callbacks[0].on_train_start(tr)
    tr.callbacks[0].on_exception(tr, KeyboardInterrupt())
    assert [r["step"] for r in cb.read_metric_log(path)] == [1, 2]


# ---------------------------------------------------------------- 3. orphaned temp files


def test_orphaned_temporary_files_are_removed_when_a_run_starts(tmp_path, caplog, tiny_trainer):
    dead, live = dead_pid(), os.getppid()
    orphans = [
        f".step_00000002.pt.{dead}.a1b2c3d4.tmp",  # save_atomic of a killed process
        f".last.pt.{dead}.link",  # link_atomic of a killed process
        ".step_00000004.pt.k3j4h5g6.tmp",  # older medgan (no pid), an hour old
    ]
    kept = [
        f".step_00000006.pt.{live}.zz9y8x7w.tmp",  # a live writer
        ".step_00000008.pt.q1w2e3r4.tmp",  # no pid and fresh: maybe being written
        "notes.tmp",
        ".hidden",
    ]
    for name in orphans + kept:
        (tmp_path / name).write_bytes(b"x")
    hour_ago = time.time() - 3600
    os.utime(tmp_path / orphans[2], (hour_ago, hour_ago))
    with caplog.at_level(logging.INFO, logger="medgan.rundir"):
        tiny_trainer(callbacks=[cb.Checkpoint(tmp_path, every=10)]).fit(1)
    names = {p.name for p in tmp_path.iterdir()}
    assert not names & set(orphans) and set(kept) <= names
    assert any("removed 3 temporary file(s)" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------- 4. checksums


def test_single_bit_flips_never_load_silently(tmp_path, tiny_trainer):
    tr = tiny_trainer().fit(2)
    path = tr.save(tmp_path / "c.pt")
    original = ckpt_io.load(path)
    assert torch.load(path, weights_only=True)["version"] == 2  # readable without medgan
    data = bytearray(path.read_bytes())
    rng = random.Random(0)
    n, detected, silent = 60, 0, []
    for i in range(n):  # one random bit in each sixtieth of the file
        bit = rng.randrange(i * len(data) * 8 // n, (i + 1) * len(data) * 8 // n)
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        bad = tmp_path / f"flip_{i}.pt"
        bad.write_bytes(flipped)
        try:
            loaded = ckpt_io.load(bad)
        except CheckpointError as e:
            assert bad.name in str(e)
            detected += 1
            continue
        if not same(loaded, original):
            silent.append(bit)
    assert silent == [] and detected > n // 4


def test_checksum_mismatch_names_the_file_and_old_files_still_load(tmp_path, caplog, tiny_trainer):
    tr = tiny_trainer().fit(1)
    state = tr.state_dict()
    raw = ckpt_io.load(tr.save(tmp_path / "c.pt"))
    raw["sha256"] = "0" * 64
    torch.save(raw, tmp_path / "damaged.pt")
    with pytest.raises(CheckpointError, match="damaged.pt: checksum mismatch: the file is damaged"):
        tr.resume(tmp_path / "damaged.pt")
    del raw["sha256"]
    torch.save(raw, tmp_path / "no_sum.pt")  # format 2 always has one
    with pytest.raises(CheckpointError, match="no_sum.pt.*without its 'sha256'"):
        tr.resume(tmp_path / "no_sum.pt")
    torch.save({**state, "version": 1}, tmp_path / "v1.pt")  # written before checksums
    with caplog.at_level(logging.INFO, logger="medgan.checkpoint"):
        tiny_trainer(seed=5).resume(tmp_path / "v1.pt")
    assert any("without checksum" in r.getMessage() for r in caplog.records)


# ---------------------------------------------------------------- 5. memory bombs


def test_sample_refuses_a_giant_spec_before_allocating(tmp_path, monkeypatch, capsys, tiny_trainer):
    tr = tiny_trainer().fit(1)
    state = ckpt_io.load(tr.save(tmp_path / "c.pt"))
    # 100M latent dimensions: a 48 GiB first layer, from a file of under 100 KB
    state["generator"]["spec"]["kwargs"]["latent_dim"] = 100_000_000
    ckpt_io.save_atomic(state, tmp_path / "bomb.pt")
    build = MODELS.build

    def guarded(name, **kw):
        on_meta = torch.empty(0).device.type == "meta"
        assert on_meta or kw.get("latent_dim") != 100_000_000, "allocated the giant model"
        return build(name, **kw)

    monkeypatch.setattr(MODELS, "build", guarded)
    with pytest.raises(CheckpointError, match="bomb.pt.*'net.0.weight'.*shape"):
        load_generator(tmp_path / "bomb.pt")
    assert main(["sample", str(tmp_path / "bomb.pt"), "--out", str(tmp_path / "s")]) == 2
    assert "net.0.weight" in capsys.readouterr().err


def test_model_above_the_byte_limit_is_refused(tmp_path, monkeypatch, tiny_trainer):
    path = tiny_trainer().fit(1).save(tmp_path / "c.pt")
    assert isinstance(load_generator(path), torch.nn.Module)
    monkeypatch.setenv("MEDGAN_MAX_BYTES", "1K")
    with pytest.raises(CheckpointError, match="c.pt.*above the .* limit.*MEDGAN_MAX_BYTES"):
        load_generator(path)


# ---------------------------------------------------------------- 6. resumable checkpoints


@pytest.mark.parametrize("key", ["rng", "step", "sched_g"])
def test_resume_names_missing_keys(tmp_path, key, tiny_trainer):
    tr = tiny_trainer().fit(1)
    state = tr.state_dict()
    del state[key]
    path = ckpt_io.save_atomic(state, tmp_path / "partial.pt")
    fresh = tiny_trainer(seed=3)
    with pytest.raises(CheckpointError, match=f"partial.pt lacks {key}"):
        fresh.resume(path)
    assert fresh.step == 0


def test_resume_refuses_another_world_size(tmp_path, tiny_trainer):
    state = tiny_trainer().fit(1).state_dict()
    path = ckpt_io.save_atomic({**state, "world_size": 2}, tmp_path / "ddp.pt")
    with pytest.raises(CheckpointError, match="ddp.pt.*2 process.*1.*data order.*EMA"):
        tiny_trainer().resume(path)


def test_resume_refuses_another_linear_decay_length(tmp_path, tiny_trainer):
    path = tiny_trainer(lr_schedule="linear_decay", steps=6).fit(2).save(tmp_path / "c.pt")
    longer = tiny_trainer(lr_schedule="linear_decay", steps=10)
    with pytest.raises(CheckpointError, match="c.pt.*steps=6 there, 10 here"):
        longer.resume(path)
    assert longer.step == 0
    constant = tiny_trainer(steps=6).fit(2).save(tmp_path / "k.pt")
    assert tiny_trainer(steps=10).resume(constant).fit().step == 10  # constant lr: continue


# ---------------------------------------------------------------- 7. NaN weights


@pytest.mark.parametrize("ema", [False, True])
def test_load_generator_refuses_non_finite_weights(tmp_path, ema, tiny_trainer):
    tr = tiny_trainer(ema_halflife_kimg=0.01).fit(1)
    state = tr.state_dict()
    weights = state["ema"] if ema else state["generator"]["state"]
    weights["net.1.bias"][0] = float("nan")
    path = ckpt_io.save_atomic(state, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match="nan.pt.*'net.1.bias' holds NaN/inf"):
        load_generator(path, ema=ema)
