"""Two-domain model pairs for unpaired translation (CycleGAN, Zhu et al. 2017).

Both wrap two networks built from the registry, so any registered image-to-image generator
or discriminator (2D or 3D) can be used. Images of the two domains travel as one tensor,
channels of domain A first, then domain B: the real batch is ``cat([a, b], 1)`` and the
generator returns its translations in the same layout, so the trainer, the losses and the
penalties (R1, GP) treat the pair like any single network.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from medgan.errors import ConfigError
from medgan.registry import MODELS


class _TwoDomains(nn.Module):
    """Two registered networks, one per domain, and the split of ``cat([a, b], 1)``: the
    one constructor of both CycleGAN models. A subclass names the networks (``names``: the
    attribute of the one that reads domain A, then of the one that reads domain B) and
    says which channel arguments each takes (``channel_kwargs(own, other)``, with the
    channel counts of the domain it reads and of the other domain).

    Args:
        network: the registered name (or import path) of both networks.
        channels_a, channels_b: image channels of domain A and of domain B, >= 1.
        spatial_dims: 2 or 3, passed to both networks.
        network_kwargs: passed to both networks.
    """

    names: tuple[str, str]

    @staticmethod
    def channel_kwargs(own: int, other: int) -> dict[str, int]:
        """The channel arguments of the network that reads a domain of ``own`` channels (the
        other domain has ``other``)."""
        raise NotImplementedError

    def __init__(
        self,
        network: str,
        channels_a: int,
        channels_b: int,
        spatial_dims: int,
        network_kwargs: dict[str, Any],
    ) -> None:
        super().__init__()
        if channels_a < 1 or channels_b < 1:
            raise ConfigError(
                f"channels_a and channels_b must be >= 1, got {channels_a}, {channels_b}"
            )
        self.channels_a, self.channels_b = channels_a, channels_b
        kw = dict(network_kwargs, spatial_dims=spatial_dims)
        for name, own, other in zip(
            self.names, (channels_a, channels_b), (channels_b, channels_a), strict=True
        ):
            setattr(self, name, MODELS.build(network, **self.channel_kwargs(own, other), **kw))

    def split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``cat([a, b], 1)`` -> ``(a, b)``."""
        if x.shape[1] != self.channels_a + self.channels_b:
            raise ValueError(
                f"expected {self.channels_a} + {self.channels_b} channels (A then B), "
                f"got {x.shape[1]}"
            )
        return x[:, : self.channels_a], x[:, self.channels_a :]


@MODELS.register("cycle_generator")
class CycleGenerator(_TwoDomains):
    """Translators ``ab``: A -> B and ``ba``: B -> A, each a registered ``network``.

    ``forward(a, b)`` with ``a (N, channels_a, *S)`` and ``b (N, channels_b, *S)`` in [-1, 1]
    returns ``cat([ba(b), ab(a)], 1)``: the fake A images, then the fake B images, in
    [-1, 1] (the layout of the real batch ``cat([a, b], 1)``). For inference use
    ``model.ab(a)`` or ``model.ba(b)`` (or :func:`medgan.tasks.translate`).

    Args:
        network: a registered image-to-image generator taking ``in_channels`` and
            ``out_channels`` (default "unet_generator").
        channels_a, channels_b: image channels of domain A and of domain B.
        spatial_dims: 2 or 3.
        **network_kwargs: passed to both networks (e.g. ``base_channels``, ``depth``,
            ``residual``).
    """

    names = ("ab", "ba")

    @staticmethod
    def channel_kwargs(own: int, other: int) -> dict[str, int]:
        """A translator reads its own domain's channels and writes the other's."""
        return {"in_channels": own, "out_channels": other}

    def __init__(
        self,
        network: str = "unet_generator",
        channels_a: int = 1,
        channels_b: int = 1,
        spatial_dims: int = 2,
        **network_kwargs: Any,
    ) -> None:
        super().__init__(network, channels_a, channels_b, spatial_dims, network_kwargs)

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        """``cat([ba(b), ab(a)], 1)`` ``(N, channels_a + channels_b, *S)`` in [-1, 1] (the
        fake A images, then the fake B images) from ``a`` ``(N, channels_a, *S)`` and ``b``
        ``(N, channels_b, *S)`` in [-1, 1]."""
        return torch.cat([self.ba(b), self.ab(a)], 1)


@MODELS.register("cycle_discriminator")
class CycleDiscriminator(_TwoDomains):
    """Discriminators ``a`` (real vs fake A) and ``b`` (real vs fake B), each a registered
    unconditional ``network`` (e.g. ``patchgan_discriminator``).

    ``forward(x)`` with ``x = cat([a, b], 1)`` returns the logits of both, flattened and
    concatenated ``(N, P_a + P_b)``; a loss's mean over them is the mean of the two
    domains' losses when both networks see the same image size (the CycleGAN objective,
    which sums them, divided by 2: Adam does not see a constant factor).

    Args:
        network: a registered discriminator taking ``in_channels`` (default
            "patchgan_discriminator"; PatchGANs get ``cond_channels=0`` unless given: each
            judges its own domain alone).
        channels_a, channels_b: image channels of domain A and of domain B.
        spatial_dims: 2 or 3.
        **network_kwargs: passed to both networks (e.g. ``base_channels``, ``n_layers``).
    """

    names = ("a", "b")

    @staticmethod
    def channel_kwargs(own: int, other: int) -> dict[str, int]:
        """A discriminator reads its own domain's channels only."""
        return {"in_channels": own}

    def __init__(
        self,
        network: str = "patchgan_discriminator",
        channels_a: int = 1,
        channels_b: int = 1,
        spatial_dims: int = 2,
        **network_kwargs: Any,
    ) -> None:
        if "patchgan" in network:  # each judges its own domain alone: no conditioning image
            network_kwargs.setdefault("cond_channels", 0)
        super().__init__(network, channels_a, channels_b, spatial_dims, network_kwargs)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(N, P_a + P_b)`` of ``x`` = ``cat([a, b], 1)`` ``(N, channels_a +
        channels_b, *S)`` in [-1, 1]: network ``a``'s on A, flattened, then ``b``'s on B.
        ValueError for another channel count."""
        a, b = self.split(x)
        return torch.cat([self.a(a).flatten(1), self.b(b).flatten(1)], 1)
