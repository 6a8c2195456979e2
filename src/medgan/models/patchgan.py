"""PatchGAN discriminators (Isola et al. 2017), conditional on a source image, 2D or 3D.

``D(x, cond)`` concatenates the image ``x`` and the condition ``cond`` (or uses ``x`` alone
when ``cond_channels == 0``) and returns one logit per receptive-field patch, flattened to
``(N, P)``; all losses in :mod:`medgan.losses` average over every logit. The multi-scale
variant (Wang et al. 2018, pix2pixHD) runs PatchGANs on the input at 1, 1/2, 1/4, ... scale
and concatenates their patch logits.
"""

from __future__ import annotations

import torch
from torch import nn

from medgan.models import layers as L
from medgan.registry import MODELS


@MODELS.register("patchgan_discriminator")
class PatchGANDiscriminator(nn.Module):
    """PatchGAN: ``forward(x, cond)`` -> one logit per patch, ``(N, P)``.

    Args:
        in_channels: channels of the judged image x ``(N, in_channels, *spatial)``.
        cond_channels: channels of the condition (the source image) concatenated to x;
            0 for an unconditional PatchGAN.
        base_channels: width of the first layer; doubles per layer up to ``max_channels``.
        n_layers: strided layers; more layers see larger patches (70x70 for 3 in 2D) and
            need sides of at least ``3 * 2**n_layers``.
        spatial_dims: 2 or 3.
        spectral_norm: spectral normalisation on every weight.
        max_channels: the widest layer's channels.
    """

    def __init__(
        self,
        in_channels: int = 1,
        cond_channels: int = 1,
        base_channels: int = 64,
        n_layers: int = 3,
        spatial_dims: int = 2,
        spectral_norm: bool = False,
        max_channels: int = 512,
    ) -> None:
        super().__init__()
        d = L.check_spatial_dims(spatial_dims)
        self.cond_channels = cond_channels
        sn = spectral_norm
        c = in_channels + cond_channels
        layers: list[nn.Module] = [
            L.maybe_sn(L.conv(d, c, base_channels, 4, 2, 1), sn),
            nn.LeakyReLU(0.2, True),
        ]
        ch = base_channels
        for i in range(1, n_layers + 1):
            nxt = min(base_channels * 2**i, max_channels)
            stride = 2 if i < n_layers else 1
            layers += [
                L.maybe_sn(L.conv(d, ch, nxt, 4, stride, 1), sn),
                L.instance_norm(d, nxt),
                nn.LeakyReLU(0.2, True),
            ]
            ch = nxt
        layers.append(L.maybe_sn(L.conv(d, ch, 1, 4, 1, 1), sn))
        self.net = nn.Sequential(*layers)
        self.min_size = 3 * 2**n_layers  # the last normalised map needs >= 2 elements per side

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Patch logits ``(N, P)`` of images ``x`` ``(N, in_channels, *spatial)`` in [-1, 1]
        and, when ``cond_channels > 0``, the condition ``cond`` ``(N, cond_channels,
        *spatial)`` (required). ValueError for a missing condition or sides below
        ``3 * 2**n_layers``."""
        if self.cond_channels:
            if cond is None:
                raise ValueError("this PatchGAN is conditional: pass the source image as cond")
            x = torch.cat([x, cond], dim=1)
        if min(x.shape[2:]) < self.min_size:
            raise ValueError(
                f"PatchGAN with these n_layers needs sides >= {self.min_size}, "
                f"got {tuple(x.shape[2:])}; "
                "use fewer layers or scales"
            )
        return self.net(x).flatten(1)


@MODELS.register("multiscale_patchgan_discriminator")
class MultiScalePatchGAN(nn.Module):
    """``num_scales`` PatchGANs on the input at scales 1, 1/2, 1/4, ...; their patch logits
    concatenated, ``(N, P_total)``.

    Args:
        num_scales: how many scales (each halves the previous one by average pooling).
        spatial_dims: 2 or 3.
        **kwargs: the keyword arguments of every :class:`PatchGANDiscriminator`.
    """

    def __init__(self, num_scales: int = 2, spatial_dims: int = 2, **kwargs) -> None:
        super().__init__()
        d = L.check_spatial_dims(spatial_dims)
        self.cond_channels = kwargs.get("cond_channels", 1)
        self.discs = nn.ModuleList(
            [PatchGANDiscriminator(spatial_dims=d, **kwargs) for _ in range(num_scales)]
        )
        self.pool = L.avg_pool(d, 2)

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Patch logits ``(N, P_total)`` of ``x`` ``(N, in_channels, *spatial)`` in [-1, 1]
        (and ``cond``, average-pooled alongside): the full-scale PatchGAN's, then each coarser
        scale's, concatenated."""
        out = []
        for i, disc in enumerate(self.discs):
            if i:
                x = self.pool(x)
                cond = self.pool(cond) if cond is not None else None
            out.append(disc(x, cond))
        return torch.cat(out, dim=1)
