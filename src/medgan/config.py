"""Frozen, validated, JSON-serialisable training configuration."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from medgan.errors import ConfigError

_AMP = ("off", "bf16", "fp16")
_DEVICES = ("auto", "cpu", "cuda")
_SCHEDULES = ("constant", "linear_decay")
_ON_NAN = ("stop", "rollback")


@dataclass(frozen=True)
class TrainConfig:
    """Everything the adversarial loop needs besides the models, the loss and the data.

    Args:
        steps: generator updates to run (one step = ``n_critic`` D updates + 1 G update).
        batch_size: images per D update, per process.
        lr_g, lr_d: Adam learning rates; different values give TTUR (Heusel et al. 2017).
        betas: Adam betas, shared by both optimisers.
        n_critic: discriminator updates per generator update.
        ema_halflife_kimg: half-life of the exponential moving average of G's weights, in
            thousands of training images (Karras et al. 2020); None disables the EMA.
            Per step: decay = 0.5 ** (batch_size * world_size / (1000 * halflife)).
        ema_rampup: if set, the half-life is at most ``ema_rampup * images seen so far``, so
            the EMA forgets the random initial weights quickly (StyleGAN2-ADA uses 0.05).
        amp: mixed precision on CUDA: "off", "bf16", or "fp16" (with GradScaler).
            bf16 also runs on CPU (slowly); fp16 needs CUDA.
        device: "auto" (CUDA if available), "cpu" or "cuda" (or "cuda:N").
        seed: seeds weights' noise, data order, augmentation and penalties.
        lr_schedule: "constant" or "linear_decay" (to 0 at ``steps``, after ``warmup_steps``).
        warmup_steps: linear learning-rate warm-up length.
        num_workers: DataLoader worker processes.
        check_finite_every: check losses for NaN/inf every this many steps (1 = always).
            Between checks the finiteness of every step's losses is folded into one device
            flag, read at every multiple, at the last step of ``fit`` and before a
            checkpoint is written (which is then refused), so no NaN slips through; on CUDA
            the host waits for the device only at those steps.
        on_nan: "stop" (raise TrainingDivergedError) or "rollback" (reload the last
            checkpoint, keep the advanced random state, and continue).
        max_rollbacks: rollbacks allowed before giving up with an error.
        grad_clip: clip both nets' gradient norm to this value; None disables.
        max_minutes: wall-clock budget of one ``fit`` call in minutes: training stops
            cleanly after the step that crosses it (callbacks' end hooks run, so the
            checkpoint callback saves); None = no limit.
        channels_last: keep 4D/5D activations in channels-last memory order (faster
            convolutions on CUDA tensor cores and with oneDNN on CPU).
        compile: run G and D through ``torch.compile`` (the module's own ``compile()``, so
            state-dict keys and checkpoints do not change); the first steps are slow. Not
            with R1/R2/GP penalties (double backward): the trainer refuses the pair.
    """

    steps: int = 1000
    batch_size: int = 64
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    n_critic: int = 1
    ema_halflife_kimg: float | None = 10.0
    ema_rampup: float | None = 0.05
    amp: str = "off"
    device: str = "auto"
    seed: int = 0
    lr_schedule: str = "constant"
    warmup_steps: int = 0
    num_workers: int = 0
    check_finite_every: int = 1
    on_nan: str = "stop"
    max_rollbacks: int = 3
    grad_clip: float | None = None
    max_minutes: float | None = None
    channels_last: bool = False
    compile: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(self.betas))
        _positive_int(self, "steps", "batch_size", "n_critic", "check_finite_every")
        _nonneg_int(self, "seed", "warmup_steps", "num_workers", "max_rollbacks")
        for name in ("lr_g", "lr_d"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ConfigError(f"TrainConfig.{name} must be a positive number, got {v!r}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"TrainConfig.betas must be two numbers in [0, 1), got {self.betas}")
        for name in ("ema_halflife_kimg", "ema_rampup"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, int | float) and v > 0):
                raise ConfigError(f"TrainConfig.{name} must be > 0 or None, got {v!r}")
        if self.max_minutes is not None and not (
            isinstance(self.max_minutes, int | float) and self.max_minutes > 0
        ):
            raise ConfigError(
                f"TrainConfig.max_minutes must be > 0 or None, got {self.max_minutes!r}"
            )
        for name in ("channels_last", "compile"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"TrainConfig.{name} must be true or false")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ConfigError(f"TrainConfig.grad_clip must be > 0 or None, got {self.grad_clip}")
        _choice(self, "amp", _AMP)
        _choice(self, "lr_schedule", _SCHEDULES)
        _choice(self, "on_nan", _ON_NAN)
        if self.device not in _DEVICES and not str(self.device).startswith("cuda:"):
            raise ConfigError(
                f"TrainConfig.device must be one of {_DEVICES} or 'cuda:N', got {self.device!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        check_fields(cls, d)
        return cls(**d)


def check_fields(cls: type, d: dict[str, Any]) -> None:
    """Refuse keys of ``d`` that are not fields of the dataclass ``cls``, listing the known."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(d) - known
    if unknown:
        raise ConfigError(
            f"unknown {cls.__name__} field(s) {sorted(unknown)}; known: {sorted(known)}"
        )


def _positive_int(cfg: Any, *names: str) -> None:
    for name in names:
        v = getattr(cfg, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ConfigError(f"{type(cfg).__name__}.{name} must be an integer >= 1, got {v!r}")


def _nonneg_int(cfg: Any, *names: str) -> None:
    for name in names:
        v = getattr(cfg, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ConfigError(f"{type(cfg).__name__}.{name} must be an integer >= 0, got {v!r}")


def _choice(cfg: Any, name: str, allowed: tuple[str, ...]) -> None:
    v = getattr(cfg, name)
    if v not in allowed:
        raise ConfigError(f"{type(cfg).__name__}.{name} must be one of {allowed}, got {v!r}")
