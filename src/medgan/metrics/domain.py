"""A small CNN encoder for medical grey-scale images, trained by
``scripts/train_domain_encoder.py`` on medgan's embedded data (real MNI152 brain MRI slices
in three orientations, procedural CT in HU) to tell source, view and rotation apart; its
128-d pooled features give meaningful FID/KID/PR on CPU without any download. The weights
(float16, 296k parameters, a 589 KiB file) ship in the package.

Input ``(N, 1, H, W)`` in [-1, 1] (resized to 64x64); output ``(N, 128)``.
"""

from __future__ import annotations

from importlib import resources

import torch
import torch.nn.functional as F
from torch import nn

from medgan.metrics.features import FEATURES
from medgan.utils import sha256_of

WEIGHTS = "weights/domain_encoder.pt"


class DomainEncoder(nn.Module):
    """4 stride-2 conv blocks (16-32-64-128 channels, GroupNorm, ReLU), global average pool.

    Args:
        num_classes: outputs of the training head (the shipped weights: 16).
        width: channels of the first block, doubling per block (a multiple of 8, for
            GroupNorm's 8 groups); the features are ``8 * width``-d.
    """

    def __init__(self, num_classes: int = 16, width: int = 16) -> None:
        super().__init__()
        chans = [1, width, width * 2, width * 4, width * 8]
        layers: list[nn.Module] = []
        for a, b in zip(chans[:-1], chans[1:], strict=True):
            layers += [
                nn.Conv2d(a, b, 3, 2, 1),
                nn.GroupNorm(8, b),
                nn.ReLU(inplace=True),
                nn.Conv2d(b, b, 3, 1, 1),
                nn.GroupNorm(8, b),
                nn.ReLU(inplace=True),
            ]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(chans[-1], num_classes)
        self.dim = chans[-1]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features ``(N, 8 * width)`` (``(N, 128)`` by default) of images ``x``
        ``(N, 1, H, W)`` in [-1, 1], resized to 64 x 64 (bilinear, antialiased) unless already
        so."""
        if x.shape[-2:] != (64, 64):
            x = F.interpolate(
                x, size=(64, 64), mode="bilinear", align_corners=False, antialias=True
            )
        return self.body(x).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(N, num_classes)`` of images ``x`` ``(N, 1, H, W)`` in [-1, 1] (the
        training head on top of :meth:`features`)."""
        return self.head(self.features(x))

    def stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The feature maps after each of the 4 blocks, ``(N, width * 2**i, H / 2**(i+1),
        W / 2**(i+1))`` for block i, of images ``x`` ``(N, 1, H, W)`` in [-1, 1] at their own
        resolution (not resized)."""
        out = []
        for i in range(0, len(self.body), 6):
            x = self.body[i : i + 6](x)
            out.append(x)
        return out


def perceptual_distance(encoder: DomainEncoder, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Feature reconstruction distance (Johnson et al. 2016, eq. 2, with L1 as in
    pix2pixHD): sum over the encoder's 4 blocks of mean |phi_l(x) - phi_l(y)|.

    ``x``, ``y``: ``(N, C, H, W)`` in [-1, 1]; channels are scored one by one as grey
    images. Differentiable in ``x`` (``y`` is the reference and gets no gradient).
    ``encoder``: the :class:`DomainEncoder` whose :meth:`~DomainEncoder.stages` are compared
    (e.g. ``DomainEncoderFeatures().net``, frozen).
    """
    if x.dim() != 4 or x.shape != y.shape:
        raise ValueError(
            f"need two 2D batches of one shape, got {tuple(x.shape)}, {tuple(y.shape)}"
        )
    fx = encoder.stages(x.float().reshape(-1, 1, *x.shape[2:]))
    with torch.no_grad():
        fy = encoder.stages(y.float().reshape(-1, 1, *y.shape[2:]))
    return sum((a - b).abs().mean() for a, b in zip(fx, fy, strict=True))  # type: ignore[return-value]


@FEATURES.register("domain")
class DomainEncoderFeatures(nn.Module):
    """The shipped :class:`DomainEncoder` as a feature extractor ``(N, 1, H, W) -> (N, 128)``."""

    name = "medgan-domain-encoder"

    def __init__(self) -> None:
        super().__init__()
        self.net = DomainEncoder()
        ref = resources.files("medgan.metrics").joinpath(WEIGHTS)
        with resources.as_file(ref) as path:
            state = torch.load(path, map_location="cpu", weights_only=True)
            self.weights_sha256 = sha256_of(path)
        self.net.load_state_dict({k: v.float() for k, v in state.items()})
        self.net.eval().requires_grad_(False)
        self.published = True
        self.dim = self.net.dim

    def train(self, mode: bool = True) -> DomainEncoderFeatures:
        """Stay in eval mode whatever ``mode`` is: the extractor is frozen."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features ``(N, 128)`` float32 of images ``x`` ``(N, C, H, W)`` in [-1, 1]; several
        channels are averaged to one grey image first. No gradient."""
        if x.shape[1] != 1:
            x = x.mean(dim=1, keepdim=True)
        return self.net.features(x.float())
