"""DCGAN generator and discriminator (Radford et al. 2016), 2D or 3D.

Generator: z ``(N, latent_dim)`` -> image ``(N, C, S, S[, S])`` in [-1, 1] (tanh), S any
power of two from 16 to 256. Discriminator: image -> logits ``(N,)``. With
``num_classes > 0`` the generator concatenates a label embedding to z and the
discriminator uses a projection head (Miyato & Koyama 2018).
"""

from __future__ import annotations

import torch
from torch import nn

from medgan.models import layers as L
from medgan.registry import MODELS


def _channels(base: int, k: int, max_channels: int) -> list[int]:
    """Feature widths at resolutions 4, 8, ..., 2**(k-1) (coarse to fine)."""
    return [min(base * 2 ** (k - 3 - i), max_channels) for i in range(k - 2)]


@MODELS.register("dcgan_generator")
class DCGANGenerator(nn.Module):
    """DCGAN generator: z ``(N, latent_dim)`` -> ``(N, C, S, S[, S])`` in [-1, 1] (tanh),
    transposed convolutions with batch norm and ReLU from 4^d up to S^d.

    Args:
        latent_dim: width of the noise z ``(N, latent_dim)`` (standard normal).
        out_channels: image channels C.
        image_size: side S of the output, a power of two from 16 to 256.
        base_channels: width at the full-resolution stage; it doubles at each coarser
            stage up to ``max_channels``.
        max_channels: the widest stage's channels.
        spatial_dims: 2 (images ``(N, C, S, S)``) or 3 (volumes ``(N, C, S, S, S)``).
        num_classes: > 0 for a class-conditional generator: ``forward(z, y)`` with integer
            labels y ``(N,)`` in [0, num_classes), embedded and joined to z.
    """

    def __init__(
        self,
        latent_dim: int = 100,
        out_channels: int = 1,
        image_size: int = 64,
        base_channels: int = 64,
        max_channels: int = 512,
        spatial_dims: int = 2,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        d = L.check_spatial_dims(spatial_dims)
        k = L.log2_size(image_size)
        self.latent_dim, self.num_classes, self.spatial_dims = latent_dim, num_classes, d
        self.inputs = L.NoiseWithLabels(latent_dim, num_classes, "DCGANGenerator")
        ch = _channels(base_channels, k, max_channels)
        blocks: list[nn.Module] = [
            L.conv_transpose(d, self.inputs.out_features, ch[0], 4, 1, 0, bias=False),
            L.batch_norm(d, ch[0]),
            nn.ReLU(True),
        ]
        for c_in, c_out in zip(ch[:-1], ch[1:], strict=True):
            blocks += [
                L.conv_transpose(d, c_in, c_out, 4, 2, 1, bias=False),
                L.batch_norm(d, c_out),
                nn.ReLU(True),
            ]
        blocks += [L.conv_transpose(d, ch[-1], out_channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*blocks)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Images ``(N, out_channels, S, S[, S])`` in [-1, 1] from noise ``z``
        ``(N, latent_dim)`` and, when conditional, int64 labels ``y`` ``(N,)`` in
        ``[0, num_classes)``."""
        h = self.inputs(z, y)
        return self.net(h.reshape(*h.shape, *([1] * self.spatial_dims)))


@MODELS.register("dcgan_discriminator")
class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator: image -> logits ``(N,)``, strided convolutions with
    LeakyReLU(0.2) down to 4^d, then a linear (projection) head.

    Args:
        in_channels: image channels C of the input ``(N, C, S, S[, S])`` in [-1, 1].
        image_size: side S of the input, a power of two from 16 to 256.
        base_channels: width at the full-resolution stage; it doubles at each coarser
            stage up to ``max_channels``.
        max_channels: the widest stage's channels.
        spatial_dims: 2 or 3.
        num_classes: > 0 for a projection discriminator (Miyato & Koyama 2018):
            ``forward(x, y)`` with integer labels y ``(N,)``.
        norm: normalisation after each strided convolution but the first: "batch",
            "instance" or "none".
        spectral_norm: spectral normalisation on every weight (Miyato et al. 2018).
        minibatch_std: append the minibatch standard deviation channel before the head
            (Karras et al. 2018), which helps against mode collapse.
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 64,
        base_channels: int = 64,
        max_channels: int = 512,
        spatial_dims: int = 2,
        num_classes: int = 0,
        norm: str = "batch",
        spectral_norm: bool = False,
        minibatch_std: bool = True,
    ) -> None:
        super().__init__()
        d = L.check_spatial_dims(spatial_dims)
        k = L.log2_size(image_size)
        self.num_classes = num_classes
        ch = _channels(base_channels, k, max_channels)[::-1]  # fine to coarse
        sn = spectral_norm
        blocks: list[nn.Module] = [
            L.maybe_sn(L.conv(d, in_channels, ch[0], 4, 2, 1), sn),
            nn.LeakyReLU(0.2, True),
        ]
        for c_in, c_out in zip(ch[:-1], ch[1:], strict=True):
            blocks += [
                L.maybe_sn(L.conv(d, c_in, c_out, 4, 2, 1, bias=norm == "none"), sn),
                L.norm(norm, d, c_out),
                nn.LeakyReLU(0.2, True),
            ]
        extra = 1 if minibatch_std else 0
        if minibatch_std:
            blocks.append(L.MinibatchStd())
        self.net = nn.Sequential(*blocks, nn.Flatten())
        # A linear map of the flattened 4^d features equals DCGAN's final 4x4 "valid" conv.
        self.head = L.ProjectionHead((ch[-1] + extra) * 4**d, num_classes, spectral=sn)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(N,)`` of images ``x`` ``(N, in_channels, S, S[, S])`` in [-1, 1]; int64
        labels ``y`` ``(N,)`` are required when conditional, refused (ValueError) otherwise."""
        L.check_labels(y, self.num_classes, "DCGANDiscriminator")
        return self.head(self.net(x), y)
