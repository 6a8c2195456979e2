"""Measured-best defaults: one call gives a ready :class:`~medgan.Trainer`.

>>> trainer = medgan.recipes.unconditional(data, out_dir="runs/mri")  # doctest: +SKIP
>>> trainer.fit(progress=True)                                      # doctest: +SKIP

What :func:`unconditional` chooses, and why (the numbers are in ``docs/generation.md``,
measured by ``benchmarks/time_to_quality.py`` at equal process-CPU time):

* **Networks**: ``modern_generator`` / ``modern_discriminator`` (R3GAN-style residual
  blocks, no normalisation, fix-up initialisation, anti-aliased resampling). Widths are
  small at full resolution and grow towards 4^d, because on a CPU the cost of a step is
  dominated by the full-resolution stages.
* **Loss**: relativistic pairing (RpGAN) with R1 and R2 (Huang et al. 2024), lazily every
  4th D update (Karras et al. 2020b). gamma scales with the image size.
* **Optimiser**: Adam with beta1 = 0 and beta2 = 0.99 as R3GAN, equal learning rates
  (2e-3 in 2D, 1e-3 in 3D).
* **EMA** of G with a short half-life (the runs are short), ramped up from the start.
* **Augmentation**: adaptive (ADA, Karras et al. 2020a) on the discriminator when the data
  set has fewer than 30,000 images; p starts at 0 and moves towards r_t = 0.6.
* **Throughput**: channels_last; the NaN check reads its device flag every 10 steps.

Every choice is an override: ``unconditional(data, 64, lr=1e-4, loss={"r1_weight": 1.0},
generator={"base_channels": 32})``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from medgan import callbacks as cb
from medgan.augment import AugmentedDiscriminator, DiffAugment
from medgan.config import TrainConfig
from medgan.errors import ConfigError
from medgan.losses import build_loss
from medgan.models import build
from medgan.models.layers import log2_size
from medgan.trainer import Trainer

log = logging.getLogger(__name__)

#: below this many training images the discriminator gets adaptive augmentation
ADA_MAX_IMAGES = 30_000


def network_kwargs(image_size: int, spatial_dims: int = 2) -> dict[str, Any]:
    """The recipe's width/depth for an image side (16-256) and 2D/3D: keyword arguments
    of ``modern_generator`` / ``modern_discriminator`` (without the channel counts).

    Args:
        image_size: side of the square (cubic) images in pixels (voxels), a power of two
            in [16, 256]; anything else raises ConfigError.
        spatial_dims: 2 for images (slices), 3 for volumes.
    """
    log2_size(image_size)
    if spatial_dims == 3:
        # a full-resolution 3D stage dominates the cost (8 x 16 x 32^3 activations per
        # layer): 4 channels without expansion there, 0.8 vs 2.0 CPU-s a step at 32^3
        base, top, expansion = 4, 128, 1
    else:
        base, top, expansion = (16, 256, 2) if image_size <= 32 else (8, 256, 2)
    return {
        "image_size": image_size,
        "spatial_dims": spatial_dims,
        "base_channels": base,
        "max_channels": top,
        "blocks_per_stage": 1,
        "expansion": expansion,
        "group_width": 8,
    }


def unconditional(
    data: Dataset | torch.Tensor,
    image_size: int | None = None,
    *,
    spatial_dims: int | None = None,
    seed: int = 0,
    out_dir: str | Path | None = None,
    steps: int = 100_000,
    max_minutes: float | None = None,
    generator: dict[str, Any] | None = None,
    discriminator: dict[str, Any] | None = None,
    loss: dict[str, Any] | None = None,
    augment: bool | None = None,
    callbacks: Sequence[Any] = (),
    checkpoint_every: int = 500,
    sample_every: int = 500,
    log_every: int = 10,
    keep_last: int = 3,
    **overrides: Any,
) -> Trainer:
    """A noise-to-image trainer with the measured-best defaults.

    Args:
        data: a Dataset (or tensor) of images ``(C, S, S[, S])`` in [-1, 1], or of points
            ``(D,)`` (toy data: then MLP networks are used).
        image_size: side S of the images, a power of two in [16, 256]; read from the data
            when None (and checked against it when given).
        spatial_dims: 2 for slices, 3 for volumes; read from the data when None.
        seed: seeds the weights, the data order, noise and augmentation (the weights in a
            fork of torch's global generator: the caller's random state is left unchanged).
        out_dir: with a folder, the standard callbacks write checkpoints, sample grids
            (with a real-vs-generated grid at the end), a metric log and a loss plot there.
        steps: generator updates; training also stops at ``max_minutes`` when given.
        max_minutes: wall-clock budget (stops cleanly and checkpoints).
        generator, discriminator: keyword overrides for the two networks.
        loss: keyword overrides for the ``relativistic`` loss (``r1_weight``, ...).
        augment: force adaptive augmentation on/off; default on below
            :data:`ADA_MAX_IMAGES` training images (never for points).
        callbacks: extra callbacks (after the recipe's own).
        checkpoint_every, sample_every, log_every, keep_last: settings of the standard
            callbacks (intervals in steps; checkpoints kept).
        **overrides: any :class:`~medgan.TrainConfig` field (``lr_g``, ``batch_size``...).
            ``lr`` sets both learning rates.
    """
    # the weights are drawn (on the CPU) from torch's global CPU generator, seeded here
    # inside a fork: the caller's random states (CPU and CUDA) are left as they were
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        shape = _item_shape(data)
        if len(shape) == 1:
            if augment:
                raise ConfigError("recipes.unconditional: augmentation is for images, not points")
            g, d, loss_obj, train_config = _point_parts(
                data, shape[0], seed, steps, max_minutes, generator, discriminator, loss, overrides
            )
            return _trainer(
                g,
                d,
                data,
                loss_obj,
                train_config,
                False,
                seed,
                out_dir,
                callbacks,
                (checkpoint_every, sample_every, log_every, keep_last),
            )
        channels, spatial = shape[0], shape[1:]
        if spatial_dims is None:
            spatial_dims = len(spatial)
        if image_size is None:
            image_size = spatial[0]
        if len(spatial) != spatial_dims or any(s != image_size for s in spatial):
            raise ConfigError(
                f"recipes.unconditional: the data's items have shape {tuple(shape)}, expected "
                f"(C{', ' + str(image_size)} x {spatial_dims}) for image_size={image_size}, "
                f"spatial_dims={spatial_dims}; crop or resize the data "
                "(e.g. SliceDataset(size=...))"
            )
        net = network_kwargs(image_size, spatial_dims)
        g = build(
            "modern_generator",
            **{**net, "out_channels": channels, "latent_dim": 64, **(generator or {})},
        )
        d = build(
            "modern_discriminator", **{**net, "in_channels": channels, **(discriminator or {})}
        )
        n_images = len(data)
        use_ada = n_images < ADA_MAX_IMAGES if augment is None else augment
        # R1/R2 weight: R3GAN uses gamma 0.05 at 32^2 and 2 at 64^2 (FFHQ); we keep 1 at 64^2
        # and, in 2D, scale it with the number of pixels, as the squared gradient norm grows
        # with it (1 for every 3D size: not measured further).
        gamma = 1.0 * (image_size / 64) ** spatial_dims if spatial_dims == 2 else 1.0
        loss_obj = build_loss(
            "relativistic",
            **{"r1_weight": gamma, "r2_weight": gamma, "reg_every": 4, **(loss or {})},
        )
        config = {
            "steps": steps,
            "batch_size": 16 if spatial_dims == 2 else 8,
            # 2D: 2e-3 (MRI, one thread, seed 0, coverage at 2/5/10 CPU-min: 1e-3 0.14/0.37/0.73,
            # 2e-3 0.18/0.57/0.87, 3e-3 0.12/0.48/0.79); 3D keeps 1e-3 (not measured further)
            "lr_g": 2e-3 if spatial_dims == 2 else 1e-3,
            "lr_d": 2e-3 if spatial_dims == 2 else 1e-3,
            "betas": (0.0, 0.99),
            "ema_halflife_kimg": 2.0,
            "ema_rampup": 0.05,
            "seed": seed,
            "max_minutes": max_minutes,
            "channels_last": True,
            # one host-device sync per 10 steps for the NaN check (none missed: see TrainConfig);
            # 10 divides the checkpoint intervals, so a rollback can act before a save
            "check_finite_every": 10,
        }
        train_config = _fit_batch(_config(config, overrides), n_images)
        return _trainer(
            g,
            d,
            data,
            loss_obj,
            train_config,
            use_ada,
            seed,
            out_dir,
            callbacks,
            (checkpoint_every, sample_every, log_every, keep_last),
        )


def _trainer(g, d, data, loss, config, use_ada, seed, out_dir, callbacks, intervals) -> Trainer:
    """The Trainer with the recipe's own callbacks (ADA first, so ``aug_p`` is logged)."""
    own: list[Any] = []
    if use_ada:
        # each torchrun rank draws its own transforms
        rank = int(os.environ.get("RANK", "0"))
        d = AugmentedDiscriminator(d, DiffAugment(p=0.0, seed=seed * 1000 + rank))
        own.append(cb.AdaptiveAugmentation(target=0.6, interval=4, speed_kimg=20.0))
    if out_dir is not None:
        own += cb.standard_callbacks(out_dir, *intervals)
        own.append(cb.RealVsGenerated(Path(out_dir) / "samples" / "real_vs_generated.png"))
    return Trainer(g, d, data, loss=loss, config=config, callbacks=[*own, *callbacks])


def _fit_batch(config: TrainConfig, n_images: int) -> TrainConfig:
    """Halve the batch until one epoch holds at least one batch (tiny data sets)."""
    import dataclasses

    batch = config.batch_size
    while batch > 1 and batch > n_images:
        batch //= 2
    if batch == config.batch_size:
        return config
    log.warning(
        "recipes: batch_size %d is larger than the %d training images; using %d",
        config.batch_size,
        n_images,
        batch,
    )
    return dataclasses.replace(config, batch_size=batch)


def _config(defaults: dict[str, Any], overrides: dict[str, Any]) -> TrainConfig:
    overrides = dict(overrides)
    if "lr" in overrides:
        lr = overrides.pop("lr")
        overrides |= {"lr_g": lr, "lr_d": lr}
    try:
        return TrainConfig(**{**defaults, **overrides})
    except TypeError as e:
        raise ConfigError(f"recipes.unconditional: unknown override: {e}") from None


def _item_shape(data: Dataset | torch.Tensor) -> tuple[int, ...]:
    """Shape of the first training item (its first element for (image, label) items)."""
    if len(data) == 0:
        raise ConfigError("recipes.unconditional: the training data set is empty")
    item = data[0]
    if isinstance(item, tuple | list):
        item = item[0]
    if isinstance(item, dict):
        item = item.get("image")
    if not isinstance(item, torch.Tensor):
        raise ConfigError(
            f"recipes.unconditional: items must be tensors (or (image, label)), got "
            f"{type(item).__name__}"
        )
    return tuple(item.shape)


def _point_parts(
    data, dim, seed, steps, max_minutes, generator, discriminator, loss, overrides
) -> tuple[Any, Any, Any, TrainConfig]:
    """Low-dimensional point data (the Gaussian-mixture stability checks): MLPs, the same
    relativistic loss with R1 + R2 (the pairing spreads G over the modes), large batches.

    Width 256: with 128 one seed in five (seed 3, one CPU thread) stayed at 19 of the
    25-Gaussians grid's modes after 7,000 steps; with 256 all five cover 25 by 7,000 steps
    and >= 22 by 5,000 (one thread; 152-163 CPU-s a run instead of about 100)."""
    g = build(
        "mlp_generator", **{"latent_dim": 2, "data_dim": dim, "hidden": 256, **(generator or {})}
    )
    d = build("mlp_discriminator", **{"data_dim": dim, "hidden": 256, **(discriminator or {})})
    # gamma 0.01: 0.1 kept the 25-Gaussians grid at 3 of 25 modes after 3,000 steps
    # (R1/R2 flatten D around modes 0.05 apart); 0.01 covers 25 of 25 (tests/test_stability.py)
    loss_obj = build_loss("relativistic", **{"r1_weight": 0.01, "r2_weight": 0.01, **(loss or {})})
    defaults = {
        "steps": steps,
        "batch_size": 256,
        # 2e-3: with 1e-3 one seed in five stayed at 17-21 of the 25-Gaussians grid's modes
        # after 5,000-8,000 steps; with 2e-3 every seed covers >= 22 (tests/test_stability.py)
        "lr_g": 2e-3,
        "lr_d": 2e-3,
        "betas": (0.0, 0.99),
        "ema_halflife_kimg": 10.0,
        "ema_rampup": 0.05,
        "seed": seed,
        "max_minutes": max_minutes,
    }
    return g, d, loss_obj, _fit_batch(_config(defaults, overrides), len(data))
