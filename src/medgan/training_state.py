"""What a training checkpoint holds, and when a run may continue from one.

:mod:`medgan.checkpoint` writes and reads the file (atomic, checksummed, weights only);
this module owns its content for a :class:`~medgan.trainer.Trainer`, a plain dict:

=======================================  ==================================================
key                                      value
=======================================  ==================================================
``format``, ``version``                  ``"medgan"``, :data:`medgan.checkpoint.FORMAT_VERSION`
``generator``, ``discriminator``         ``{"spec": {"name", "kwargs"} or None, "state"}``
``ema``                                  the EMA generator's state dict, or None
``loss``                                 the loss's ``{"name", "kwargs"}``, or None
``config``                               :meth:`TrainConfig.to_dict`
``opt_g``, ``opt_d``                     optimiser state dicts
``sched_g``, ``sched_d``                 learning-rate schedule state dicts
``scaler_g``, ``scaler_d``               AMP gradient-scaler state dicts
``step``                                 generator steps done
``epoch``, ``batch_in_epoch``            the data stream's position (the next batch)
``data``                                 the random states of the current pass (streams)
``world_size``                           processes of the run that wrote it
``rng``                                  :func:`medgan.checkpoint.rng_state`, with the
                                         trainer's ``noise`` and ``aux`` generators
``fake_history``                         :meth:`FakeHistory.state_dict
                                         <medgan.history.FakeHistory.state_dict>`, or None
=======================================  ==================================================

Loading refuses, before anything changes, a checkpoint that lacks keys or that comes from a
run this one cannot continue exactly (another world size, another ``fake_history`` size,
another decaying schedule).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from medgan import checkpoint as ckpt_io
from medgan.errors import CheckpointError, TrainingDivergedError
from medgan.registry import LOSSES, Spec, spec_of

if TYPE_CHECKING:
    from medgan.losses import GANLoss
    from medgan.trainer import Trainer

#: what :func:`load_state` needs besides "rng" (which a rollback does not restore)
RESUME_KEYS = (
    "generator",
    "discriminator",
    "opt_g",
    "opt_d",
    "sched_g",
    "sched_d",
    "scaler_g",
    "scaler_d",
    "step",
    "epoch",
    "batch_in_epoch",
)


def state_dict(trainer: Trainer) -> dict[str, Any]:
    """Everything needed to continue ``trainer`` exactly: nets, EMA, optimisers, schedules,
    scalers, step, data position, all random states, and how to rebuild the nets."""
    t = trainer
    return {
        "format": "medgan",
        "version": ckpt_io.FORMAT_VERSION,
        "generator": _net_entry(t.generator),
        "discriminator": _net_entry(t.discriminator),
        "ema": t.ema.state_dict() if t.ema is not None else None,
        "loss": _spec_dict(loss_spec(t.loss)),
        "config": t.config.to_dict(),
        "opt_g": t.opt_g.state_dict(),
        "opt_d": t.opt_d.state_dict(),
        "sched_g": t.sched_g.state_dict(),
        "sched_d": t.sched_d.state_dict(),
        "scaler_g": t.scaler_g.state_dict(),
        "scaler_d": t.scaler_d.state_dict(),
        "step": t.step,
        "epoch": t.stream.epoch,
        "batch_in_epoch": t.stream.batch,
        "data": t.stream.state_dict(),  # random states of the current pass (streams)
        "world_size": t.dist.world_size,
        "rng": ckpt_io.rng_state({"noise": t.noise_rng, "aux": t.aux_rng}),
        "fake_history": None if t.fake_history is None else t.fake_history.state_dict(),
    }


def save(trainer: Trainer, path: str | Path) -> Path:
    """Write :func:`state_dict` of ``trainer`` to ``path`` atomically; refuses
    (TrainingDivergedError) NaN/inf weights. Returns the path."""
    for name, net in (("generator", trainer.generator), ("discriminator", trainer.discriminator)):
        if not all(torch.isfinite(p).all() for p in net.parameters()):
            raise TrainingDivergedError(
                f"{name} has NaN/inf weights at step {trainer.step}; refusing to write {path}"
            )
    return ckpt_io.save_atomic(state_dict(trainer), path)


def load_state(
    trainer: Trainer, state: dict[str, Any], restore_rng: bool = True, source: str = "checkpoint"
) -> None:
    """Restore what :func:`state_dict` captured into ``trainer``; refused (CheckpointError
    naming ``source``, before anything changes) by :func:`check_resumable`.

    With ``restore_rng`` False the current random states and the data stream's pass states
    are kept (a rollback: it reloads the weights, then moves the stream back to where it
    was, so training goes on with new batches instead of replaying those that diverged).
    ``state``: a checkpoint dict (:func:`medgan.checkpoint.load`'s output)."""
    t = trainer
    check_resumable(t, state, restore_rng, source)
    for key, net in (("generator", t.generator), ("discriminator", t.discriminator)):
        load_net(net, state[key], key, source)
    if t.ema is not None:
        t.ema.load_state_dict(
            state["ema"] if state.get("ema") is not None else t.generator.state_dict()
        )
    try:
        t.opt_g.load_state_dict(state["opt_g"])
        t.opt_d.load_state_dict(state["opt_d"])
    except (ValueError, KeyError) as e:
        raise CheckpointError(f"{source}: optimiser state does not fit these models: {e}") from e
    t.sched_g.load_state_dict(state["sched_g"])
    t.sched_d.load_state_dict(state["sched_d"])
    t.scaler_g.load_state_dict(state["scaler_g"])
    t.scaler_d.load_state_dict(state["scaler_d"])
    t.step = state["step"]
    t.stream.seek(state["epoch"], state["batch_in_epoch"])
    if t.fake_history is not None and state.get("fake_history") is not None:
        t.fake_history.load_state_dict(state["fake_history"], t.device)
    if restore_rng:
        ckpt_io.set_rng_state(state["rng"], {"noise": t.noise_rng, "aux": t.aux_rng})
        t.stream.load_state_dict(state.get("data"))


def check_resumable(
    trainer: Trainer, state: dict[str, Any], restore_rng: bool, source: str
) -> None:
    """Refuse ``state`` (CheckpointError naming ``source``) when it lacks
    :data:`RESUME_KEYS` (and ``"rng"`` when ``restore_rng``), or comes from a run with
    another world size than ``trainer``'s, or with another ``fake_history`` size, or from
    (or into) a decaying schedule with other ``lr_schedule``/``steps``."""
    required = [*RESUME_KEYS, "rng"] if restore_rng else list(RESUME_KEYS)
    missing = [k for k in required if k not in state]
    if missing:
        raise CheckpointError(
            f"{source} lacks {', '.join(missing)}: it is not a complete training "
            "checkpoint (written by Trainer.save), so training cannot continue from it"
        )
    theirs, ours = state.get("world_size", 1), trainer.dist.world_size
    if theirs != ours:
        raise CheckpointError(
            f"{source} was written by a run with {theirs} process(es), this one has "
            f"{ours}: the data order (each process reads its share of every epoch), the "
            "images per step and so the EMA decay would all differ from the run it "
            f"continues. Resume with {theirs} process(es) (torchrun --nproc_per_node "
            f"{theirs}), or start a fresh run"
        )
    saved, cfg = state.get("config") or {}, trainer.config
    theirs = (state.get("fake_history") or {}).get("size", 0)
    if theirs != cfg.fake_history:
        raise CheckpointError(
            f"{source} was written by a run whose discriminator saw a history of {theirs} "
            f"generated images (TrainConfig.fake_history), this run has {cfg.fake_history}: "
            "it would not continue the same training. Resume with the checkpoint's "
            "fake_history, or start a fresh run"
        )
    if {"linear_decay", "half_then_decay"} & {cfg.lr_schedule, saved.get("lr_schedule")}:
        diff = [
            f"{k}={saved[k]!r} there, {getattr(cfg, k)!r} here"
            for k in ("lr_schedule", "steps")
            if k in saved and saved[k] != getattr(cfg, k)
        ]
        if diff:
            raise CheckpointError(
                f"{source}: the learning rate decays to 0 at config.steps, and "
                f"the checkpoint's run differs ({'; '.join(diff)}), so the rate would "
                "jump and the schedule differ from the run it continues. Resume with "
                "the checkpoint's settings, or start a fresh run for a longer schedule"
            )


def load_net(net: nn.Module, entry: dict[str, Any], key: str, source: str) -> None:
    """Load ``entry``, a checkpoint's ``{"spec", "state"}`` entry, into ``net``; refused
    (CheckpointError naming ``source`` and ``key``, "generator" or "discriminator") when
    the entry holds no weights, names another registered model or kwargs, or its weights
    do not fit."""
    if not isinstance(entry, dict) or not isinstance(entry.get("state"), dict):
        raise CheckpointError(f"{source}: the {key} entry holds no weights")
    ours, theirs = spec_of(net), entry.get("spec")
    if ours is not None and theirs is not None and ours.to_dict() != theirs:
        raise CheckpointError(
            f"{source} holds a {key} {theirs['name']!r} with kwargs {theirs['kwargs']}, but this "
            f"trainer's {key} is {ours.name!r} with kwargs {ours.kwargs}; build the same model"
        )
    ckpt_io.check_state_fits(net, entry["state"], source, key)  # names the first odd key
    try:
        net.load_state_dict(entry["state"])
    except RuntimeError as e:
        raise CheckpointError(f"{source}: the {key} weights do not fit this model: {e}") from e


def loss_spec(loss: GANLoss) -> Spec | None:
    """How to rebuild ``loss``: the spec it was built with, else its registered name and
    dataclass fields; None for an unregistered loss."""
    spec = spec_of(loss)
    if spec is not None:
        return spec
    name = LOSSES.name_of(type(loss))
    return Spec(name, dataclasses.asdict(loss)) if name else None


def _net_entry(net: nn.Module) -> dict[str, Any]:
    return {"spec": _spec_dict(spec_of(net)), "state": net.state_dict()}


def _spec_dict(spec: Spec | None) -> dict[str, Any] | None:
    return spec.to_dict() if spec is not None else None
