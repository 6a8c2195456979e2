"""Procedural axial CT phantoms in Hounsfield units: unlimited, reproducible variety.

Each phantom is a thorax-like cross-section drawn from ellipses with textbook HU values
(air -1000, lung -850, fat -100, soft tissue 40, blood +40/contrast 200, cortical bone
1000, cancellous bone 300), random anatomy variation, lung nodules and Gaussian noise.
Item ``i`` depends only on ``(seed, i)``, so a dataset is reproducible across runs,
workers and processes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from medgan.data.intensity import IntensityWindow
from medgan.registry import DATASETS

HU_AIR, HU_LUNG, HU_FAT, HU_SOFT, HU_CONTRAST = -1000.0, -850.0, -100.0, 40.0, 200.0
HU_CORTICAL, HU_CANCELLOUS = 1000.0, 300.0


def _ellipse(x, y, cx, cy, a, b, theta=0.0):
    c, s = np.cos(theta), np.sin(theta)
    u, v = (x - cx) * c + (y - cy) * s, -(x - cx) * s + (y - cy) * c
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0


def ct_phantom_hu(size: int, rng: np.random.Generator, noise_hu: float = 15.0) -> np.ndarray:
    """One ``(size, size)`` float32 axial phantom in HU; rows run anterior -> posterior.

    Args:
        size: side in pixels.
        rng: draws the anatomy variation and the noise.
        noise_hu: standard deviation of the additive Gaussian noise, in HU.
    """
    t = np.linspace(-1, 1, size, dtype=np.float32)
    y, x = np.meshgrid(t, t, indexing="ij")
    theta = rng.normal(0, 0.05)
    img = np.full((size, size), HU_AIR, dtype=np.float32)
    a, b = rng.uniform(0.78, 0.92), rng.uniform(0.55, 0.7)
    cy = rng.uniform(-0.05, 0.05)
    img[_ellipse(x, y, 0, cy, a, b, theta)] = HU_FAT
    fat = rng.uniform(0.05, 0.12)
    img[_ellipse(x, y, 0, cy, a - fat, b - fat, theta)] = HU_SOFT
    for side in (-1, 1):  # lungs
        lx = side * a * rng.uniform(0.38, 0.48)
        la, lb = a * rng.uniform(0.28, 0.36), b * rng.uniform(0.55, 0.7)
        lung = _ellipse(x, y, lx, cy - 0.05, la, lb, theta + side * rng.normal(0.15, 0.05))
        img[lung] = HU_LUNG + rng.normal(0, 20, size=lung.sum())
        for _ in range(rng.poisson(0.8)):  # nodules
            r = rng.uniform(0.02, 0.06)
            nx, ny = lx + rng.uniform(-0.5, 0.5) * la, cy + rng.uniform(-0.5, 0.5) * lb
            img[_ellipse(x, y, nx, ny, r, r) & lung] = HU_SOFT + rng.normal(0, 10)
    hx, hy = rng.uniform(-0.12, 0.0), cy - rng.uniform(0.05, 0.15)  # heart
    img[_ellipse(x, y, hx, hy, rng.uniform(0.2, 0.28), rng.uniform(0.17, 0.24), 0.5)] = 50.0
    sy = cy + b * rng.uniform(0.62, 0.75)  # spine: cortical ring around cancellous core
    sr = rng.uniform(0.09, 0.12)
    img[_ellipse(x, y, 0, sy, sr, sr * 0.9)] = HU_CORTICAL
    img[_ellipse(x, y, 0, sy, sr * 0.7, sr * 0.6)] = HU_CANCELLOUS
    ar = rng.uniform(0.04, 0.06)  # aorta with contrast
    img[_ellipse(x, y, rng.uniform(0.05, 0.12), sy - sr - ar - 0.02, ar, ar)] = HU_CONTRAST
    img += rng.normal(0, noise_hu, size=img.shape).astype(np.float32)
    return img.astype(np.float32)


@DATASETS.register("ct_phantoms")
class CTPhantomSlices(Dataset):
    """``n`` procedural axial CT slices, items ``(1, size, size)`` float32 in [-1, 1].

    HU map to [-1, 1] through the CT ``window`` (a name, or ``(level, width)`` in HU;
    default "full": -1000..1000 HU), so ``IntensityWindow.ct(window).from_unit`` turns
    samples back into HU.

    Args:
        n: number of items.
        size: side of the slices, in pixels.
        seed: with the index, seeds each item (item i is a function of ``(seed, i)``).
        window: the CT window mapped to [-1, 1] (values outside clipped).
        noise_hu: standard deviation of the Gaussian noise, in HU.
    """

    def __init__(
        self,
        n: int = 2048,
        size: int = 64,
        seed: int = 0,
        window: str | tuple[float, float] = "full",
        noise_hu: float = 15.0,
    ) -> None:
        self.n, self.size, self.seed, self.window, self.noise_hu = n, size, seed, window, noise_hu

    def __len__(self) -> int:
        return self.n

    def hu(self, i: int) -> np.ndarray:
        """Item ``i`` before windowing: a float32 ``(size, size)`` slice in HU (noise
        included), a function of ``(seed, i)`` only; IndexError outside ``[0, n)``."""
        if not 0 <= i < self.n:
            raise IndexError(i)
        return ct_phantom_hu(self.size, np.random.default_rng([self.seed, i]), self.noise_hu)

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(IntensityWindow.ct(self.window).to_unit(self.hu(i))).unsqueeze(0)
