"""U-Net generator (Ronneberger et al. 2015; the pix2pix generator of Isola et al. 2017),
2D or 3D: image ``(N, in_channels, *spatial)`` -> image ``(N, out_channels, *spatial)``.

``depth`` stride-2 downsamplings with skip connections; every spatial side must be
divisible by ``2**depth``. ``out_activation``: "tanh" (images in [-1, 1]) or "none"
(logits, e.g. segmentation). ``residual=True`` predicts a correction
to the input: ``y = clamp(x[:, :out_channels] + f(x), -1, 1)``, the usual choice for
denoising, super-resolution and refining a coarse inpainting fill, where the output is close
to the input (input channels beyond ``out_channels``, e.g. a mask, are context only).
"""

from __future__ import annotations

import torch
from torch import nn

from medgan.errors import ConfigError
from medgan.models import layers as L
from medgan.registry import MODELS


def _block(d: int, c_in: int, c_out: int, norm: str) -> nn.Sequential:
    return nn.Sequential(
        L.conv(d, c_in, c_out, 3, 1, 1),
        L.norm(norm, d, c_out),
        nn.LeakyReLU(0.2, True),
        L.conv(d, c_out, c_out, 3, 1, 1),
        L.norm(norm, d, c_out),
        nn.LeakyReLU(0.2, True),
    )


def _up(d: int, c_in: int, c_out: int, how: str) -> nn.Module:
    """x2 up-sampling from ``c_in`` to ``c_out`` channels ("transpose" or "resize")."""
    if how == "transpose":
        return L.conv_transpose(d, c_in, c_out, 4, 2, 1)
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"), L.conv(d, c_in, c_out, 3, 1, 1)
    )


@MODELS.register("unet_generator")
class UNetGenerator(nn.Module):
    """U-Net image-to-image generator: ``(N, in_channels, *spatial)`` in [-1, 1] ->
    ``(N, out_channels, *spatial)`` (see the module docstring).

    Args:
        in_channels: input channels (the image, plus any context such as a mask).
        out_channels: output channels.
        base_channels: width of the first stage; doubles per stage up to ``max_channels``.
        depth: stride-2 downsamplings; every spatial side must be divisible by ``2**depth``.
        spatial_dims: 2 or 3.
        norm: "instance", "batch" or "none".
        out_activation: "tanh" (images in [-1, 1]) or "none" (logits).
        max_channels: the widest stage's channels.
        residual: predict a correction to the input's first ``out_channels`` channels,
            clamped to [-1, 1].
        upsample: "transpose" (4x4 stride-2 transposed convolution, pix2pix) or "resize"
            (nearest-neighbour x2 then a 3x3 convolution: a resize-convolution, whose
            kernels overlap evenly, so it makes no checkerboard artefacts; Odena, Dumoulin
            & Olah 2016).
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        base_channels: int = 32,
        depth: int = 3,
        spatial_dims: int = 2,
        norm: str = "instance",
        out_activation: str = "tanh",
        max_channels: int = 256,
        residual: bool = False,
        upsample: str = "transpose",
    ) -> None:
        super().__init__()
        d = L.check_spatial_dims(spatial_dims)
        if out_activation not in ("tanh", "none"):
            raise ConfigError(f"out_activation must be 'tanh' or 'none', got {out_activation!r}")
        if upsample not in ("transpose", "resize"):
            raise ConfigError(f"upsample must be 'transpose' or 'resize', got {upsample!r}")
        if residual and in_channels < out_channels:
            raise ConfigError("residual=True needs in_channels >= out_channels")
        self.depth, self.spatial_dims, self.residual = depth, d, residual
        ch = [min(base_channels * 2**i, max_channels) for i in range(depth + 1)]
        self.enc = nn.ModuleList(
            [_block(d, in_channels if i == 0 else ch[i - 1], ch[i], norm) for i in range(depth)]
        )
        self.down = nn.ModuleList([L.conv(d, ch[i], ch[i], 4, 2, 1) for i in range(depth)])
        self.bottleneck = _block(d, ch[depth - 1], ch[depth], norm)
        self.up = nn.ModuleList(
            [_up(d, ch[i + 1], ch[i], upsample) for i in reversed(range(depth))]
        )
        self.dec = nn.ModuleList(
            [_block(d, 2 * ch[i], ch[i], norm) for i in reversed(range(depth))]
        )
        self.out = L.conv(d, ch[0], out_channels, 1)
        self.act = nn.Tanh() if out_activation == "tanh" else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, out_channels, *spatial)`` from ``x`` ``(N, in_channels, *spatial)`` in
        [-1, 1]: in [-1, 1] with "tanh" or ``residual`` (clamped), unbounded logits with
        "none". ValueError when a side is not divisible by ``2**depth``."""
        k = 2**self.depth
        if any(s % k for s in x.shape[2:]):
            raise ValueError(
                f"UNet with depth {self.depth} needs sides divisible by {k}, "
                f"got {tuple(x.shape[2:])}"
            )
        inp = x
        skips = []
        for enc, down in zip(self.enc, self.down, strict=True):
            x = enc(x)
            skips.append(x)
            x = down(x)
        x = self.bottleneck(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips), strict=True):
            x = dec(torch.cat([up(x), skip], dim=1))
        if self.residual:
            y = self.out(x)
            return (inp[:, : y.shape[1]] + y).clamp(-1.0, 1.0)
        return self.act(self.out(x))
