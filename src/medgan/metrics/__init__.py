"""Evaluation: feature extractors, FID/KID/precision-recall/density-coverage/IS, image
quality (PSNR, SSIM, MS-SSIM, 2D and 3D), Dice/IoU, and a memorisation audit.
:func:`fid_between` scores two image sets on disk (what ``medgan fid`` runs).

>>> from medgan import metrics
>>> fid = metrics.FID(metrics.InceptionV3Features(weights="pt_inception-2015-12-05-6726825d.pth"))
>>> fid.update(real_images, real=True); fid.update(fake_images, real=False)   # doctest: +SKIP
>>> fid.compute()                                                           # doctest: +SKIP
"""

from __future__ import annotations

from medgan.metrics.distances import density_coverage, inception_score, kid, precision_recall
from medgan.metrics.domain import DomainEncoderFeatures
from medgan.metrics.features import (
    InceptionV3Features,
    ModuleFeatures,
    SliceFeatures25D,
    build_features,
)
from medgan.metrics.frechet import FeatureStats, fid_infinity, frechet_distance
from medgan.metrics.image_quality import dice, iou, ms_ssim, psnr, ssim
from medgan.metrics.image_sets import fid_between
from medgan.metrics.memorization import memorization_audit
from medgan.metrics.scores import FID, KID, DensityCoverage, InceptionScore, PrecisionRecall
from medgan.metrics.surface import surface_distances
from medgan.metrics.swd import sliced_wasserstein
from medgan.metrics.volumes import score_25d, slices_along

__all__ = [
    "FID",
    "KID",
    "DensityCoverage",
    "DomainEncoderFeatures",
    "FeatureStats",
    "InceptionScore",
    "InceptionV3Features",
    "ModuleFeatures",
    "PrecisionRecall",
    "SliceFeatures25D",
    "build_features",
    "density_coverage",
    "dice",
    "fid_between",
    "iou",
    "memorization_audit",
    "ms_ssim",
    "psnr",
    "score_25d",
    "sliced_wasserstein",
    "surface_distances",
    "slices_along",
    "ssim",
    "fid_infinity",
    "frechet_distance",
    "inception_score",
    "kid",
    "precision_recall",
]
