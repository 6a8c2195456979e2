"""Multilayer perceptrons for low-dimensional point data (the 8-Gaussians ring and friends).

Points are tensors ``(N, data_dim)``; these models have no spatial axes, so no
``spatial_dims`` argument.
"""

from __future__ import annotations

import torch
from torch import nn

from medgan.models.layers import NoiseWithLabels, ProjectionHead, check_labels
from medgan.registry import MODELS


def _mlp(in_features: int, hidden: int, depth: int, act: nn.Module) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [nn.Linear(in_features if i == 0 else hidden, hidden), act]
    return nn.Sequential(*layers)


@MODELS.register("mlp_generator")
class MLPGenerator(nn.Module):
    """z ``(N, latent_dim)`` ~ N(0, I) -> points ``(N, data_dim)`` (unbounded, no tanh).

    Args:
        latent_dim: width of the noise z.
        data_dim: dimension of the points.
        hidden: width of every hidden layer.
        depth: hidden layers (linear + ReLU), >= 1.
        num_classes: > 0 for a class-conditional generator: ``forward(z, y)`` with integer
            labels y ``(N,)`` in [0, num_classes), embedded and joined to z.
    """

    def __init__(
        self,
        latent_dim: int = 2,
        data_dim: int = 2,
        hidden: int = 256,
        depth: int = 3,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        self.latent_dim, self.num_classes = latent_dim, num_classes
        self.inputs = NoiseWithLabels(latent_dim, num_classes, "MLPGenerator")
        self.body = _mlp(self.inputs.out_features, hidden, depth, nn.ReLU())
        self.out = nn.Linear(hidden, data_dim)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Points ``(N, data_dim)`` (unbounded) from noise ``z`` ``(N, latent_dim)`` and,
        when conditional, int64 labels ``y`` ``(N,)`` in ``[0, num_classes)``."""
        return self.out(self.body(self.inputs(z, y)))


@MODELS.register("mlp_discriminator")
class MLPDiscriminator(nn.Module):
    """points ``(N, data_dim)`` -> logits ``(N,)``; projection head when conditional.

    Args:
        data_dim: dimension of the points.
        hidden: width of every hidden layer.
        depth: hidden layers (linear + LeakyReLU(0.2)), >= 1.
        num_classes: > 0 for a projection discriminator (Miyato & Koyama 2018):
            ``forward(x, y)`` with integer labels y ``(N,)`` in [0, num_classes).
    """

    def __init__(
        self, data_dim: int = 2, hidden: int = 256, depth: int = 3, num_classes: int = 0
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.body = _mlp(data_dim, hidden, depth, nn.LeakyReLU(0.2))
        self.head = ProjectionHead(hidden, num_classes, spectral=False)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``(N,)`` of points ``x`` ``(N, data_dim)``; int64 labels ``y`` ``(N,)`` are
        required when conditional, refused (ValueError) otherwise."""
        check_labels(y, self.num_classes, "MLPDiscriminator")
        return self.head(self.body(x), y)
