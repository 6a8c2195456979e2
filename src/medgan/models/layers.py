"""Layer factories that let one model class serve 2D and 3D (``spatial_dims`` = 2 or 3)."""

from __future__ import annotations

import math

import torch
from torch import nn

from medgan.errors import ConfigError


def check_spatial_dims(spatial_dims: int) -> int:
    """``spatial_dims`` itself when it is 2 or 3, else a ConfigError naming the value."""
    if spatial_dims not in (2, 3):
        raise ConfigError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
    return spatial_dims


def conv(spatial_dims: int, *args, **kwargs) -> nn.Module:
    """``nn.Conv2d`` or ``nn.Conv3d`` (by ``spatial_dims``) built with the other arguments."""
    return (nn.Conv2d, nn.Conv3d)[check_spatial_dims(spatial_dims) - 2](*args, **kwargs)


def conv_transpose(spatial_dims: int, *args, **kwargs) -> nn.Module:
    """``nn.ConvTranspose2d`` or ``nn.ConvTranspose3d`` (by ``spatial_dims``, 2 or 3) built
    with the other arguments."""
    return (nn.ConvTranspose2d, nn.ConvTranspose3d)[check_spatial_dims(spatial_dims) - 2](
        *args, **kwargs
    )


def batch_norm(spatial_dims: int, channels: int) -> nn.Module:
    """``nn.BatchNorm2d`` or ``nn.BatchNorm3d`` (by ``spatial_dims``, 2 or 3) over
    ``channels`` (torch's defaults)."""
    return (nn.BatchNorm2d, nn.BatchNorm3d)[check_spatial_dims(spatial_dims) - 2](channels)


def avg_pool(spatial_dims: int, kernel_size: int) -> nn.Module:
    """``nn.AvgPool2d`` or ``nn.AvgPool3d`` (by ``spatial_dims``, 2 or 3) with
    ``kernel_size`` (stride = kernel size)."""
    return (nn.AvgPool2d, nn.AvgPool3d)[check_spatial_dims(spatial_dims) - 2](kernel_size)


def instance_norm(spatial_dims: int, channels: int) -> nn.Module:
    """``nn.InstanceNorm2d`` or ``nn.InstanceNorm3d`` (by ``spatial_dims``, 2 or 3) over
    ``channels``, with a learned affine scale and shift."""
    return (nn.InstanceNorm2d, nn.InstanceNorm3d)[check_spatial_dims(spatial_dims) - 2](
        channels, affine=True
    )


def norm(kind: str, spatial_dims: int, channels: int) -> nn.Module:
    """A normalisation layer by name.

    Args:
        kind: "batch", "instance" (with a learned affine) or "none" (``nn.Identity``);
            another name is a ConfigError.
        spatial_dims: 2 or 3.
        channels: the channels C of the input ``(N, C, *spatial)``.
    """
    if kind == "batch":
        return batch_norm(spatial_dims, channels)
    if kind == "instance":
        return instance_norm(spatial_dims, channels)
    if kind == "none":
        return nn.Identity()
    raise ConfigError(f"norm must be 'batch', 'instance' or 'none', got {kind!r}")


def maybe_sn(module: nn.Module, enabled: bool) -> nn.Module:
    """``module`` with spectral normalisation of its weight (Miyato et al. 2018) when
    ``enabled``, else ``module`` unchanged."""
    return nn.utils.parametrizations.spectral_norm(module) if enabled else module


def log2_size(image_size: int, low: int = 16, high: int = 256) -> int:
    """``log2(image_size)`` for a power of two ``image_size`` (pixels) between ``low`` and
    ``high`` inclusive (defaults 16 and 256), else a ConfigError."""
    k = int(round(math.log2(image_size))) if image_size > 0 else -1
    if image_size < low or image_size > high or 2**k != image_size:
        raise ConfigError(
            f"image_size must be a power of two between {low} and {high}, got {image_size}"
        )
    return k


def check_labels(y: torch.Tensor | None, num_classes: int, who: str) -> None:
    """ValueError (naming the model ``who``) when a conditional model (``num_classes`` > 0)
    gets no labels ``y``, or an unconditional one (``num_classes`` = 0) gets labels."""
    if num_classes and y is None:
        raise ValueError(f"{who} was built with num_classes={num_classes}: pass class labels y")
    if not num_classes and y is not None:
        raise ValueError(f"{who} is unconditional (num_classes=0) but got labels y")


class NoiseWithLabels(nn.Module):
    """Generator input: z ``(N, latent_dim)``, with ``num_classes > 0`` concatenated with a
    learned label embedding ``(N, latent_dim)``; ``out_features`` is the result's width.

    Args:
        latent_dim: width of the noise z, and of the label embedding.
        num_classes: number of classes; 0 = unconditional (no embedding, labels refused).
        who: the model's name, in the errors about missing or unexpected labels.
    """

    def __init__(self, latent_dim: int, num_classes: int, who: str) -> None:
        super().__init__()
        self.num_classes, self.who = num_classes, who
        self.embed = nn.Embedding(num_classes, latent_dim) if num_classes else None
        self.out_features = latent_dim * (2 if num_classes else 1)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """``(N, out_features)``: ``z`` ``(N, latent_dim)`` as is, or concatenated with the
        embedding of the int64 labels ``y`` ``(N,)`` in ``[0, num_classes)``. ValueError when
        ``y`` is missing for a conditional model or given to an unconditional one."""
        check_labels(y, self.num_classes, self.who)
        return z if self.embed is None else torch.cat([z, self.embed(y)], dim=1)


class ProjectionHead(nn.Module):
    """Projection discriminator output (Miyato & Koyama 2018, eq. 3).

    ``logit = linear(h) + <embed(y), h>`` for features ``h`` of shape ``(N, F)`` and
    integer labels ``y`` of shape ``(N,)``; ``y`` is ignored when ``num_classes == 0``.

    Args:
        features: F, the width of the features ``h``.
        num_classes: number of classes; 0 = a plain linear head (no embedding).
        spectral: spectral normalisation of the linear map and the embedding.
    """

    def __init__(self, features: int, num_classes: int, spectral: bool) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.linear = maybe_sn(nn.Linear(features, 1), spectral)
        self.embed = (
            maybe_sn(nn.Embedding(num_classes, features), spectral) if num_classes else None
        )

    def forward(self, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """Logits ``(N,)`` of features ``h`` ``(N, F)`` and int64 labels ``y`` ``(N,)`` in
        ``[0, num_classes)`` (required when ``num_classes > 0``, else ignored)."""
        out = self.linear(h).squeeze(1)
        if self.embed is not None:
            out = out + (self.embed(y) * h).sum(dim=1)
        return out


class MinibatchStd(nn.Module):
    """Append the mean over features of the per-group standard deviation across the batch as
    one extra channel (Karras et al. 2018, sec. 3): lets D notice a generator whose samples
    lack variety, a direct counter to mode collapse.

    ``(N, C, *spatial)`` -> ``(N, C + 1, *spatial)``. Groups of ``group_size`` samples; when
    N is not divisible the whole batch forms one group.
    """

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(N, C, *spatial)`` -> ``(N, C + 1, *spatial)``, the input's dtype: the
        extra channel is constant per sample (its group's mean standard deviation, >= 1e-4)."""
        n = x.shape[0]
        g = self.group_size if n % self.group_size == 0 else n
        y = x.float().reshape(g, n // g, *x.shape[1:])  # sample j of each group shares stats
        y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt()  # (n/g, C, *spatial)
        y = y.flatten(1).mean(dim=1)  # (n/g,)
        y = y.repeat(g).reshape(n, 1, *([1] * (x.dim() - 2))).expand(n, 1, *x.shape[2:])
        return torch.cat([x, y.to(x.dtype)], dim=1)
