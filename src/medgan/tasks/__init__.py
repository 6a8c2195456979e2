"""The three medical jobs: enhancement, completion (missing regions/slices) and
segmentation, on top of the paired image-to-image GAN machinery."""

from __future__ import annotations

from medgan.tasks.completion import (
    InpaintingPairs,
    MissingSlicePairs,
    harmonic_fill,
    inpaint,
    random_box_mask,
)
from medgan.tasks.degradations import (
    bias_field,
    low_dose_ct_noise,
    rician_noise,
    slabs_to_grid,
    thick_slices,
)
from medgan.tasks.denoising import (
    CTNoisyPairs,
    DenoiseAugment,
    NoisyPatches,
    denoise,
    denoise_ct,
    estimate_ct_noise_sigma,
    mr_training_images,
)
from medgan.tasks.enhancement import DegradedPairs, enhance
from medgan.tasks.noise import estimate_noise_sigma, rician_mean_inverse
from medgan.tasks.recipes import (
    ct_denoiser_trainer,
    cyclegan_trainer,
    denoiser_trainer,
    pix2pix_trainer,
    superres_trainer,
)
from medgan.tasks.segmentation import (
    LabelsToOneHot,
    SegANCritic,
    SegANLoss,
    SegmentationLoss,
    UNetSegmenter,
    multiscale_l1,
    segment,
    soft_dice_loss,
)
from medgan.tasks.superres import (
    ThickSlicePairs,
    ThickSlicePatches,
    resample_slabs,
    superres,
    thick_volume,
)
from medgan.tasks.translation import translate

__all__ = [
    "CTNoisyPairs",
    "DegradedPairs",
    "DenoiseAugment",
    "NoisyPatches",
    "InpaintingPairs",
    "LabelsToOneHot",
    "SegANCritic",
    "SegANLoss",
    "multiscale_l1",
    "MissingSlicePairs",
    "SegmentationLoss",
    "ThickSlicePairs",
    "ThickSlicePatches",
    "UNetSegmenter",
    "bias_field",
    "ct_denoiser_trainer",
    "cyclegan_trainer",
    "denoise",
    "denoise_ct",
    "denoiser_trainer",
    "enhance",
    "estimate_ct_noise_sigma",
    "estimate_noise_sigma",
    "harmonic_fill",
    "inpaint",
    "low_dose_ct_noise",
    "mr_training_images",
    "pix2pix_trainer",
    "random_box_mask",
    "resample_slabs",
    "rician_mean_inverse",
    "rician_noise",
    "segment",
    "slabs_to_grid",
    "soft_dice_loss",
    "superres",
    "superres_trainer",
    "thick_slices",
    "thick_volume",
    "translate",
]
