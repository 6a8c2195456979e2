"""Checks run once before training, so that a generator, discriminator and data set that
do not fit together fail in one line naming the fix, not deep inside the first step with
"mat1 and mat2 shapes cannot be multiplied"."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from medgan.errors import ConfigError
from medgan.losses import discriminator_logits


def check_first_batch(trainer: Any) -> None:
    """Run the trainer's generator and discriminator once, without gradients and in eval
    mode, on the next training batch; raise ConfigError when the batch is of no accepted
    form, when the generator fails on it or makes images of another shape than the items,
    when the discriminator fails on the real images or returns no logits, or when a
    ``fake_history`` would pair earlier images with this batch's condition.

    The batch is *peeked* (:meth:`medgan.data.stream.DataStream.peek`): it stays the next
    batch training consumes, so this works alike for a map-style Dataset, an
    IterableDataset and a DataLoader, and the data stream is neither consumed nor
    reordered. Nothing else
    changes: the modules' train/eval modes, the global RNGs and every ``torch.Generator``
    a module holds (e.g. DiffAugment's) are restored, so resumed runs stay bit-exact. The
    noise comes from a private generator.

    Args:
        trainer: the :class:`~medgan.trainer.Trainer` to check, before ``fit`` (its
            ``stream``, ``adapter``, ``generator`` and ``discriminator`` are used).
    """
    batch = trainer.stream.peek()
    rng = torch.Generator(trainer.device).manual_seed(0)
    x = trainer.adapter(batch, lambda n: trainer.sample_noise(n, rng))
    if getattr(trainer, "fake_history", None) is not None and x.cond is not None:
        raise ConfigError(
            "TrainConfig.fake_history needs an unconditioned discriminator (CycleGAN): an "
            "earlier generated image would meet this batch's condition (source image or "
            "label); set fake_history=0"
        )
    g, d = trainer.generator, trainer.discriminator
    items = _shape(x.real)
    eager = (
        torch.compiler.set_stance("force_eager")  # no recompilation for eval mode
        if getattr(trainer.config, "compile", False)
        else contextlib.nullcontext()
    )
    with _unchanged(g, d, trainer.device), torch.no_grad(), eager:
        try:
            fake = g(*x.g_args)
        except RuntimeError as e:
            raise ConfigError(
                f"the generator fails on inputs made from training items of shape {items} "
                f"({_first_line(e)}): build it for the data"
            ) from None
        made = _shape(fake)
        if made != items:
            raise ConfigError(
                f"training items are {items} but the generator makes {made}: {_fix(items, made)}"
            )
        try:
            discriminator_logits(d, x.real, x.cond)  # the losses' reading of D's output
        except RuntimeError as e:
            raise ConfigError(
                f"training items are {items} (as the generator makes) but the discriminator "
                f"fails on them ({_first_line(e)}): build it for spatial size {made[1:]}"
            ) from None


def _fix(items: tuple[int, ...], made: tuple[int, ...]) -> str:
    """What to change when the data and the generator disagree."""
    if len(items) == len(made) + 1 and items[-1] == 1:
        return (
            "the items have a trailing axis of size 1 (torchio stores 2D images as "
            "(C, W, H, 1)): drop it, e.g. in a collate_fn, or build 3D models"
        )
    if len(items) != len(made):
        return "2D models need 2D items (C, H, W), 3D models 3D items (C, D, H, W)"
    if items[0] != made[0]:
        return f"give the data {made[0]} channel(s), or build the models for {items[0]} channel(s)"
    sides = set(made[1:])
    size = f"size={sides.pop()}" if len(sides) == 1 else f"spatial size {made[1:]}"
    return (
        f"pass {size} to the data set, or build the generator and discriminator for "
        f"spatial size {items[1:]}"
    )


def _shape(x: Tensor) -> tuple[int, ...]:
    return tuple(x.shape[1:])


def _first_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"


@contextlib.contextmanager
def _unchanged(g: nn.Module, d: nn.Module, device: torch.device) -> Iterator[None]:
    """Eval mode inside; every submodule's mode, the global RNGs (torch, numpy, python) and
    the modules' own generators restored after."""
    modes = [(m, m.training) for net in (g, d) for m in net.modules()]
    rngs = [
        (r, r.get_state())
        for net in (g, d)
        for m in net.modules()
        for r in vars(m).values()
        if isinstance(r, torch.Generator)
    ]
    devices = [device] if device.type == "cuda" else []
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    try:
        with torch.random.fork_rng(devices=devices):
            g.eval()
            d.eval()
            yield
    finally:
        for m, training in modes:
            m.training = training  # not .train(): that would set the children too
        np.random.set_state(np_state)  # noqa: NPY002
        random.setstate(py_state)
        for r, state in rngs:
            r.set_state(state)
