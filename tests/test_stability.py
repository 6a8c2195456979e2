"""Mode coverage on the 8-Gaussians ring (Metz et al. 2017) with the default settings."""

from __future__ import annotations

import pytest
import torch

import medgan
from medgan.data import EightGaussians


@pytest.mark.parametrize("loss", ["non_saturating", "hinge"])
def test_eight_gaussians_default_settings_cover_modes(loss):
    medgan.seed_everything(0)
    ring = EightGaussians(n=8192, std=0.02)
    g = medgan.models.build("mlp_generator")
    d = medgan.models.build("mlp_discriminator")
    # Library defaults throughout; only the length of training and the batch are chosen.
    config = medgan.TrainConfig(steps=3000, batch_size=256, device="cpu")
    trainer = medgan.Trainer(g, d, ring, loss=medgan.losses.build_loss(loss), config=config).fit()
    with torch.no_grad():
        samples = trainer.ema(trainer.sample_noise(4000))
    covered, high_quality = ring.mode_coverage(samples, sigmas=3.0)
    assert covered >= 7, (covered, high_quality)
    assert high_quality > 0.5, (covered, high_quality)
