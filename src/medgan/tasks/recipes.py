"""Ready-made trainers for the image-to-image jobs, with the settings the examples measured.

Each returns a :class:`~medgan.Trainer` (call ``.fit()``); every part stays replaceable:
the generator and discriminator are registry models, the loss a registry loss, and
``config`` overrides any :class:`~medgan.TrainConfig` field.

>>> trainer = pix2pix_trainer(pairs, steps=400, residual=True)   # doctest: +SKIP
>>> trainer.fit(progress=True); enhance(volume, trainer.ema, window)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn
from torch.utils.data import Dataset

from medgan.batches import Paired, Unpaired
from medgan.config import TrainConfig
from medgan.errors import ConfigError
from medgan.losses import build_loss
from medgan.models import build
from medgan.trainer import Trainer

# CPU-sized defaults of the examples: batch 8, G learns faster than D, short EMA half-life
DEFAULTS: dict[str, Any] = {"batch_size": 8, "lr_g": 5e-4, "lr_d": 2e-4, "ema_halflife_kimg": 0.5}


def pix2pix_trainer(
    data: Dataset,
    steps: int,
    in_channels: int = 1,
    out_channels: int = 1,
    residual: bool = False,
    base_channels: int = 16,
    depth: int = 3,
    d_layers: int = 2,
    l1_weight: float = 100.0,
    adv_weight: float = 1.0,
    norm: str = "instance",
    callbacks: Sequence[Any] = (),
    **config: Any,
) -> Trainer:
    """Paired image-to-image GAN (Isola et al. 2017): U-Net G, PatchGAN D conditioned on the
    source, ``pix2pix`` loss. ``data`` yields ``(source (in_channels, H, W), target
    (out_channels, H, W))`` in [-1, 1]; ``residual`` makes G predict a correction to the
    first ``out_channels`` source channels (denoising, super-resolution, inpainting).
    ``norm="none"`` drops the U-Net's instance normalisation, so that its output does not
    depend on how a slice is tiled at inference (the enhancement examples use it).

    Args:
        data: a Dataset of ``(source (in_channels, H, W), target (out_channels, H, W))``
            pairs in [-1, 1]; H and W divisible by ``2**depth`` and at least
            ``3 * 2**d_layers``.
        steps: optimisation steps (generator updates, :class:`~medgan.TrainConfig`'s
            ``steps``).
        in_channels: source channels (the image, plus any context such as a mask); also
            the PatchGAN's condition channels.
        out_channels: target channels, the generator's output.
        residual: G predicts a correction to the first ``out_channels`` source channels,
            clamped to [-1, 1] (needs ``in_channels >= out_channels``).
        base_channels: width of the U-Net's first stage (doubling per stage); also the
            PatchGAN's first-layer width.
        depth: the U-Net's stride-2 down-samplings (sides must divide by ``2**depth``).
        d_layers: the PatchGAN's stride-2 layers (larger patches with more layers).
        l1_weight: weight of the L1 term (mean absolute error to the target, [-1, 1] units)
            against the adversarial term of the ``pix2pix`` loss.
        adv_weight: weight of G's adversarial term (``pix2pix``'s ``adv_weight``); 0 trains
            G on the L1 term alone, the baseline of an ablation.
        norm: the U-Net's normalisation: "instance", "batch" or "none" (tiling-independent
            output).
        callbacks: trainer callbacks (see :class:`~medgan.Trainer`).
        **config: overrides of :class:`~medgan.TrainConfig` fields, applied over
            ``DEFAULTS`` (batch 8, ``lr_g`` 5e-4, ``lr_d`` 2e-4, EMA half-life 0.5 kimg).
    """
    g = build(
        "unet_generator",
        in_channels=in_channels,
        out_channels=out_channels,
        base_channels=base_channels,
        depth=depth,
        residual=residual,
        norm=norm,
    )
    return _paired(
        g,
        data,
        steps,
        cond_channels=in_channels,
        out_channels=out_channels,
        d_channels=base_channels,
        d_layers=d_layers,
        l1_weight=l1_weight,
        adv_weight=adv_weight,
        callbacks=callbacks,
        config=config,
    )


def _paired(
    g: nn.Module,
    data: Dataset,
    steps: int,
    *,
    cond_channels: int,
    out_channels: int,
    d_channels: int,
    d_layers: int,
    l1_weight: float,
    adv_weight: float,
    callbacks: Sequence[Any],
    config: dict[str, Any],
    spatial_dims: int = 2,
) -> Trainer:
    """The paired GAN around generator ``g``: a PatchGAN (2D or 3D) conditioned on the source
    and the ``pix2pix`` loss, with the CPU-sized ``DEFAULTS`` under ``config``."""
    # spatial_dims is recorded only when 3D, so 2D specs stay those of earlier checkpoints
    # (resuming compares them exactly)
    dims = {"spatial_dims": spatial_dims} if spatial_dims != 2 else {}
    d = build(
        "patchgan_discriminator",
        **dims,
        in_channels=out_channels,
        cond_channels=cond_channels,
        base_channels=d_channels,
        n_layers=d_layers,
    )
    return Trainer(
        g,
        d,
        data,
        adapter=Paired(),
        loss=build_loss("pix2pix", l1_weight=l1_weight, adv_weight=adv_weight),
        config=TrainConfig(**{**DEFAULTS, "steps": steps, **config}),
        callbacks=list(callbacks),
    )


def _level_conditioned(
    g: nn.Module,
    data: Dataset,
    steps: int,
    d_channels: int,
    d_layers: int,
    l1_weight: float,
    adv_weight: float,
    callbacks: Sequence[Any],
    config: dict[str, Any],
    spatial_dims: int = 2,
) -> Trainer:
    """:func:`_paired` for a level-conditioned model: source ``[image, level map]``, one
    output channel."""
    return _paired(
        g,
        data,
        steps,
        cond_channels=2,
        out_channels=1,
        d_channels=d_channels,
        d_layers=d_layers,
        l1_weight=l1_weight,
        adv_weight=adv_weight,
        callbacks=callbacks,
        config=config,
        spatial_dims=spatial_dims,
    )


def cyclegan_trainer(
    data: Dataset,
    steps: int,
    channels_a: int = 1,
    channels_b: int = 1,
    base_channels: int = 16,
    depth: int = 3,
    d_layers: int = 2,
    cycle_weight: float = 10.0,
    identity_weight: float | None = None,
    upsample: str = "resize",
    callbacks: Sequence[Any] = (),
    **config: Any,
) -> Trainer:
    """Unpaired translation (Zhu et al. 2017): two U-Nets, two PatchGANs, ``cycle_gan`` loss.
    ``data`` yields ``(a, b)`` (e.g. :class:`~medgan.data.UnpairedDataset`). The identity
    weight defaults to ``0.5 * cycle_weight`` when the domains have equal channel counts
    and to 0 otherwise. As in the paper, the discriminators see a history of 50 generated
    images (``fake_history``) and the learning rate is constant for the first half of the
    steps, then decays linearly to 0 (``lr_schedule="half_then_decay"``); the U-Nets
    up-sample by resize-convolution (no checkerboard artefacts). Translate with
    ``trainer.ema.ab`` / ``trainer.ema.ba``.

    Args:
        data: a Dataset of unpaired ``(a (channels_a, H, W), b (channels_b, H, W))`` items
            in [-1, 1]; H and W divisible by ``2**depth``.
        steps: optimisation steps (generator updates, :class:`~medgan.TrainConfig`'s
            ``steps``).
        channels_a, channels_b: image channels of domain A and of domain B.
        base_channels: width of the first stage of both U-Nets and both PatchGANs.
        depth: the U-Nets' stride-2 down-samplings (sides must divide by ``2**depth``).
        d_layers: the PatchGANs' stride-2 layers.
        cycle_weight: weight of the cycle-consistency L1 term (A -> B -> A and B -> A -> B)
            against the adversarial terms (10 in Zhu et al.).
        identity_weight: weight of the identity L1 term (``G_AB(b)`` against ``b``, and
            ``G_BA(a)`` against ``a``); ``None``: ``0.5 * cycle_weight`` when
            ``channels_a == channels_b``, else 0 (off, as the term needs equal channels).
        upsample: the U-Nets' up-sampling, "resize" or "transpose" (see
            :class:`~medgan.models.unet.UNetGenerator`).
        callbacks: trainer callbacks (see :class:`~medgan.Trainer`).
        **config: overrides of :class:`~medgan.TrainConfig` fields, applied over
            ``DEFAULTS`` (batch 8, ``lr_g`` 5e-4, ``lr_d`` 2e-4, EMA half-life 0.5 kimg) and
            ``fake_history=50, lr_schedule="half_then_decay"``.
    """
    if identity_weight is None:
        identity_weight = 0.5 * cycle_weight if channels_a == channels_b else 0.0
    kw = {"channels_a": channels_a, "channels_b": channels_b, "base_channels": base_channels}
    paper = {"fake_history": 50, "lr_schedule": "half_then_decay"}
    return Trainer(
        build("cycle_generator", depth=depth, upsample=upsample, **kw),
        build("cycle_discriminator", n_layers=d_layers, **kw),
        data,
        adapter=Unpaired(),
        loss=build_loss("cycle_gan", cycle_weight=cycle_weight, identity_weight=identity_weight),
        config=TrainConfig(**{**DEFAULTS, **paper, "steps": steps, **config}),
        callbacks=list(callbacks),
    )


def denoiser_trainer(
    data: Dataset,
    steps: int,
    base_channels: int = 32,
    depth: int = 3,
    d_layers: int = 2,
    l1_weight: float = 1000.0,
    adv_weight: float = 1.0,
    callbacks: Sequence[Any] = (),
    **config: Any,
) -> Trainer:
    """MR denoising GAN: a :class:`~medgan.models.denoiser.NoiseLevelDenoiser` (residual,
    noise-level conditioned, no normalisation layers) against a PatchGAN conditioned on the
    noisy input, ``pix2pix`` loss (L1 to the clean image plus the adversarial term). ``data``
    yields ``([noisy, sigma map], clean)`` (:class:`~medgan.tasks.denoising.NoisyPatches`,
    whose noise range and intensity histogram are recorded on the generator for
    :func:`~medgan.tasks.denoising.denoise`'s checks). ``l1_weight`` 1000: in a run with 100
    (and 24 channels, 48-px patches) the discriminator won (g_adv ~2 by 1,500 steps) and
    the held-out mean PSNR was 25.1 dB against 30.7 dB with 1000 (32 channels, 64 px).

    Args:
        data: a Dataset of ``([noisy, sigma map] (2, P, P), clean (1, P, P))`` in [-1, 1]
            units; a :class:`~medgan.tasks.denoising.NoisyPatches` also calibrates the
            generator (:func:`~medgan.tasks.denoising.calibrate`), another is used as is.
        steps: optimisation steps (generator updates, :class:`~medgan.TrainConfig`'s
            ``steps``).
        base_channels: width of g's first U-Net stage; the PatchGAN gets half of it.
        depth: g's stride-2 down-samplings (patch sides must divide by ``2**depth``).
        d_layers: the PatchGAN's stride-2 layers.
        l1_weight: weight of the L1 term (mean absolute error to the clean image, [-1, 1]
            units) against the adversarial term.
        adv_weight: weight of G's adversarial term (``pix2pix``'s ``adv_weight``); 0 trains
            G on the L1 term alone, the baseline of an ablation.
        callbacks: trainer callbacks (see :class:`~medgan.Trainer`).
        **config: overrides of :class:`~medgan.TrainConfig` fields, applied over
            ``DEFAULTS`` (batch 8, ``lr_g`` 5e-4, ``lr_d`` 2e-4, EMA half-life 0.5 kimg).
    """
    from medgan.tasks.denoising import NoisyPatches, calibrate

    g = build("noise_level_denoiser", base_channels=base_channels, depth=depth)
    if isinstance(data, NoisyPatches):
        calibrate(g, data)
    return _level_conditioned(
        g, data, steps, base_channels // 2, d_layers, l1_weight, adv_weight, callbacks, config
    )


def ct_denoiser_trainer(
    data: Dataset,
    steps: int,
    base_channels: int = 16,
    depth: int = 3,
    d_layers: int = 2,
    l1_weight: float = 1000.0,
    adv_weight: float = 1.0,
    callbacks: Sequence[Any] = (),
    **config: Any,
) -> Trainer:
    """Low-dose CT denoising GAN: a :class:`~medgan.models.denoiser.CTDenoiser` (residual,
    conditioned on the noise std, identity at sigma 0, no normalisation layers) against a
    PatchGAN conditioned on both input channels, ``pix2pix`` loss. ``data`` yields
    ``([noisy, sigma map], target)`` (:class:`~medgan.tasks.denoising.CTNoisyPairs`, whose
    window and range of sigmas told are recorded on the model). Widths and L1 weight (1000:
    the added noise is ~0.02 in [-1, 1] units, so L1 must outweigh the adversarial term) are
    those of the pix2pix U-Net the example measured before.

    Args:
        data: a :class:`~medgan.tasks.denoising.CTNoisyPairs` (ConfigError for another).
        steps: optimisation steps.
        base_channels: width of g's first stage; also the PatchGAN's width.
        depth: g's down-samplings (slice sides are padded to a multiple of ``2**depth``).
        d_layers: the PatchGAN's stride-2 layers.
        l1_weight: weight of the L1 term against the adversarial term.
        adv_weight: weight of G's adversarial term (``pix2pix``'s ``adv_weight``); 0 trains
            G on the L1 term alone, the baseline of an ablation.
        callbacks: trainer callbacks.
        **config: overrides of :class:`~medgan.TrainConfig` fields (e.g. ``lr_g``).
    """
    window = getattr(data, "window", None)
    if window is None or not hasattr(data, "told_range"):
        raise ConfigError(
            f"ct_denoiser_trainer: {type(data).__name__} has no window and told_range(); use "
            "medgan.tasks.denoising.CTNoisyPairs"
        )
    sigma = data.told_range()
    g = build(
        "ct_denoiser",
        base_channels=base_channels,
        depth=depth,
        window_hu=(window.lo, window.hi),
        sigma_hu=tuple(sigma),
    )
    return _level_conditioned(
        g, data, steps, base_channels, d_layers, l1_weight, adv_weight, callbacks, config
    )


def superres_trainer(
    data: Dataset,
    steps: int,
    base_channels: int = 16,
    depth: int = 3,
    d_layers: int = 2,
    l1_weight: float = 100.0,
    adv_weight: float = 1.0,
    max_factor: int | None = None,
    spatial_dims: int = 2,
    callbacks: Sequence[Any] = (),
    **config: Any,
) -> Trainer:
    """Slice-thickness super-resolution GAN: a :class:`~medgan.models.conditioned.ThicknessSR`
    (residual, conditioned on factor - 1, identity at factor 1, no normalisation layers)
    against a PatchGAN conditioned on both input channels (plane and factor map), ``pix2pix``
    loss. ``data`` yields ``([thick plane on the fine grid, factor - 1 map], clean plane)``
    (:class:`~medgan.tasks.superres.ThickSlicePairs`); ``max_factor`` (default: the
    dataset's ``max_factor``) is recorded on the model as its trained range, which
    inference refuses to leave. Widths and L1 weight are those of the pix2pix U-Net the
    example measured before (base 16, L1 100). ``spatial_dims=3`` trains the 3D model and a
    3D PatchGAN on 3D patches (:class:`~medgan.tasks.superres.ThickSlicePatches`).

    Args:
        data: a Dataset of ``([thick plane, factor - 1 map] (2, H, W), clean plane
            (1, H, W))`` in [-1, 1] (e.g. :class:`~medgan.tasks.superres.ThickSlicePairs`);
            H and W divisible by ``2**depth``.
        steps: optimisation steps (generator updates, :class:`~medgan.TrainConfig`'s
            ``steps``).
        base_channels: width of g's first U-Net stage; also the PatchGAN's width.
        depth: g's stride-2 down-samplings (sides must divide by ``2**depth``).
        d_layers: the PatchGAN's stride-2 layers.
        l1_weight: weight of the L1 term (mean absolute error to the clean plane, [-1, 1]
            units) against the adversarial term.
        adv_weight: weight of G's adversarial term (``pix2pix``'s ``adv_weight``); 0 trains
            G on the L1 term alone, the baseline of an ablation.
        max_factor: the largest slab / fine spacing factor of the training data, recorded
            on the model as its trained range ``[1, max_factor]``; ``None``: ``data``'s
            ``max_factor`` attribute (ConfigError when it has none).
        spatial_dims: 2 (planes, :class:`~medgan.tasks.superres.ThickSlicePairs`) or 3
            (patches ``(2, P, P, Q)``, slice axis last).
        callbacks: trainer callbacks (see :class:`~medgan.Trainer`).
        **config: overrides of :class:`~medgan.TrainConfig` fields, applied over
            ``DEFAULTS`` (batch 8, ``lr_g`` 5e-4, ``lr_d`` 2e-4, EMA half-life 0.5 kimg).
    """
    if max_factor is None:
        max_factor = getattr(data, "max_factor", None)
        if max_factor is None:
            raise ConfigError(
                f"superres_trainer: {type(data).__name__} has no max_factor; pass "
                "max_factor=<largest slab factor in the data>"
            )
    g = build(
        "thickness_sr",
        base_channels=base_channels,
        depth=depth,
        max_factor=max_factor,
        **({"spatial_dims": spatial_dims} if spatial_dims != 2 else {}),  # as in _paired
    )
    return _level_conditioned(
        g,
        data,
        steps,
        base_channels,
        d_layers,
        l1_weight,
        adv_weight,
        callbacks,
        config,
        spatial_dims,
    )
