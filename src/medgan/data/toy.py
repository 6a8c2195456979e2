"""Low-dimensional toy distributions for checking GAN stability (mode coverage)."""

from __future__ import annotations

import math

import torch
from torch.utils.data import Dataset

from medgan.registry import DATASETS


class GaussianMixture(Dataset):
    """Points ``(2,)`` float32 from an equal mixture of isotropic Gaussians at ``modes()``.

    Args:
        means: the mode centres ``(K, 2)``.
        n: number of points, drawn once.
        std: standard deviation of every Gaussian, per coordinate.
        seed: seeds the draws (the points are fixed for a seed).
    """

    def __init__(self, means: torch.Tensor, n: int, std: float, seed: int) -> None:
        self.std = std
        self._means = means.float()
        g = torch.Generator().manual_seed(seed)
        k = torch.randint(0, len(means), (n,), generator=g)
        self.points = self._means[k] + std * torch.randn(n, 2, generator=g)

    def modes(self) -> torch.Tensor:
        """Mode centres ``(K, 2)``."""
        return self._means

    def __len__(self) -> int:
        return len(self.points)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.points[i]

    def mode_coverage(self, samples: torch.Tensor, sigmas: float = 3.0) -> tuple[int, float]:
        """(number of modes hit by >= 1% of samples within ``sigmas`` std, fraction of
        samples within ``sigmas`` std of their nearest mode: "high quality"), for
        generated points ``samples`` ``(N, 2)``."""
        dist = torch.cdist(samples.float(), self.modes())
        nearest_d, nearest = dist.min(dim=1)
        good = nearest_d <= sigmas * self.std
        counts = torch.bincount(nearest[good], minlength=len(self._means))
        covered = int((counts >= 0.01 * len(samples)).sum())
        return covered, float(good.float().mean())


@DATASETS.register("eight_gaussians")
class EightGaussians(GaussianMixture):
    """Mixture of 8 isotropic Gaussians on a ring (Metz et al. 2017, "Unrolled GANs").

    Items are points ``(2,)`` float32. Means at ``radius * (cos 2πk/8, sin 2πk/8)``.

    Args:
        n: number of points.
        radius: radius of the ring.
        std: standard deviation of every Gaussian (0.02, as in Metz et al.).
        seed: seeds the draws.
    """

    def __init__(self, n: int = 8192, radius: float = 2.0, std: float = 0.02, seed: int = 0):
        self.radius = radius
        a = torch.arange(8, dtype=torch.float32) * (2 * math.pi / 8)
        super().__init__(radius * torch.stack([a.cos(), a.sin()], dim=1), n, std, seed)


@DATASETS.register("twenty_five_gaussians")
class TwentyFiveGaussians(GaussianMixture):
    """Mixture of 25 isotropic Gaussians on a 5 x 5 grid with ``spacing`` between
    neighbours, centred at 0 (the grid of Srivastava et al. 2017, VEEGAN; Lin et al. 2018,
    PacGAN). Items are points ``(2,)`` float32.

    Args:
        n: number of points.
        spacing: distance between neighbouring modes.
        std: standard deviation of every Gaussian.
        seed: seeds the draws.
    """

    def __init__(self, n: int = 8192, spacing: float = 2.0, std: float = 0.05, seed: int = 0):
        axis = (torch.arange(5, dtype=torch.float32) - 2) * spacing
        grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1).reshape(25, 2)
        super().__init__(grid, n, std, seed)
