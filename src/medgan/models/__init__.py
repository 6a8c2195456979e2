"""Generators and discriminators, found by name.

>>> from medgan import models
>>> g = models.build("dcgan_generator", image_size=64, spatial_dims=2)
>>> models.available()  # doctest: +SKIP

Register your own ``nn.Module`` in one line (``@models.register("my_gen")``), or name it by
import path (``models.build("my_pkg.nets:MyGen", ...)``, also in experiment files); it is
then trained, checkpointed and rebuilt exactly like the built-ins. Contract: generators take
``(z, y=None)`` (noise ``(N, latent_dim)`` and optional integer labels) or, for
image-to-image models, a source image; they return ``(N, C, *spatial)`` in [-1, 1].
Discriminators take ``(x, y=None)`` and return logits ``(N,)``.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from medgan.models import (  # noqa: F401  (registers the built-ins)
    conditioned,
    cycle,
    dcgan,
    denoiser,
    mlp,
    modern,
    patchgan,
    resnet,
    unet,
)
from medgan.registry import MODELS

register = MODELS.register
available = MODELS.available


def build(name: str, **kwargs: Any) -> nn.Module:
    """Build the model registered as ``name`` (or named by ``"package.module:Name"``, an
    ``nn.Module`` subclass or a factory function); unknown names list what exists."""
    return MODELS.build(name, **kwargs)


__all__ = ["available", "build", "register"]
