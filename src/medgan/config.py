"""Frozen, validated, JSON-serialisable training configuration, and the type checks that
every configuration (and every registry keyword argument read from JSON) goes through."""

from __future__ import annotations

import collections.abc
import dataclasses
import math
import numbers
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from medgan.errors import ConfigError

_AMP = ("off", "bf16", "fp16")
_DEVICES = ("auto", "cpu", "cuda")
_SCHEDULES = ("constant", "linear_decay", "half_then_decay")
_ON_NAN = ("stop", "rollback")
#: seeds are < 2**53: exact in JSON numbers, and the trainer's derived torch seeds
#: (``seed * 1000 + offset + rank``) still fit in the 64 bits ``torch.manual_seed`` takes.
SEED_LIMIT = 2**53


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
        lr_schedule: "constant", "linear_decay" (to 0 at ``steps``, after
            ``warmup_steps``) or "half_then_decay" (constant for the first half of ``steps``,
            then linear to 0: CycleGAN's schedule).
        warmup_steps: linear learning-rate warm-up length.
        fake_history: 0 (off), or the number of generated images kept for the
            discriminator (:class:`~medgan.history.FakeHistory`; CycleGAN uses 50): each D
            update sees about half current images and half earlier ones.
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
    fake_history: int = 0
    num_workers: int = 0
    check_finite_every: int = 1
    on_nan: str = "stop"
    max_rollbacks: int = 3
    grad_clip: float | None = None
    max_minutes: float | None = None
    channels_last: bool = False
    compile: bool = False

    def __post_init__(self) -> None:
        check_field_types(self)  # first: the range checks below assume the right types
        object.__setattr__(self, "betas", tuple(self.betas))
        _positive_int(self, "steps", "batch_size", "n_critic", "check_finite_every")
        _nonneg_int(self, "seed", "warmup_steps", "fake_history", "num_workers", "max_rollbacks")
        check_seed(self.seed, "TrainConfig.seed")
        for name in ("lr_g", "lr_d"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ConfigError(f"TrainConfig.{name} must be a positive number, got {v!r}")
        if not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"TrainConfig.betas must be two numbers in [0, 1), got {self.betas}")
        for name in ("ema_halflife_kimg", "ema_rampup", "max_minutes", "grad_clip"):
            v = getattr(self, name)
            if v is not None and not v > 0:  # NaN is refused too
                raise ConfigError(f"TrainConfig.{name} must be > 0 or null, got {v!r}")
        _choice(self, "amp", _AMP)
        _choice(self, "lr_schedule", _SCHEDULES)
        _choice(self, "on_nan", _ON_NAN)
        if self.device not in _DEVICES and not self.device.startswith("cuda:"):
            raise ConfigError(
                f"TrainConfig.device must be one of {_DEVICES} or 'cuda:N', got {self.device!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain JSON types (``betas`` as a list); ``from_dict`` inverts it."""
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """A config from a dict of fields; an unknown field raises ConfigError naming it.

        Args:
            d: field name -> value, as :meth:`to_dict` writes it (JSON types: ``betas`` may
                be a list); fields left out keep their defaults.
        """
        check_fields(cls, d)
        return cls(**d)


def check_fields(cls: type, d: Any) -> None:
    """Refuse a ``d`` that is not a dict, or has keys that are not fields of the dataclass
    ``cls``, listing the known ones."""
    known = {f.name for f in dataclasses.fields(cls)}
    if not isinstance(d, dict):
        raise ConfigError(
            f"{cls.__name__} must be an object (a JSON {{...}} with keys {sorted(known)}), "
            f"got {_shown(d)}"
        )
    unknown = set(d) - known
    if unknown:
        raise ConfigError(
            f"unknown {cls.__name__} field(s) {sorted(unknown)}; known: {sorted(known)}"
        )


def _positive_int(cfg: Any, *names: str) -> None:
    for name in names:
        v = getattr(cfg, name)
        if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 1:
            raise ConfigError(f"{type(cfg).__name__}.{name} must be an integer >= 1, got {v!r}")


def _nonneg_int(cfg: Any, *names: str) -> None:
    for name in names:
        v = getattr(cfg, name)
        if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 0:
            raise ConfigError(f"{type(cfg).__name__}.{name} must be an integer >= 0, got {v!r}")


def _choice(cfg: Any, name: str, allowed: tuple[str, ...]) -> None:
    v = getattr(cfg, name)
    if v not in allowed:
        raise ConfigError(f"{type(cfg).__name__}.{name} must be one of {allowed}, got {v!r}")


def check_seed(seed: int, name: str = "seed") -> None:
    """Refuse seeds outside ``[0, SEED_LIMIT)`` (see :data:`SEED_LIMIT`) with a ConfigError.

    Args:
        seed: the seed to check, an integer.
        name: what the error message calls it (``"TrainConfig.seed"``).
    """
    if not 0 <= seed < SEED_LIMIT:
        raise ConfigError(
            f"{name} must be an integer in [0, 2**53) (the torch seeds derived from it must "
            f"fit in 64 bits), got {seed}"
        )


def check_output_folder(path: str | PurePath, name: str) -> None:
    """Refuse (ConfigError) an output folder that is an existing file or lies under one
    (before any work is done, rather than failing when the first output is written). A
    folder that does not exist yet is fine; nothing is created.

    Args:
        path: the output folder.
        name: what the error message calls it (the option or field, ``"--out"``).
    """
    p = Path(path)
    for q in (p, *p.parents):
        if q.exists():
            if not q.is_dir():
                what = "is an existing file" if q == p else f"is under the file {q}"
                raise ConfigError(f"{name} {p} {what}, not a folder: choose another path")
            return


# --------------------------------------------------------------------------- type checks


def check_field_types(cfg: Any) -> None:
    """Refuse fields of the dataclass instance ``cfg`` whose values do not have the
    annotated type (JSON gives strings, numbers and lists; ``"1"`` is not a number)."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        if f.name in hints:
            check_type(getattr(cfg, f.name), hints[f.name], f"{type(cfg).__name__}.{f.name}")


def check_kwargs(builder: Any, kwargs: dict[str, Any], what: str) -> None:
    """Refuse (ConfigError) keyword arguments whose values do not have the type the builder
    annotates; parameters without a usable annotation, and names the builder does not
    annotate, are left to the builder.

    Args:
        builder: a class (its ``__init__``'s annotations are used) or a function.
        kwargs: parameter name -> value, as read from JSON.
        what: the prefix of the error message naming the builder (``"model 'dcgan'"``);
            the message reads ``"<what>: <name> must be ..."``.
    """
    hints = type_hints(builder)
    for name, value in kwargs.items():
        if name in hints:
            check_type(value, hints[name], f"{what}: {name}")


def type_hints(builder: Any) -> dict[str, Any]:
    """Resolved parameter annotations of a class's ``__init__`` or of a function; an
    annotation that cannot be resolved is skipped, not an error.

    Args:
        builder: a class (its ``__init__`` is read) or a function.

    Returns:
        Parameter name -> annotation (with ``"return"`` when the return is annotated).
    """
    fn = builder.__init__ if isinstance(builder, type) else builder
    try:
        return typing.get_type_hints(fn)
    except Exception:  # noqa: BLE001 - one unresolvable name: resolve the others one by one
        module = vars(sys.modules.get(getattr(builder, "__module__", ""), types.ModuleType("_")))
        hints = {}
        for name, ann in getattr(fn, "__annotations__", {}).items():
            try:
                hints[name] = eval(ann, module) if isinstance(ann, str) else ann  # noqa: S307
            except Exception:  # noqa: BLE001, S112
                continue
        return hints


def check_type(value: Any, hint: Any, name: str) -> None:
    """Raise ConfigError naming ``name``, the value and the expected type if ``value`` does
    not match the annotation ``hint``."""
    if not matches(value, hint):
        raise ConfigError(f"{name} must be {describe(hint)}, got {_shown(value)}")


def matches(value: Any, hint: Any) -> bool:
    """Whether ``value`` fits ``hint``: bool is not an int, an int is a float, a list is a
    tuple (JSON has no tuples), a string is a path; unknown kinds of hints accept anything."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is object:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, a) for a in args)
    if hint is None or hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:  # numpy integers too (numbers.Integral), but not True/False
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is typing.Literal:
        return value in args
    if isinstance(hint, type) and issubclass(hint, PurePath):
        return isinstance(value, str | PurePath)
    if hint in (tuple, list) or origin in _SEQUENCES:
        if not isinstance(value, list | tuple):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(map(matches, value, args))
        return not args or all(matches(v, args[0]) for v in value)
    if hint is dict or origin in (dict, collections.abc.Mapping):
        return isinstance(value, dict)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return isinstance(value, hint)
    return True


_SEQUENCES = (tuple, list, collections.abc.Sequence)


def describe(hint: Any) -> str:
    """Words for an annotation, in JSON terms: ``float | None`` -> "a number or null".

    Args:
        hint: a type annotation (a class, a union, ``Literal[...]``, ``tuple[...]``,
            ``list[...]``, ...); an unknown kind is shown by its name.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is tuple and args and args[-1] is not Ellipsis:
        return f"a list of {len(args)}: [{', '.join(_bare(describe(a)) for a in args)}]"
    if origin in _SEQUENCES and args:
        return f"a list of {_bare(describe(args[0]))}s"
    words = {
        bool: "true or false",
        int: "an integer",
        float: "a number",
        str: "a string",
        type(None): "null",
        None: "null",
        tuple: "a list",
        list: "a list",
        dict: "an object {...}",
    }
    if hint in words:
        return words[hint]
    if isinstance(hint, type) and issubclass(hint, PurePath):
        return "a path (string)"
    return f"a {getattr(hint, '__name__', hint)}"


def _bare(words: str) -> str:
    """Drop the article: "a number" -> "number" (inside a list description)."""
    return words.split(" ", 1)[1] if words.startswith(("a ", "an ")) else words


def _shown(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"
