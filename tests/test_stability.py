"""Mode coverage with the library's defaults (``medgan.recipes.unconditional`` on point
data: MLPs, relativistic pairing loss with R1 + R2), checked on every one of 5 seeds so the
claim cannot rest on one lucky trajectory of a chaotic game (or one CPU's rounding).

Both are marked slow (``pytest -m slow tests/test_stability.py``, which CI runs). Both use
the recipe's point defaults unchanged (MLPs of width 256, lr 2e-3: with width 128 seed 3 of
the grid stayed at 19 of 25 modes on one CPU thread; with lr 1e-3 one seed of five covered
only 17-21 after 5,000-8,000 steps); only the number of steps is set. Measured in December
2026 on this 2-core machine, beside other jobs, on both floating-point paths (one and two
threads): every 8-Gaussians seed covers >= 7 of 8 (22-50 s a run), every 25-Gaussians
seed >= 22 of 25 (25 of 25 on one thread; 100-190 s a run, about 15 minutes for the file).
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
