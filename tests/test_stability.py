"""Mode coverage with the library's defaults (``medgan.recipes.unconditional`` on point
data: MLPs, relativistic pairing loss with R1 + R2), checked on every one of 5 seeds so the
claim cannot rest on one lucky trajectory of a chaotic game (or one CPU's rounding).

Both are marked slow (``pytest -m slow tests/test_stability.py``, which CI runs): about
20 CPU-s per 8-Gaussians run (a minute for the five seeds on this 2-core machine); the
25-Gaussians grid needs about 100 CPU-s per seed (about 4.5 minutes for the five). Both use
the recipe's point defaults unchanged (lr 2e-3: with 1e-3 one seed of five covered only 17-21
of 25 modes after 5,000-8,000 steps); only the number of steps is set. The grid is not yet
covered on every seed on every floating-point path (see its test).
"""

from __future__ import annotations

import pytest
import torch

import medgan
from medgan.data import EightGaussians, TwentyFiveGaussians

SEEDS = range(5)


def _train_and_sample(data, seed: int, steps: int, **overrides) -> torch.Tensor:
    trainer = medgan.recipes.unconditional(
        data, seed=seed, steps=steps, device="cpu", **overrides
    ).fit()
    with torch.no_grad():
        return trainer.ema(trainer.sample_noise(4000, torch.Generator().manual_seed(seed)))


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_eight_gaussians_every_seed_covers_the_ring(seed):
    ring = EightGaussians(n=8192, std=0.02)
    covered, high_quality = ring.mode_coverage(_train_and_sample(ring, seed, 1500), sigmas=3.0)
    assert covered >= 7, (seed, covered, high_quality)
    assert high_quality > 0.5, (seed, covered, high_quality)


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_twenty_five_gaussians_every_seed_covers_the_grid(seed):
    """Every seed >= 22 of 25 modes with most samples within 3 sigma (the issue's target).
    Measured with one CPU thread: every seed covers 25 after 7,000 steps (>= 22 from 5,000
    steps on); with the recipe's earlier width of 128, seed 3 stayed at 19."""
    grid = TwentyFiveGaussians(n=8192, std=0.05)
    covered, high_quality = grid.mode_coverage(_train_and_sample(grid, seed, 7000), sigmas=3.0)
    assert covered >= 22, (seed, covered, high_quality)
    assert high_quality > 0.5, (seed, covered, high_quality)
