"""A modern convolutional GAN without normalisation layers, 2D or 3D (after R3GAN:
Huang, Gokaslan, Kuleshov & Tompkin, "The GAN is dead; long live the GAN! A Modern GAN
Baseline", NeurIPS 2024, sec. 3-4).

What it takes from the paper:

* Residual blocks ``x + conv1x1(act(grouped conv3x3(act(conv1x1(x)))))``: a 1x1 expansion
  by ``expansion``, a grouped 3x3 convolution (``group_width`` channels per group, the
  ResNeXt "cardinality" idea), a 1x1 projection; biases everywhere, leaky ReLU (0.2)
  between, **no normalisation layers** (the loss and its R1/R2 penalties keep training
  stable; normalisation would couple the samples of a batch).
* Fix-up initialisation (Zhang et al. 2019, as used by R3GAN): the last layer of every
  residual branch starts at zero, so every block starts as the identity, and the other
  branch layers are scaled by ``L ** (-1 / (2m - 2))`` for ``L`` blocks of ``m = 3`` layers.
* Anti-aliased resampling with the small low-pass filter [1, 2, 1] (separable, in every
  spatial axis): up-sampling is zero-insertion followed by the filter (gain 2 per axis),
  down-sampling is the filter followed by stride 2.
* A generative basis (G's first layer: a learned ``4^d`` constant per channel, modulated by
  a linear map of z) and a discriminative basis (D's last layer: a depthwise ``4^d``
  convolution to one value per channel, then a linear head).

Shapes: G maps ``z (N, latent_dim)`` [+ labels ``(N,)``] to ``(N, C, S, S[, S])`` in
[-1, 1] (tanh, our image contract); D maps such images to logits ``(N,)``. ``S`` is a power
of two from 16 to 256. Stage widths go from ``min(base_channels * 2^k, max_channels)`` at
4^d to ``base_channels`` at full resolution, as in our other families.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from medgan.errors import ConfigError
from medgan.models import layers as L
from medgan.registry import MODELS

_SLOPE = 0.2
_GAIN = math.sqrt(2.0 / (1.0 + _SLOPE**2))  # He gain of leaky ReLU(0.2)


def _init(conv: nn.Module, scale: float) -> nn.Module:
    """He-normal weights times ``scale`` (0 gives the zero init of fix-up), zero bias."""
    fan_in = conv.weight[0].numel()
    with torch.no_grad():
        conv.weight.normal_(0.0, scale * _GAIN / math.sqrt(fan_in))
        if conv.bias is not None:
            conv.bias.zero_()
    return conv


class Resample(nn.Module):
    """Up- or down-sampling by 2 in every spatial axis with the separable [1, 2, 1] filter.

    ``(N, C, *S)`` -> ``(N, C, *(2S))`` (``"up"``) or ``(N, C, *(S/2))`` (``"down"``). The
    filter is normalised to sum 1 per axis; up-sampling multiplies it by 2 per axis so that
    a constant image stays constant (zero insertion keeps 1 sample in 2).

    Args:
        spatial_dims: 2 or 3.
        mode: "up" or "down"; another value is a ValueError.
    """

    def __init__(self, spatial_dims: int, mode: str) -> None:
        super().__init__()
        if mode not in ("up", "down"):
            raise ValueError(f"Resample mode must be 'up' or 'down', got {mode!r}")
        self.d, self.mode = L.check_spatial_dims(spatial_dims), mode
        f1 = torch.tensor([1.0, 2.0, 1.0]) / 4.0
        if mode == "up":
            f1 = f1 * 2.0
        k = f1
        for _ in range(self.d - 1):
            k = k[..., None] * f1
        self.register_buffer("kernel", k[None, None], persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(N, C, *S)`` -> ``(N, C, *(2S))`` or ``(N, C, *(S/2))``, any value range
        (every side S even for "down")."""
        n, c = x.shape[:2]
        conv = F.conv2d if self.d == 2 else F.conv3d
        kernel = self.kernel.to(x.dtype).expand(c, 1, *self.kernel.shape[2:])
        if self.mode == "down":
            return conv(x, kernel, stride=2, padding=1, groups=c)
        # zero insertion, then the filter: a transposed convolution with stride 2
        conv_t = F.conv_transpose2d if self.d == 2 else F.conv_transpose3d
        return conv_t(x, kernel, stride=2, padding=1, output_padding=1, groups=c)


class ResidualBlock(nn.Module):
    """``x + W3 act(W2 act(W1 x))``: 1x1 expand, grouped 3x3, 1x1 project (zero-initialised).

    ``(N, C, *S)`` -> same shape.

    Args:
        d: spatial dimensions, 2 or 3.
        channels: C, the block's input and output channels.
        expansion: width factor of the 1x1 expansion (inner width ``channels * expansion``).
        group_width: channels per group of the grouped 3x3 convolution (the group count is
            the largest divisor of the inner width not above ``inner // group_width``).
        variance_scale: the fix-up factor ``L ** (-1/4)`` for the network's ``L`` residual
            blocks, scaling the first two layers' initial weights.
    """

    def __init__(
        self, d: int, channels: int, expansion: int, group_width: int, variance_scale: float
    ) -> None:
        super().__init__()
        inner = channels * expansion
        groups = max(1, inner // group_width)
        while inner % groups:
            groups -= 1
        self.expand = _init(L.conv(d, channels, inner, 1), variance_scale)
        self.spatial = _init(L.conv(d, inner, inner, 3, 1, 1, groups=groups), variance_scale)
        self.project = _init(L.conv(d, inner, channels, 1), 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, *S)`` -> same shape: ``x`` plus the residual branch."""
        h = F.leaky_relu(self.expand(x), _SLOPE)
        h = F.leaky_relu(self.spatial(h), _SLOPE)
        return x + self.project(h)


def _widths(base: int, max_channels: int, k: int) -> list[int]:
    """Stage widths at 4, 8, ..., 2**k (coarse to fine)."""
    return [min(base * 2 ** (k - 2 - i), max_channels) for i in range(k - 1)]


def _fixup_scale(n_blocks: int) -> float:
    return float(max(n_blocks, 1)) ** (-1.0 / (2 * 3 - 2))


def _check_block_args(blocks_per_stage: int, expansion: int, group_width: int) -> None:
    for name, v in (
        ("blocks_per_stage", blocks_per_stage),
        ("expansion", expansion),
        ("group_width", group_width),
    ):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ConfigError(f"{name} must be an integer >= 1, got {v!r}")


@MODELS.register("modern_generator")
class ModernGenerator(nn.Module):
    """R3GAN-style generator, 2D or 3D.

    Args:
        latent_dim: width of z ~ N(0, I) (R3GAN uses 64).
        out_channels: image channels.
        image_size: side S of the output, a power of two in [16, 256].
        base_channels: width at full resolution; doubles per coarser stage up to
            ``max_channels``.
        max_channels: widest stage.
        blocks_per_stage: residual blocks at each resolution (R3GAN: 2).
        expansion: width factor inside a block's 1x1 expansion (R3GAN: 2).
        group_width: channels per group of the grouped 3x3 convolution.
        spatial_dims: 2 (images) or 3 (volumes).
        num_classes: > 0 for a class-conditional generator (label embedding joined to z).
    """

    def __init__(
        self,
        latent_dim: int = 64,
        out_channels: int = 1,
        image_size: int = 64,
        base_channels: int = 32,
        max_channels: int = 256,
        blocks_per_stage: int = 2,
        expansion: int = 2,
        group_width: int = 16,
        spatial_dims: int = 2,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        _check_block_args(blocks_per_stage, expansion, group_width)
        d = L.check_spatial_dims(spatial_dims)
        k = L.log2_size(image_size)
        self.latent_dim, self.num_classes, self.spatial_dims = latent_dim, num_classes, d
        ch = _widths(base_channels, max_channels, k)
        scale = _fixup_scale(blocks_per_stage * len(ch))
        self.inputs = L.NoiseWithLabels(latent_dim, num_classes, "ModernGenerator")
        # generative basis: a learned 4^d pattern per channel, scaled by a linear map of z
        self.basis = nn.Parameter(torch.randn(ch[0], *([4] * d)))
        self.modulation = nn.Linear(self.inputs.out_features, ch[0])
        nn.init.normal_(self.modulation.weight, 0.0, 1.0 / math.sqrt(self.inputs.out_features))
        nn.init.zeros_(self.modulation.bias)
        stages: list[nn.Module] = []
        for i, c in enumerate(ch):
            layers: list[nn.Module] = []
            if i > 0:  # transition: 1x1 to the new width, then anti-aliased up-sampling
                layers += [_init(L.conv(d, ch[i - 1], c, 1), 1.0), Resample(d, "up")]
            layers += [
                ResidualBlock(d, c, expansion, group_width, scale) for _ in range(blocks_per_stage)
            ]
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        self.to_image = _init(L.conv(d, ch[-1], out_channels, 1), 1.0 / _GAIN)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """``z`` ``(N, latent_dim)`` [+ labels ``y`` ``(N,)`` int64, when conditional] ->
        images ``(N, C, S, S[, S])`` in [-1, 1]."""
        w = self.modulation(self.inputs(z, y))  # (N, C0)
        h = self.basis[None] * w.reshape(*w.shape, *([1] * self.spatial_dims))
        return torch.tanh(self.to_image(self.stages(h)))


@MODELS.register("modern_discriminator")
class ModernDiscriminator(nn.Module):
    """R3GAN-style discriminator, 2D or 3D: the mirror of :class:`ModernGenerator`.

    Args:
        in_channels: image channels.
        image_size: side S of the input, a power of two in [16, 256].
        base_channels, max_channels, blocks_per_stage, expansion, group_width: as for the
            generator (the widths mirror it).
        spatial_dims: 2 or 3.
        num_classes: > 0 for a projection discriminator (Miyato & Koyama 2018).
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 64,
        base_channels: int = 32,
        max_channels: int = 256,
        blocks_per_stage: int = 2,
        expansion: int = 2,
        group_width: int = 16,
        spatial_dims: int = 2,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        _check_block_args(blocks_per_stage, expansion, group_width)
        d = L.check_spatial_dims(spatial_dims)
        k = L.log2_size(image_size)
        self.num_classes, self.spatial_dims = num_classes, d
        ch = _widths(base_channels, max_channels, k)[::-1]  # fine to coarse
        scale = _fixup_scale(blocks_per_stage * len(ch))
        self.from_image = _init(L.conv(d, in_channels, ch[0], 1), 1.0)
        stages: list[nn.Module] = []
        for i, c in enumerate(ch):
            layers: list[nn.Module] = [
                ResidualBlock(d, c, expansion, group_width, scale) for _ in range(blocks_per_stage)
            ]
            if i + 1 < len(ch):  # transition: anti-aliased down-sampling, then 1x1
                layers += [Resample(d, "down"), _init(L.conv(d, c, ch[i + 1], 1), 1.0)]
            stages.append(nn.Sequential(*layers))
        self.stages = nn.Sequential(*stages)
        # discriminative basis: a depthwise 4^d "valid" convolution to one value per channel
        self.basis = _init(L.conv(d, ch[-1], ch[-1], 4, groups=ch[-1], bias=False), 1.0 / _GAIN)
        self.head = L.ProjectionHead(ch[-1], num_classes, spectral=False)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Images ``x`` ``(N, C, S, S[, S])`` in [-1, 1] [+ int64 labels ``y`` ``(N,)``, when
        conditional] -> logits ``(N,)``."""
        L.check_labels(y, self.num_classes, "ModernDiscriminator")
        h = self.basis(self.stages(self.from_image(x))).flatten(1)
        return self.head(h, y)
