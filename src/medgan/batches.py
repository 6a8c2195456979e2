"""Turn a data-loader batch into what G and D consume: one small hook, many GAN kinds.

The trainer calls an adapter ``adapter(batch, sample_noise) -> GANInputs`` for every
update; the same loop therefore trains unconditional, class-conditional, paired
image-to-image and unpaired (CycleGAN) GANs, in 2D and 3D.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

NoiseFn = Callable[[int], Tensor]


@dataclass(frozen=True)
class GANInputs:
    """``real``: target images ``(N, C, *spatial)`` in [-1, 1] (or points ``(N, D)``);
    ``g_args``: positional arguments of the generator; ``cond``: what D is conditioned on
    (labels ``(N,)``, a source image, or None)."""

    real: Tensor
    g_args: tuple[Any, ...]
    cond: Any = None


class BatchAdapter(Protocol):
    def __call__(self, batch: Any, sample_noise: NoiseFn) -> GANInputs: ...


def _first_two(batch: Any) -> tuple[Tensor, Any]:
    if isinstance(batch, Tensor):
        return batch, None
    if isinstance(batch, dict):
        return batch["image"], batch.get("label")
    if isinstance(batch, Sequence) and 1 <= len(batch) <= 2:
        return batch[0], (batch[1] if len(batch) == 2 else None)
    raise TypeError(
        "a batch must be a tensor, (image, label), or {'image': ..., 'label': ...}; "
        f"got {type(batch).__name__}"
    )


class NoiseToImage:
    """Unconditional or class-conditional GANs: G(z[, y]), D(x[, y]).

    Batches are images, ``(images, labels)`` or ``{"image", "label"}``; labels are used
    only when ``conditional`` is true (labels present in the data are otherwise ignored).
    """

    def __init__(self, conditional: bool = False) -> None:
        self.conditional = conditional

    def __call__(self, batch: Any, sample_noise: NoiseFn) -> GANInputs:
        real, labels = _first_two(batch)
        z = sample_noise(real.shape[0])
        if not self.conditional:
            return GANInputs(real, (z,), None)
        if labels is None:
            raise ValueError(
                "a conditional GAN needs (image, label) batches; the data has no labels"
            )
        labels = torch.as_tensor(labels, device=real.device).long()
        return GANInputs(real, (z, labels), labels)


class Paired:
    """Image-to-image GANs (pix2pix): batches ``(source, target)``; G(source), D(x, source)."""

    def __call__(self, batch: Any, sample_noise: NoiseFn) -> GANInputs:
        source, target = _first_two(batch)
        if target is None:
            raise ValueError("paired training needs (source, target) batches")
        return GANInputs(target, (source,), source)


class Unpaired:
    """Unpaired translation (CycleGAN): batches ``(a, b)`` of images from two domains with the
    same spatial size; real = ``cat([a, b], 1)``, G(a, b), D(x) unconditioned."""

    def __call__(self, batch: Any, sample_noise: NoiseFn) -> GANInputs:
        a, b = _first_two(batch)
        if b is None:
            raise ValueError("unpaired training needs (domain A, domain B) batches")
        if a.shape[0] != b.shape[0] or a.shape[2:] != b.shape[2:]:
            raise ValueError(
                f"domain A and B batches must match in size and spatial shape, got "
                f"{tuple(a.shape)} and {tuple(b.shape)}"
            )
        return GANInputs(torch.cat([a, b], 1), (a, b), None)


def default_adapter(generator: torch.nn.Module) -> BatchAdapter:
    """NoiseToImage, conditional when the generator was built with ``num_classes > 0``."""
    return NoiseToImage(conditional=bool(getattr(generator, "num_classes", 0)))
