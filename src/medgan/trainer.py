"""The adversarial training loop.

One step = ``n_critic`` discriminator updates, then one generator update:

    for each D update:  x ~ data, z ~ N(0, I);  minimise loss.discriminator_objective(D, x, G(z))
    G update:           z ~ N(0, I);            minimise loss.generator_objective(D, x, G(z))

then the EMA of G is updated and, every ``check_finite_every`` steps, the run is checked
for divergence. All GAN math lives in :mod:`medgan.losses`; the data stream in
:mod:`medgan.data.stream`; the checkpoint content in :mod:`medgan.training_state`; how a
batch becomes G/D inputs in :mod:`medgan.batches`; everything optional (checkpoints,
sample grids, logs, plots, evaluation, progress bar) is a callback in
:mod:`medgan.callbacks`.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from medgan import checkpoint as ckpt_io
from medgan import devices, training_state
from medgan import distributed as ddp
from medgan.batches import BatchAdapter, GANInputs, NoiseToImage
from medgan.config import TrainConfig
from medgan.data.stream import DataStream
from medgan.errors import ConfigError, TrainingDivergedError
from medgan.history import FakeHistory
from medgan.losses import GANLoss, NonSaturating

log = logging.getLogger(__name__)


def _notify_on_exception(fit: Callable[..., Trainer]) -> Callable[..., Trainer]:
    """Wrap :meth:`Trainer.fit`: when it raises, each callback's optional
    ``on_exception(trainer, error)`` runs (releasing what it holds, e.g. the run-folder
    lock of :class:`~medgan.callbacks.Checkpoint`), then the error propagates."""

    @functools.wraps(fit)
    def wrapper(self: Trainer, *args: Any, **kwargs: Any) -> Trainer:
        try:
            return fit(self, *args, **kwargs)
        except BaseException as e:
            for cb in self.callbacks:
                _call(cb, "on_exception", self, e)
            raise

    return wrapper


class Trainer:
    """Adversarial training of ``generator`` against ``discriminator`` on ``data``.

    Args:
        generator: maps ``*GANInputs.g_args`` to images ``(N, C, *spatial)`` in [-1, 1].
            Its attribute ``latent_dim`` is the size of z (:meth:`sample_noise`; absent:
            G takes no noise) and ``num_classes > 0`` makes the default adapter
            class-conditional.
        discriminator: maps ``(x[, cond])`` to logits ``(N,)`` or ``(N, ...)`` (one per
            patch), or to a list/tuple whose last element is the logits (multi-scale or
            feature lists, e.g. MONAI's ``PatchDiscriminator``; see
            :func:`medgan.losses.discriminator_logits`).
        data: a map-style ``Dataset`` (torch, MONAI ``Dataset``/``CacheDataset``, torchio
            ``SubjectsDataset``; medgan samples it, resumption is bit-exact), a tensor of
            items, an ``IterableDataset`` (medgan batches it) or a ready ``DataLoader``
            (its collate_fn, sampler and workers are used; e.g. over a torchio ``Queue``).
            Resuming the last two restarts the current pass and skips the batches consumed
            in it (:mod:`medgan.data.stream`). Batches: images, (image, label),
            (source, target), dicts, torchio batches, lists of dicts
            (:mod:`medgan.batches`).
        loss: a :class:`~medgan.losses.GANLoss`; default non-saturating.
        config: :class:`~medgan.config.TrainConfig`.
        callbacks: objects with optional ``on_train_start(trainer)``,
            ``on_step_end(trainer, logs)``, ``on_train_end(trainer)`` and
            ``on_exception(trainer, error)`` (when ``fit`` raises) methods.
        adapter: batch -> :class:`~medgan.batches.GANInputs`; default
            :class:`~medgan.batches.NoiseToImage`, class-conditional when the generator has
            ``num_classes > 0``.

    Attributes:
        stream: the :class:`~medgan.data.stream.DataStream` of training batches; also
            ``dataset`` and ``sampler`` (None for streams), and its position as ``epoch``
            and ``batch_in_epoch``.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        data: Dataset | DataLoader | Tensor,
        *,
        loss: GANLoss | None = None,
        config: TrainConfig | None = None,
        callbacks: Sequence[Any] = (),
        adapter: BatchAdapter | None = None,
    ) -> None:
        self.config = cfg = config or TrainConfig()
        self.loss = loss if loss is not None else NonSaturating()
        self._latent_dim = getattr(generator, "latent_dim", None)
        self.adapter = adapter or NoiseToImage.for_generator(generator)
        self.callbacks = list(callbacks)
        self.dist, self.device = devices.setup_device(cfg.device)
        if cfg.amp == "fp16" and self.device.type != "cuda":
            raise ConfigError("amp='fp16' needs CUDA; use amp='bf16' or 'off' on CPU")

        self.generator = generator.to(self.device)
        self.discriminator = discriminator.to(self.device)
        if self.dist.enabled:
            ddp.broadcast_module(self.generator)
            ddp.broadcast_module(self.discriminator)
        self.fake_history = FakeHistory(cfg.fake_history) if cfg.fake_history else None
        if self.fake_history is not None and self.dist.enabled:
            raise ConfigError(
                "TrainConfig.fake_history does not work with several processes yet (each "
                "process would keep its own history, and checkpoints save one); set 0"
            )
        self.ema: nn.Module | None = None
        if cfg.ema_halflife_kimg is not None:
            self.ema = copy.deepcopy(self.generator).eval().requires_grad_(False)
        if cfg.compile and any(
            getattr(self.loss, w, 0) for w in ("r1_weight", "r2_weight", "gp_weight")
        ):
            raise ConfigError(
                "TrainConfig.compile does not work with R1/R2/gradient penalties (they need a "
                "double backward, which torch.compile's autograd does not support); set "
                "compile=False or the penalty weights to 0"
            )
        if cfg.compile:  # in place: parameters and state-dict keys stay those of the module
            self.generator.compile()
            self.discriminator.compile()

        if cfg.channels_last:
            for net in (self.generator, self.discriminator):
                devices.channels_last(net)
        self.opt_g = devices.adam(self.generator, cfg.lr_g, cfg.betas, self.device)
        self.opt_d = devices.adam(self.discriminator, cfg.lr_d, cfg.betas, self.device)
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, self._lr_factor)
        self.sched_d = torch.optim.lr_scheduler.LambdaLR(self.opt_d, self._lr_factor)
        fp16 = cfg.amp == "fp16"
        self.scaler_g = torch.amp.GradScaler(self.device.type, enabled=fp16)
        self.scaler_d = torch.amp.GradScaler(self.device.type, enabled=fp16)

        # Our own generators: noise and penalty randomness never touch global RNG state.
        # Each rank draws different noise; the data order comes from the sampler.
        self.noise_rng = torch.Generator(self.device).manual_seed(cfg.seed * 1000 + self.dist.rank)
        self.aux_rng = torch.Generator(self.device).manual_seed(
            cfg.seed * 1000 + 500 + self.dist.rank
        )

        self.stream = DataStream(
            data,
            batch_size=cfg.batch_size,
            seed=cfg.seed,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            num_workers=cfg.num_workers,
            pin_memory=self.device.type == "cuda",
            device=self.device,
            channels_last=cfg.channels_last,
        )
        self.dataset, self.sampler = self.stream.dataset, self.stream.sampler
        self.step = 0
        self.last_checkpoint: Path | None = None
        self._rollbacks = 0
        self._finite = torch.ones((), dtype=torch.bool, device=self.device)
        self._weight_start: dict[str, float] = {}
        self._growth_warned: set[str] = set()

    # ------------------------------------------------------------------ inputs

    @property
    def is_main(self) -> bool:
        """True on the process that writes files (rank 0)."""
        return self.dist.is_main

    @property
    def epoch(self) -> int:
        """The pass over the data the next batch belongs to (:attr:`stream`'s position)."""
        return self.stream.epoch

    @property
    def batch_in_epoch(self) -> int:
        """The index of the next batch in its pass (:attr:`stream`'s position)."""
        return self.stream.batch

    def sample_noise(self, n: int, rng: torch.Generator | None = None) -> Tensor:
        """z ~ N(0, I) of shape ``(n, latent_dim)`` on the training device; ConfigError
        when the generator has no ``latent_dim`` (it takes no noise).

        Args:
            n: the number of noise vectors (the batch size).
            rng: the generator to draw from (on the training device); None = the trainer's
                noise generator ``noise_rng``, whose state checkpoints keep.
        """
        if self._latent_dim is None:
            raise ConfigError("the generator has no `latent_dim` attribute: it takes no noise")
        rng = rng if rng is not None else self.noise_rng
        return torch.randn(n, self._latent_dim, device=self.device, generator=rng)

    def next_inputs(self) -> GANInputs:
        """The next training batch, mapped to generator/discriminator inputs with fresh
        noise; the stream's position then names the batch after it."""
        return self.adapter(self.stream.next(), self.sample_noise)

    def fixed_inputs(self, items: int | Sequence[int], seed: int, dataset: Any = None) -> GANInputs:
        """Inputs for sample grids and evaluation: equal at every call, and drawn without
        touching training randomness or consuming training data (noise from a private
        generator seeded by ``seed``).

        Args:
            items: a count ``n``: the first ``n`` items of the training data (of ``dataset``
                when given), or, when the trainer reads a stream that cannot be indexed (an
                IterableDataset or a DataLoader), the first ``n`` of the next training
                batch (peeked, not consumed); or a sequence of item indices.
            seed: seeds the noise.
            dataset: a map-style data set read instead of the training data.
        """
        rng = torch.Generator(self.device).manual_seed(seed)

        def noise(n: int) -> Tensor:
            return self.sample_noise(n, rng)

        if isinstance(items, int):
            if dataset is None and not self.stream.exact:
                return self.adapter(self.stream.peek(), noise).first(items)
            items = range(min(items, len(self.dataset if dataset is None else dataset)))
        return self.adapter(self.stream.collate(items, dataset), noise)

    # ------------------------------------------------------------------ the step

    def train_step(self) -> dict[str, Tensor]:
        """One generator step: ``n_critic`` D updates then one G update. Returns detached logs."""
        G, D, loss = self.generator, self.discriminator, self.loss
        G.train()
        D.train()
        n_critic = self.config.n_critic
        for i in range(n_critic):
            x = self.next_inputs()
            with torch.no_grad(), self._autocast():
                fake = G(*x.g_args)
            if self.fake_history is not None:  # unconditioned D: checked once, by fit
                fake = self.fake_history.query(fake, self.aux_rng)
            regularize = (self.step * n_critic + i) % loss.reg_every == 0  # lazy penalties
            with self._autocast():
                d_total, d_logs = loss.discriminator_objective(
                    D, x.real, fake, x.cond, self.aux_rng, regularize
                )
            self._update(self.opt_d, self.scaler_d, d_total, D)

        x = x.renoise(self.sample_noise)  # fresh z for the G update
        D.requires_grad_(False)
        with self._autocast():
            fake = G(*x.g_args)
            g_total, g_logs = loss.generator_objective(D, x.real, fake, x.cond, g_net=G)
        self._update(self.opt_g, self.scaler_g, g_total, G)
        D.requires_grad_(True)

        self.sched_g.step()
        self.sched_d.step()
        if self.ema is not None:
            self._update_ema()
        return {"d_loss": d_total.detach(), "g_loss": g_total.detach(), **d_logs, **g_logs}

    def _update(
        self, opt: torch.optim.Optimizer, scaler: Any, loss: Tensor, net: nn.Module
    ) -> None:
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if self.dist.enabled:
            ddp.average_gradients(net, self.dist.world_size)
        if self.config.grad_clip is not None:
            scaler.unscale_(opt)
            nn.utils.clip_grad_norm_(net.parameters(), self.config.grad_clip)
        scaler.step(opt)
        scaler.update()

    def _autocast(self) -> contextlib.AbstractContextManager:
        amp = self.config.amp
        if amp == "off":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if amp == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def _lr_factor(self, step: int) -> float:
        """Learning-rate multiplier: linear warm-up, then constant, or linear decay to 0 at
        ``steps`` from step 0 ("linear_decay") or from half of ``steps`` ("half_then_decay",
        CycleGAN's schedule, Zhu et al. 2017: 100 epochs constant, 100 decaying)."""
        cfg = self.config
        warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps else 1.0
        start = {"linear_decay": 0.0, "half_then_decay": cfg.steps / 2}.get(cfg.lr_schedule)
        if start is None:
            return warm
        return warm * min(1.0, max(0.0, (cfg.steps - step) / (cfg.steps - start)))

    def ema_decay(self) -> float:
        """Per-step EMA decay beta = 0.5 ** (images per step / half-life in images)."""
        cfg = self.config
        per_step = cfg.batch_size * self.dist.world_size
        halflife = cfg.ema_halflife_kimg * 1000
        if cfg.ema_rampup is not None:
            halflife = min(halflife, (self.step + 1) * per_step * cfg.ema_rampup)
        return 0.5 ** (per_step / max(halflife, 1e-8))

    @torch.no_grad()
    def _update_ema(self) -> None:
        """ema <- beta * ema + (1 - beta) * G for parameters; buffers are copied."""
        assert self.ema is not None
        decay = self.ema_decay()
        ema_p = list(self.ema.parameters())
        g_p = list(self.generator.parameters())
        torch._foreach_lerp_(ema_p, g_p, 1.0 - decay)
        for b_ema, b in zip(self.ema.buffers(), self.generator.buffers(), strict=True):
            b_ema.copy_(b)

    # ------------------------------------------------------------------ the loop

    @_notify_on_exception
    def fit(self, steps: int | None = None, progress: bool = False) -> Trainer:
        """Train until ``self.step == steps``, or until ``config.max_minutes`` runs out;
        returns self.

        Args:
            steps: the generator step to stop at (a total, not a number of further steps:
                a resumed trainer continues from its ``step``; no step is run when it is
                already there); None = ``config.steps``.
            progress: show a progress bar (on rank 0 only).
        """
        target = self.config.steps if steps is None else steps
        if self.step < target:  # G, D and the data fit together: one clear line if not
            from medgan.checks import check_first_batch

            check_first_batch(self)
        callbacks = list(self.callbacks)
        if progress and self.is_main:
            from medgan.callbacks import ProgressBar

            callbacks.append(ProgressBar(total=target))
        for cb in callbacks:
            _call(cb, "on_train_start", self)
        deadline = devices.Deadline(self.config.max_minutes, self.dist.enabled, self.device)
        for name, net in (("generator", self.generator), ("discriminator", self.discriminator)):
            self._weight_start.setdefault(name, _weight_norm(net))
        while self.step < target:
            logs = self.train_step()
            self.step += 1
            self._finite &= _all_finite(logs)  # on the device: no host sync here
            if self.step % self.config.check_finite_every == 0:
                self._finite &= _weights_bounded(self.generator, self.discriminator)
            if self.step % GROWTH_CHECK_EVERY == 0:
                self._watch_growth()
            late = self.step < target and deadline.passed()
            check = self.step % self.config.check_finite_every == 0 or self.step == target or late
            if check and not bool(self._finite):  # also at the last step: none slips out
                self._finite.fill_(True)
                self._diverged(logs)
                continue
            for cb in callbacks:
                _call(cb, "on_step_end", self, logs)
            if late:
                log.info("max_minutes=%s reached at step %d", self.config.max_minutes, self.step)
                break
        for cb in callbacks:
            _call(cb, "on_train_end", self)
        return self

    def _watch_growth(self) -> None:
        """Warn (once per net) when the L2 norm of all its weights has grown more than
        :data:`GROWTH_WARN` times since training started: the usual sign of learning rates
        too high for the game, long before anything becomes NaN. (Measured on the test
        trainer: healthy runs stay within 1.0-1.2x over 300 steps; lr 10 reaches 160-220x
        in 25 steps.)"""
        for name, net in (("generator", self.generator), ("discriminator", self.discriminator)):
            now = _weight_norm(net)
            start = self._weight_start.setdefault(name, now)
            if name not in self._growth_warned and now > GROWTH_WARN * max(start, 1e-3):
                self._growth_warned.add(name)
                log.warning(
                    "the %s's weights are exploding: weight norm %.3g at step %d, %.0fx "
                    "its %.3g at the start; lower the learning rates (lr_g=%g, lr_d=%g) "
                    "or add grad_clip / an R1 penalty",
                    name,
                    now,
                    self.step,
                    now / max(start, 1e-12),
                    start,
                    self.config.lr_g,
                    self.config.lr_d,
                )

    def _diverged(self, logs: dict[str, Tensor]) -> None:
        values = {k: float(v) for k, v in logs.items()}
        cfg = self.config
        if (
            cfg.on_nan == "rollback"
            and self.last_checkpoint
            and self._rollbacks < cfg.max_rollbacks
        ):
            self._rollbacks += 1
            bad_step = self.step
            # continue with the data *after* the batches that diverged, not a replay of them
            position = (self.stream.epoch, self.stream.batch)
            self.load_state(ckpt_io.load(self.last_checkpoint, self.device), restore_rng=False)
            self.stream.seek(*position)
            log.warning(
                "diverged at step %d (%s); rolled back to %s (step %d) and continue on the "
                "following batches, rollback %d of %d",
                bad_step,
                values,
                self.last_checkpoint,
                self.step,
                self._rollbacks,
                cfg.max_rollbacks,
            )
            return
        where = (
            f"last checkpoint: {self.last_checkpoint}" if self.last_checkpoint else "no checkpoint"
        )
        weight = max(_max_abs(self.generator), _max_abs(self.discriminator))
        raise TrainingDivergedError(
            f"training diverged by step {self.step}: a loss became NaN/inf (or beyond "
            f"{DIVERGED_LOSS:g}) or a weight exceeded {DIVERGED_WEIGHT:g} in magnitude "
            f"(checked every {cfg.check_finite_every} steps; largest |weight| {weight:.3g}; "
            f"last logs {values}). Training stopped and nothing was saved from this state "
            f"({where}). Try lower learning rates, an R1 penalty (r1_weight), grad_clip, "
            "amp='off', or TrainConfig(on_nan='rollback')."
        )

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly (:mod:`medgan.training_state` lists it)."""
        return training_state.state_dict(self)

    def load_state(
        self, state: dict[str, Any], restore_rng: bool = True, source: str = "checkpoint"
    ) -> None:
        """Restore what :meth:`state_dict` captured; refused (CheckpointError naming
        ``source``, before anything changes) when training cannot continue exactly from it
        (:func:`medgan.training_state.load_state`).

        Args:
            state: a checkpoint dict (:meth:`state_dict`'s, or
                :func:`medgan.checkpoint.load`'s output).
            restore_rng: also restore the random states (noise, auxiliary and the data
                stream's); False keeps the current ones (a rollback after divergence goes
                on with new batches instead of replaying those that diverged).
            source: what error messages call the state (the checkpoint's path).
        """
        training_state.load_state(self, state, restore_rng, source)

    def save(self, path: str | Path) -> Path | None:
        """Write a checkpoint atomically (rank 0 only); refuses a diverged state
        (TrainingDivergedError). Returns the path written, or None on other ranks.

        Args:
            path: the checkpoint file to write (replaced if it exists).
        """
        if not self.is_main:
            return None
        if not bool(self._finite):
            raise TrainingDivergedError(
                f"a loss became NaN/inf since the last finiteness check (every "
                f"{self.config.check_finite_every} steps) before step {self.step}; refusing to "
                f"write {path}. Make checkpoint intervals multiples of check_finite_every to "
                "let on_nan='rollback' act first"
            )
        self.last_checkpoint = training_state.save(self, path)
        return self.last_checkpoint

    def resume(self, path: str | Path) -> Trainer:
        """Load a checkpoint written by :meth:`save` and continue from its step (weights,
        optimisers, EMA, random states and data position); returns self.

        Args:
            path: the checkpoint file (loaded onto the training device).
        """
        self.load_state(ckpt_io.load(path, self.device), source=str(path))
        self.last_checkpoint = Path(path)
        return self


#: host-side weight-growth checks run every this many steps (see Trainer._watch_growth)
GROWTH_CHECK_EVERY = 25
#: growth of a net's weight norm (L2 over all parameters) beyond which a warning is logged
GROWTH_WARN = 20.0
#: a logged loss or logit this large is treated as a divergence, like NaN
DIVERGED_LOSS = 1e8
#: a weight this large means the game has exploded (weights of a healthy net are O(1); Adam
#: moves each by about lr per step): treated like a NaN loss, so a run with, say, lr 10
#: stops (or rolls back) instead of training on with weights of 1e19.
DIVERGED_WEIGHT = 1e6


def _weights_bounded(*nets: nn.Module) -> Tensor:
    """0-dim bool tensor on the nets' device: every parameter finite and below
    :data:`DIVERGED_WEIGHT` in magnitude (one fused max-norm per net, no host sync)."""
    flags = []
    for net in nets:
        params = [p.detach() for p in net.parameters() if p.numel()]
        if params:
            peak = torch.stack(torch._foreach_norm(params, float("inf"))).max()
            flags.append(peak.float() < DIVERGED_WEIGHT)  # NaN compares False
    return torch.stack(flags).all() if flags else torch.ones((), dtype=torch.bool)


def _weight_norm(net: nn.Module) -> float:
    """L2 norm of all of ``net``'s parameters together (one host sync)."""
    params = [p.detach().float() for p in net.parameters() if p.numel()]
    if not params:
        return 0.0
    return float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(params, 2))))


def _max_abs(net: nn.Module) -> float:
    vals = [float(p.detach().abs().max()) for p in net.parameters() if p.numel()]
    return max(vals, default=0.0)


def _all_finite(logs: dict[str, Tensor]) -> Tensor:
    """A 0-dim bool tensor on the logs' device: every logged value is finite and below
    :data:`DIVERGED_LOSS` in magnitude."""
    return (torch.stack([v.float() for v in logs.values()]).abs() < DIVERGED_LOSS).all()


def _call(cb: Any, hook: str, *args: Any) -> None:
    fn = getattr(cb, hook, None)
    if fn is not None:
        fn(*args)
