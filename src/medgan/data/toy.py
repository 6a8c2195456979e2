"""Low-dimensional toy distributions for checking GAN stability (mode coverage)."""

from __future__ import annotations

import math

import torch
from torch.utils.data import Dataset

from medgan.registry import DATASETS


@DATASETS.register("eight_gaussians")
class EightGaussians(Dataset):
    """Mixture of 8 isotropic Gaussians on a ring (Metz et al. 2017, "Unrolled GANs").

    Items are points ``(2,)`` float32. Means at ``radius * (cos 2πk/8, sin 2πk/8)``.
    """

    def __init__(self, n: int = 8192, radius: float = 2.0, std: float = 0.02, seed: int = 0):
        self.radius, self.std = radius, std
        g = torch.Generator().manual_seed(seed)
        k = torch.randint(0, 8, (n,), generator=g)
        self.points = self.modes()[k] + std * torch.randn(n, 2, generator=g)

    def modes(self) -> torch.Tensor:
        a = torch.arange(8, dtype=torch.float32) * (2 * math.pi / 8)
        return self.radius * torch.stack([a.cos(), a.sin()], dim=1)

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.points[i]

    def mode_coverage(self, samples: torch.Tensor, sigmas: float = 3.0) -> tuple[int, float]:
        """(number of modes hit by >= 1% of samples within ``sigmas`` std, fraction of
        samples within ``sigmas`` std of their nearest mode: "high quality")."""
        dist = torch.cdist(samples.float(), self.modes())
        nearest_d, nearest = dist.min(dim=1)
        good = nearest_d <= sigmas * self.std
        counts = torch.bincount(nearest[good], minlength=8)
        covered = int((counts >= 0.01 * len(samples)).sum())
        return covered, float(good.float().mean())
