"""SNGAN-style residual generator and discriminator (Miyato et al. 2018), 2D or 3D.

Generator: z ``(N, latent_dim)`` -> image ``(N, C, S, S[, S])`` in [-1, 1], S a power of two
from 16 to 256, built from upsampling residual blocks. Discriminator: downsampling
residual blocks with spectral normalisation on every weight, ReLU, global sum pooling and
a (projection) linear head returning logits ``(N,)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from medgan.models import layers as L
from medgan.registry import MODELS


class _UpBlock(nn.Module):
    def __init__(self, d: int, c_in: int, c_out: int) -> None:
        super().__init__()
        self.bn1, self.bn2 = L.batch_norm(d, c_in), L.batch_norm(d, c_out)
        self.conv1 = L.conv(d, c_in, c_out, 3, 1, 1)
        self.conv2 = L.conv(d, c_out, c_out, 3, 1, 1)
        self.skip = L.conv(d, c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x)), scale_factor=2.0, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h))))
        return h + self.skip(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _DownBlock(nn.Module):
    def __init__(self, d: int, c_in: int, c_out: int, first: bool, spectral: bool) -> None:
        super().__init__()
        self.first = first
        self.conv1 = L.maybe_sn(L.conv(d, c_in, c_out, 3, 1, 1), spectral)
        self.conv2 = L.maybe_sn(L.conv(d, c_out, c_out, 3, 1, 1), spectral)
        self.skip = L.maybe_sn(L.conv(d, c_in, c_out, 1), spectral)
        self.pool = L.avg_pool(d, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)  # the first block sees the raw image
        h = self.pool(self.conv2(F.relu(self.conv1(h))))
        skip = self.skip(self.pool(x)) if self.first else self.pool(self.skip(x))
        return h + skip


@MODELS.register("resnet_generator")
class ResNetGenerator(nn.Module):
    """SNGAN residual generator: z ``(N, latent_dim)`` -> ``(N, C, S, S[, S])`` in
    [-1, 1], a linear map to 4^d then upsampling residual blocks.

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
        latent_dim: int = 128,
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
        ch = [min(base_channels * 2 ** (k - 2 - i), max_channels) for i in range(k - 1)]
        self.inputs = L.NoiseWithLabels(latent_dim, num_classes, "ResNetGenerator")
        self.ch0 = ch[0]
        self.fc = nn.Linear(self.inputs.out_features, ch[0] * 4**d)
        self.blocks = nn.Sequential(
            *[_UpBlock(d, a, b) for a, b in zip(ch[:-1], ch[1:], strict=True)]
        )
        self.out = nn.Sequential(
            L.batch_norm(d, ch[-1]), nn.ReLU(), L.conv(d, ch[-1], out_channels, 3, 1, 1), nn.Tanh()
        )

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Images ``(N, out_channels, S, S[, S])`` in [-1, 1] from noise ``z``
        ``(N, latent_dim)`` and, when conditional, int64 labels ``y`` ``(N,)`` in
        ``[0, num_classes)``."""
        h = self.fc(self.inputs(z, y)).view(z.shape[0], self.ch0, *([4] * self.spatial_dims))
        return self.out(self.blocks(h))


@MODELS.register("resnet_discriminator")
class ResNetDiscriminator(nn.Module):
    """SNGAN residual discriminator: image -> logits ``(N,)``, downsampling residual
    blocks, ReLU, global sum pooling and a (projection) linear head.

    Args:
        in_channels: image channels C of the input ``(N, C, S, S[, S])`` in [-1, 1].
        image_size: side S of the input, a power of two from 16 to 256.
        base_channels: width at the full-resolution stage; it doubles at each coarser
            stage up to ``max_channels``.
        max_channels: the widest stage's channels.
        spatial_dims: 2 or 3.
        num_classes: > 0 for a projection discriminator (Miyato & Koyama 2018):
            ``forward(x, y)`` with integer labels y ``(N,)``.
        spectral_norm: spectral normalisation on every weight (the SNGAN default).
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 64,
        base_channels: int = 64,
        max_channels: int = 512,
        spatial_dims: int = 2,
        num_classes: int = 0,
        spectral_norm: bool = True,
    ) -> None:
        super().__init__()
        d = L.check_spatial_dims(spatial_dims)
        k = L.log2_size(image_size)
        self.num_classes, self.spatial_dims = num_classes, d
        ch = [min(base_channels * 2**i, max_channels) for i in range(k - 2)]  # S/2 ... 4
        widths = [in_channels, *ch]
        self.blocks = nn.Sequential(
            *[
                _DownBlock(d, a, b, first=i == 0, spectral=spectral_norm)
                for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True))
            ]
        )
        self.head = L.ProjectionHead(ch[-1], num_classes, spectral=spectral_norm)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(N,)`` of images ``x`` ``(N, in_channels, S, S[, S])`` in [-1, 1]; int64
        labels ``y`` ``(N,)`` are required when conditional, refused (ValueError) otherwise."""
        L.check_labels(y, self.num_classes, "ResNetDiscriminator")
        h = F.relu(self.blocks(x)).sum(dim=tuple(range(2, 2 + self.spatial_dims)))
        return self.head(h, y)
