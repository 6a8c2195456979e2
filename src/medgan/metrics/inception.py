"""The FID variant of Inception-v3 (the TensorFlow 2015-12-05 graph used by the original FID
code), built from torchvision's Inception blocks with the three differences the FID weights
need (facts documented by pytorch-fid):

- in Mixed_5b-d (A blocks), Mixed_6b-e (C blocks) and Mixed_7b (E block) the pooling branch
  averages without counting the zero padding (``count_include_pad=False``, as TensorFlow);
- in Mixed_7c the pooling branch is a 3x3 *max* pool (stride 1, padding 1);
- 1008 output classes.

Attribute names equal torchvision's, so the state-dict file pytorch-fid uses
(``pt_inception-2015-12-05-6726825d.pth``) loads as is. Input: ``(N, 3, H, W)`` in [-1, 1],
resized to 299x299 as pytorch-fid does (bilinear on the [0, 1] image, align_corners=False).
Outputs: pool3 features ``(N, 2048)`` and logits ``(N, 1008)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.inception import (
    BasicConv2d,
    InceptionA,
    InceptionB,
    InceptionC,
    InceptionD,
    InceptionE,
)


def _avg_pool_tf(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class _BlockA(InceptionA):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg_pool_tf(x))
        return torch.cat([b1, b5, b3, bp], 1)


class _BlockC(InceptionC):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for layer in (
            self.branch7x7dbl_2,
            self.branch7x7dbl_3,
            self.branch7x7dbl_4,
            self.branch7x7dbl_5,
        ):
            bd = layer(bd)
        bp = self.branch_pool(_avg_pool_tf(x))
        return torch.cat([b1, b7, bd, bp], 1)


class _BlockE(InceptionE):
    def __init__(self, in_channels: int, max_pool: bool) -> None:
        super().__init__(in_channels)
        self.max_pool = max_pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        pooled = F.max_pool2d(x, 3, 1, 1) if self.max_pool else _avg_pool_tf(x)
        return torch.cat([b1, b3, bd, self.branch_pool(pooled)], 1)


@torch.no_grad()
def fold_batchnorm(net: nn.Module) -> nn.Module:
    """Fold every BasicConv2d's BatchNorm (inference statistics) into its convolution:
    w' = w * g / sqrt(v + eps), b' = beta - m * g / sqrt(v + eps). Same outputs (to float
    rounding), one pass over the activations fewer per layer. Returns ``net`` (in place)."""
    for m in net.modules():
        if isinstance(m, BasicConv2d) and isinstance(m.bn, nn.BatchNorm2d):
            bn, conv = m.bn, m.conv
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            fused = nn.Conv2d(
                conv.in_channels,
                conv.out_channels,
                conv.kernel_size,
                conv.stride,
                conv.padding,
                bias=True,
            )
            fused.weight.copy_(conv.weight * scale[:, None, None, None])
            fused.bias.copy_(bn.bias - bn.running_mean * scale)
            m.conv, m.bn = fused, nn.Identity()
    return net


class FIDInceptionV3(nn.Module):
    """The network; see the module docstring. ``forward`` returns (pool3 features, logits)."""

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = _BlockA(192, pool_features=32)
        self.Mixed_5c = _BlockA(256, pool_features=64)
        self.Mixed_5d = _BlockA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = _BlockC(768, channels_7x7=128)
        self.Mixed_6c = _BlockC(768, channels_7x7=160)
        self.Mixed_6d = _BlockC(768, channels_7x7=160)
        self.Mixed_6e = _BlockC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = _BlockE(1280, max_pool=False)
        self.Mixed_7c = _BlockE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)

    def forward(self, x: torch.Tensor, resize: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """``(pool3 features (N, 2048), logits (N, 1008))`` of RGB images ``x`` ``(N, 3, H, W)``
        in [-1, 1]. With ``resize``, images not 299 x 299 are resized to it (bilinear, no
        antialiasing, as pytorch-fid); without, the input is used as given."""
        if resize and x.shape[-2:] != (299, 299):
            x01 = F.interpolate((x + 1) / 2, size=(299, 299), mode="bilinear", align_corners=False)
            x = 2 * x01 - 1
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (
            self.Mixed_5b,
            self.Mixed_5c,
            self.Mixed_5d,
            self.Mixed_6a,
            self.Mixed_6b,
            self.Mixed_6c,
            self.Mixed_6d,
            self.Mixed_6e,
            self.Mixed_7a,
            self.Mixed_7b,
            self.Mixed_7c,
        ):
            x = block(x)
        features = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return features, self.fc(features)


@torch.no_grad()
def random_weights(seed: int = 0) -> dict[str, torch.Tensor]:
    """A randomly initialised FID-Inception state dict for parity tests and benchmarks
    (the published weights cannot be downloaded here). He-normal convolutions and random
    BatchNorm statistics keep activations O(1) through all 94 layers, so features and FIDs
    are numerically meaningful. ``seed`` seeds the private generator of every draw."""
    g = torch.Generator().manual_seed(seed)
    net = FIDInceptionV3()
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
        elif isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return net.state_dict()
