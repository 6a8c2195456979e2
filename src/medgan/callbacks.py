"""Optional training features, each a small object the trainer calls at three moments:

``on_train_start(trainer)``, ``on_step_end(trainer, logs)`` (``logs``: detached scalar
tensors), ``on_train_end(trainer)``; and ``on_exception(trainer, error)`` when ``fit``
raises (to release what a callback holds). Only rank 0 writes files.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from medgan import checkpoint as ckpt_io
from medgan import distributed as ddp
from medgan.errors import ConfigError
from medgan.images import save_grid
from medgan.rundir import RunLock, claim

log = logging.getLogger(__name__)


class Callback:
    """Base class with no-op hooks (subclassing is optional: the trainer duck-types)."""

    def on_train_start(self, trainer: Any) -> None:
        """Called once when :meth:`~medgan.trainer.Trainer.fit` starts, before the first step
        (``trainer.step`` is 0, or the step a resumed run continues from).

        Args:
            trainer: the running :class:`~medgan.trainer.Trainer`.
        """

    def on_step_end(self, trainer: Any, logs: dict[str, Tensor]) -> None:
        """Called after each training step.

        Args:
            trainer: the running :class:`~medgan.trainer.Trainer`; ``trainer.step`` counts
                the steps done (1 after the first).
            logs: names (``d_loss``, ``g_loss``, ...) -> detached scalar tensors of this
                step; a callback may add entries for the callbacks after it.
        """

    def on_train_end(self, trainer: Any) -> None:
        """Called once when ``fit`` finishes (the last step done, or ``max_minutes`` reached).

        Args:
            trainer: the running :class:`~medgan.trainer.Trainer`.
        """


class Checkpoint(Callback):
    """Save ``folder/step_XXXXXXXX.pt`` every ``every`` steps and at the end; keep the last
    ``keep_last`` and point ``folder/last.pt`` at the newest (a copy, written atomically).

    While training, the folder is locked (:class:`~medgan.rundir.RunLock`): a second run
    writing into it is refused instead of overwriting these checkpoints. Temporary files
    left by killed saves are deleted at the start.

    Args:
        folder: where the checkpoints go (created when needed).
        every: interval in steps (>= 1).
        keep_last: how many ``step_*.pt`` files to keep (>= 1); older ones are deleted.
    """

    def __init__(self, folder: str | Path, every: int = 500, keep_last: int = 3) -> None:
        if every < 1 or keep_last < 1:
            raise ValueError("Checkpoint: every and keep_last must be >= 1")
        self.folder, self.every, self.keep_last = Path(folder), every, keep_last
        self._lock = RunLock(self.folder)

    def on_train_start(self, trainer: Any) -> None:
        """Lock the folder and delete temporary files of killed saves (rank 0 only)."""
        if trainer.is_main:
            claim(self._lock)

    def _save(self, trainer: Any) -> None:
        if not trainer.is_main:
            return
        path = trainer.save(self.folder / f"step_{trainer.step:08d}.pt")
        ckpt_io.link_atomic(path, self.folder / "last.pt")  # same bytes, serialised once
        for old in sorted(self.folder.glob("step_*.pt"))[: -self.keep_last]:
            old.unlink(missing_ok=True)

    def on_step_end(self, trainer: Any, logs: dict[str, Tensor]) -> None:
        """Save a checkpoint when ``trainer.step`` is a multiple of ``every``."""
        if trainer.step % self.every == 0:
            self._save(trainer)

    def on_train_end(self, trainer: Any) -> None:
        """Save the final step (unless already saved) and release the folder's lock."""
        try:
            if not (self.folder / f"step_{trainer.step:08d}.pt").exists():
                self._save(trainer)
        finally:
            self._lock.release()

    def on_exception(self, trainer: Any, error: BaseException) -> None:
        """Release the folder's lock when ``fit`` raises ``error`` (nothing is saved;
        ``trainer`` is not read)."""
        self._lock.release()


@torch.no_grad()
def eval_outputs(trainer: Any, inputs: Any) -> Tensor:
    """The EMA generator's (else G's) output for ``inputs`` (a
    :class:`~medgan.batches.GANInputs`, run as ``net(*inputs.g_args)``) in eval mode, float32;
    ``trainer``: the :class:`~medgan.trainer.Trainer` holding the networks. The network's
    train/eval mode is restored afterwards."""
    net = trainer.ema if trainer.ema is not None else trainer.generator
    was_training = net.training
    net.eval()
    fake = net(*inputs.g_args).float()
    net.train(was_training)
    return fake


class SampleGrid(Callback):
    """PNG grids of the EMA generator (or G) on a fixed noise batch, every ``every`` steps.

    The fixed inputs come from the first ``n`` training items (labels, source images) and a
    private seeded noise generator, so grids from different steps are comparable. 3D
    volumes are shown by their middle slice along the last axis.

    Args:
        folder: where the PNGs go (``samples_<step>.png``, ``samples_final.png``).
        every: interval in steps (>= 1).
        n: images per grid.
        seed: seeds the fixed noise (the inputs are the first ``n`` items).
    """

    def __init__(self, folder: str | Path, every: int = 500, n: int = 64, seed: int = 1234) -> None:
        if every < 1:
            raise ConfigError(f"SampleGrid: every must be >= 1 (steps), got {every}")
        self.folder, self.every, self.n, self.seed = Path(folder), every, n, seed
        self._inputs: Any = None

    def on_train_start(self, trainer: Any) -> None:
        """Draw the fixed inputs of every grid (rank 0 only)."""
        if trainer.is_main:
            self._inputs = trainer.fixed_inputs(self.n, self.seed)

    @torch.no_grad()
    def write(self, trainer: Any, name: str | None = None) -> Path | None:
        """Write one grid of the generator's outputs on the fixed inputs.

        Args:
            trainer: the running trainer.
            name: file name in ``folder``; default ``samples_<step, 8 digits>.png``.

        Returns:
            The PNG's path, or None when nothing was written: not rank 0, called before
            :meth:`on_train_start`, or the generator makes points rather than images.
        """
        if not trainer.is_main or self._inputs is None:
            return None
        fake = eval_outputs(trainer, self._inputs)
        if fake.dim() < 4:  # points: nothing to draw as an image
            return None
        path = self.folder / (name or f"samples_{trainer.step:08d}.png")
        return save_grid(fake, path)

    def on_step_end(self, trainer: Any, logs: dict[str, Tensor]) -> None:
        """Write a grid when ``trainer.step`` is a multiple of ``every``."""
        if trainer.step % self.every == 0:
            self.write(trainer)

    def on_train_end(self, trainer: Any) -> None:
        """Write the last grid as ``samples_final.png``."""
        self.write(trainer, "samples_final.png")


class RealVsGenerated(Callback):
    """At the end of training, ``n`` real training images (a seeded random choice) beside
    ``n`` samples of the EMA generator (or G) in one PNG: real on the left.

    Args:
        path: the PNG to write.
        n: images on each side.
        seed: seeds the choice of the real images and the generator's noise.
    """

    def __init__(self, path: str | Path, n: int = 36, seed: int = 0) -> None:
        self.path, self.n, self.seed = Path(path), n, seed

    @torch.no_grad()
    def on_train_end(self, trainer: Any) -> None:
        """Write the PNG (rank 0 only; nothing for a generator of points). From a stream that
        cannot be indexed the real images are the first ``n`` of the next batch."""
        if not trainer.is_main:
            return
        from medgan.images import save_side_by_side

        if trainer.stream.exact:
            rng = torch.Generator().manual_seed(self.seed)
            order = torch.randperm(len(trainer.dataset), generator=rng)[: self.n].tolist()
            x = trainer.fixed_inputs(order, self.seed)
        else:  # a stream cannot be indexed: the first n of the next batch
            x = trainer.fixed_inputs(self.n, self.seed)
        fake, real = eval_outputs(trainer, x), x.real
        if fake.dim() >= 4:  # images or volumes, not points
            save_side_by_side(real, fake, self.path)


class MetricLog(Callback):
    """Append losses, learning rates and step rate every ``every`` steps to a ``.csv`` or
    ``.jsonl`` file (by suffix). On resume, rows after the resumed step are dropped by
    writing the kept rows to a temporary file and renaming it over the log (atomic: a
    kill at any moment leaves the old log or the new one). The log's folder is locked
    while training (:class:`~medgan.rundir.RunLock`).

    Args:
        path: the log file, ending in ``.csv`` or ``.jsonl`` (ValueError otherwise).
        every: interval in steps (>= 1); the final step is always written.
    """

    def __init__(self, path: str | Path, every: int = 10) -> None:
        if every < 1:
            raise ConfigError(f"MetricLog: every must be >= 1 (steps), got {every}")
        self.path, self.every = Path(path), every
        if self.path.suffix not in (".csv", ".jsonl"):
            raise ValueError(f"MetricLog: {self.path} must end in .csv or .jsonl")
        self._t0 = self._s0 = None
        self._last: dict[str, Tensor] | None = None
        self._fields: list[str] | None = None  # CSV columns, read from the header at most once
        self._lock = RunLock(self.path.parent)

    def on_train_start(self, trainer: Any) -> None:
        """Start the step-rate clock; on rank 0 lock the log's folder and drop rows after
        ``trainer.step`` (left by the run this one resumes)."""
        self._t0, self._s0, self._last = time.perf_counter(), trainer.step, None
        if trainer.is_main:
            claim(self._lock)
            if self.path.exists():
                self._truncate(trainer.step)

    def _truncate(self, step: int) -> None:
        """Keep the lines of rows up to ``step`` (and the CSV header), byte for byte; a
        torn last line (a kill mid-append) is dropped. Rewrites only when a line goes."""
        with self.path.open(newline="") as f:  # keep the "\r\n" that csv writes
            lines = f.read().splitlines(keepends=True)
        csv_log = self.path.suffix == ".csv"
        header, rows = (lines[:1], lines[1:]) if csv_log else ([], lines)
        fields = next(csv.reader(header)) if header else []
        self._fields = fields or None
        keep = [line for line in rows if _row_step(line, fields, csv_log) <= step]
        if len(keep) == len(rows):
            return
        text = "".join(header + keep).encode()
        ckpt_io.write_atomic(self.path, lambda f: f.write(text))
        log.info("%s: dropped %d row(s) after step %d", self.path, len(rows) - len(keep), step)

    def _append(self, row: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.suffix == ".jsonl":
            with self.path.open("a") as f:
                f.write(json.dumps(row) + "\n")
            return
        new = not self.path.exists() or self.path.stat().st_size == 0
        if new:  # the first row defines the columns; later rows keep them
            self._fields = list(row)
        elif self._fields is None:  # appending to a file from an earlier run
            with self.path.open() as f:
                self._fields = next(csv.reader(f))
        with self.path.open("a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self._fields, extrasaction="ignore")
            if new:
                w.writeheader()
            w.writerow(row)

    def on_step_end(self, trainer: Any, logs: dict[str, Tensor]) -> None:
        """Append a row (rank 0) when ``trainer.step`` is a multiple of ``every``."""
        self._last = logs
        if trainer.step % self.every == 0 and trainer.is_main:
            self._write(trainer, logs)

    def on_train_end(self, trainer: Any) -> None:
        """Append the final step's row if it was not written, and release the lock."""
        # the final step is always recorded, even when it is not a multiple of `every`
        try:
            if trainer.is_main and self._last is not None and trainer.step % self.every:
                self._write(trainer, self._last)
        finally:
            self._lock.release()

    def on_exception(self, trainer: Any, error: BaseException) -> None:
        """Release the folder's lock when ``fit`` raises ``error`` (``trainer`` is not read)."""
        self._lock.release()

    def _write(self, trainer: Any, logs: dict[str, Tensor]) -> None:
        now = time.perf_counter()
        rate = (trainer.step - self._s0) / max(now - self._t0, 1e-9)
        row = {"step": trainer.step, **{k: float(v) for k, v in logs.items()}}
        row |= {
            "lr_g": trainer.opt_g.param_groups[0]["lr"],
            "lr_d": trainer.opt_d.param_groups[0]["lr"],
        }
        row["steps_per_s"] = rate
        self._append(row)


def _row_step(line: str, fields: list[str], csv_log: bool) -> float:
    """The step of one metric-log line; infinity for a torn or unreadable line."""
    if not line.endswith("\n"):
        return float("inf")  # the last append was cut short
    try:
        if csv_log:
            return float(next(csv.reader([line]))[fields.index("step")])
        return float(json.loads(line)["step"])
    except (ValueError, IndexError, KeyError, TypeError, StopIteration):
        return float("inf")


def read_metric_log(path: str | Path) -> list[dict[str, float]]:
    """Rows of the MetricLog file at ``path`` (``.csv`` or ``.jsonl``) as dicts of floats
    (``step`` as int; empty CSV cells left out)."""
    path = Path(path)
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    else:
        with path.open(newline="") as f:
            rows = [{k: float(v) for k, v in r.items() if v != ""} for r in csv.DictReader(f)]
    for r in rows:
        r["step"] = int(r["step"])
    return rows


class LossPlot(Callback):
    """Plot the losses recorded by a :class:`MetricLog` to a PNG at the end of training.

    Args:
        log_path: the metric log to read.
        out: the PNG to write.
        keys: the columns to draw (:func:`plot_losses`).
    """

    def __init__(
        self, log_path: str | Path, out: str | Path, keys: tuple[str, ...] = ("d_loss", "g_loss")
    ):
        self.log_path, self.out, self.keys = Path(log_path), Path(out), keys

    def on_train_end(self, trainer: Any) -> None:
        """Write the plot (rank 0, and only if the log exists): see :func:`plot_losses`."""
        if trainer.is_main and self.log_path.exists():
            plot_losses(self.log_path, self.out, self.keys)


def plot_losses(
    log_path: str | Path, out: str | Path, keys: tuple[str, ...] = ("d_loss", "g_loss")
) -> Path:
    """Plot columns ``keys`` of a :class:`MetricLog` file against ``step`` to a PNG.

    Args:
        log_path: the ``.csv`` or ``.jsonl`` metric log (:func:`read_metric_log`).
        out: the PNG to write (a 7 x 4 inch figure at 100 dpi); parent folders are created.
        keys: the columns to draw, one line each; a key missing from every row is skipped.

    Returns:
        ``out`` as a Path.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = read_metric_log(log_path)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for k in keys:
        pts = [(r["step"], r[k]) for r in rows if k in r]
        if pts:
            ax.plot(*zip(*pts, strict=True), label=k)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out


class Evaluate(Callback):
    """Call ``fn(trainer) -> dict[str, float]`` every ``every`` steps (and at the end);
    results are logged, kept in ``history`` and appended to ``log_path`` (JSONL) if given.

    Args:
        fn: the evaluation; it must not touch the training RNGs (use private generators).
        every: interval in steps (>= 1).
        log_path: a JSONL file receiving one ``{"step": ..., **result}`` line per run.
        on_result: called as ``on_result(step, result)`` on rank 0 after each run (an
            experiment tracker's ``log_scalars``).
    """

    def __init__(
        self,
        fn: Callable[[Any], dict[str, float]],
        every: int = 1000,
        log_path: str | Path | None = None,
        on_result: Callable[[int, dict[str, float]], None] | None = None,
    ):
        if every < 1:
            raise ConfigError(f"Evaluate: every must be >= 1 (steps), got {every}")
        self.fn, self.every, self.on_result = fn, every, on_result
        self.log_path = Path(log_path) if log_path else None
        self.history: list[dict[str, float]] = []

    def on_train_start(self, trainer: Any) -> None:
        """On rank 0, drop lines of ``log_path`` after ``trainer.step`` (left by the run this
        one resumes)."""
        # a resumed run drops the results logged after its step (as MetricLog does)
        if self.log_path is None or not trainer.is_main or not self.log_path.exists():
            return
        lines = self.log_path.read_text().splitlines(keepends=True)
        keep = [line for line in lines if _row_step(line, [], False) <= trainer.step]
        if len(keep) < len(lines):
            text = "".join(keep).encode()
            ckpt_io.write_atomic(self.log_path, lambda f: f.write(text))

    def _run(self, trainer: Any) -> None:
        if self.history and self.history[-1]["step"] == trainer.step:
            return
        result = {"step": trainer.step, **{k: float(v) for k, v in self.fn(trainer).items()}}
        self.history.append(result)
        log.info("evaluation at step %d: %s", trainer.step, result)
        if self.log_path and trainer.is_main:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("a") as f:
                f.write(json.dumps(result) + "\n")
        if self.on_result is not None and trainer.is_main:
            self.on_result(trainer.step, {k: v for k, v in result.items() if k != "step"})

    def on_step_end(self, trainer: Any, logs: dict[str, Tensor]) -> None:
        """Evaluate when ``trainer.step`` is a multiple of ``every``."""
        if trainer.step % self.every == 0:
            self._run(trainer)

    def on_train_end(self, trainer: Any) -> None:
        """Evaluate the final step (unless it was just evaluated)."""
        self._run(trainer)


class AdaptiveAugmentation(Callback):
    """Adaptive discriminator augmentation (ADA; Karras et al. 2020, sec. 3).

    Every step the loss's overfitting signal ``logs["ada_r"]`` (r_t = E[sign(D(x_real))],
    or E[sign(D(x) - D(G(z)))] for the relativistic loss) is added to a running mean kept
    in the discriminator's :class:`~medgan.augment.DiffAugment`; every ``interval`` steps

        p <- clip(p + sign(mean r_t - target) * interval * batch / (speed_kimg * 1000), 0, 1)

    so p rises while D overfits and falls when it does not. ``p`` and the running mean are
    buffers of the augment module: they are in the discriminator's state dict, so resume
    stays bit-exact. ``logs["aug_p"]`` reports p to the callbacks after this one (put it
    before :class:`MetricLog`).

    Args:
        target: the value of r_t to hold (0.6 in the paper).
        interval: steps between adjustments (4 in the paper).
        speed_kimg: thousands of images over which p can go from 0 to 1 (500 in the paper,
            for GPU-length runs; the recipe uses less for CPU-length runs).
    """

    def __init__(self, target: float = 0.6, interval: int = 4, speed_kimg: float = 500.0):
        if not 0 <= target <= 1 or interval < 1 or not speed_kimg > 0:
            raise ValueError(
                "AdaptiveAugmentation: target in [0, 1], interval >= 1, speed_kimg > 0 required"
            )
        self.target, self.interval, self.speed_kimg = target, interval, speed_kimg
        self._augment: Any = None

    def on_train_start(self, trainer: Any) -> None:
        """Find the discriminator's :class:`~medgan.augment.DiffAugment` (ConfigError unless
        there is exactly one)."""
        from medgan.augment import find_augment

        self._augment = find_augment(trainer.discriminator)

    def on_step_end(self, trainer: Any, logs: dict[str, Tensor]) -> None:
        """Accumulate ``logs["ada_r"]`` (KeyError if absent), adjust p every ``interval``
        steps (summed over ranks), and set ``logs["aug_p"]``."""
        aug = self._augment
        if "ada_r" not in logs:
            raise KeyError("AdaptiveAugmentation needs the loss to log 'ada_r' (GANLoss does)")
        aug.accumulate(logs["ada_r"])
        if trainer.step % self.interval == 0:
            ddp.sum_across_ranks(aug.ada_stats)  # every rank adjusts p the same way
            images = self.interval * trainer.config.batch_size * trainer.dist.world_size
            aug.adapt(self.target, images / (self.speed_kimg * 1000.0))
        logs["aug_p"] = aug.p.detach().clone()


class ProgressBar(Callback):
    """A tqdm bar with the current losses and the step rate (refreshed every ``every`` steps);
    ``total`` is the run's last step (the bar's length)."""

    def __init__(self, total: int, every: int = 10) -> None:
        self.total, self.every, self._bar = total, every, None

    def on_train_start(self, trainer: Any) -> None:
        """Open the bar at ``trainer.step`` of ``total`` steps."""
        from tqdm.auto import tqdm

        self._bar = tqdm(total=self.total, initial=trainer.step, unit="step", dynamic_ncols=True)

    def on_step_end(self, trainer: Any, logs: dict[str, Tensor]) -> None:
        """Advance one step; every ``every`` steps show ``d_loss`` and ``g_loss``."""
        self._bar.update(1)
        if trainer.step % self.every == 0:
            self._bar.set_postfix({k: f"{float(logs[k]):.3f}" for k in ("d_loss", "g_loss")})

    def on_train_end(self, trainer: Any) -> None:
        """Close the bar."""
        self._bar.close()


def standard_callbacks(
    out_dir: str | Path,
    checkpoint_every: int = 500,
    sample_every: int = 500,
    log_every: int = 10,
    keep_last: int = 3,
) -> list[Callback]:
    """Checkpoints, sample grids, a CSV metric log and a loss plot under ``out_dir``.

    Args:
        out_dir: the run folder: ``metrics.csv``, ``checkpoints/``, ``samples/`` and
            ``losses.png`` go there.
        checkpoint_every: steps between checkpoints.
        sample_every: steps between sample grids.
        log_every: steps between metric-log rows.
        keep_last: checkpoints kept.
    """
    out = Path(out_dir)
    return [
        MetricLog(out / "metrics.csv", every=log_every),
        Checkpoint(out / "checkpoints", every=checkpoint_every, keep_last=keep_last),
        SampleGrid(out / "samples", every=sample_every),
        LossPlot(out / "metrics.csv", out / "losses.png"),
    ]
