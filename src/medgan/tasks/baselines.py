"""The classical methods a GAN has to beat, each with its parameter chosen on the data.

:func:`best_parameter` runs a method over a parameter grid and keeps the best score (the
baseline's most favourable setting, chosen on the very images it is scored on, so the
comparison is if anything unfair to the GAN). :func:`gaussian_denoise` and
:func:`nlm_denoise` (non-local means, Buades et al. 2005, via scikit-image) work slice by
slice on stacks ``(N, H, W)`` in physical units.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from medgan.metrics.image_quality import psnr, ssim


def psnr_ssim(pred: np.ndarray, ref: np.ndarray, data_range: float) -> tuple[float, float]:
    """Mean PSNR (dB) and SSIM of 2D stacks ``(N, H, W)`` against ``ref``, in the same units."""
    p = torch.from_numpy(np.asarray(pred, np.float64))[:, None]
    r = torch.from_numpy(np.asarray(ref, np.float64))[:, None]
    return float(psnr(p, r, data_range)), float(ssim(p, r, data_range))


def best_parameter(
    method: Callable[[np.ndarray, Any], np.ndarray],
    params: Iterable[Any],
    degraded: np.ndarray,
    score: Callable[[np.ndarray], tuple[float, ...]],
) -> tuple[Any, np.ndarray, tuple[float, ...]]:
    """``(best param, its output, its score)`` maximising ``score(output)[0]`` over ``params``."""
    best = None
    for p in params:
        out = method(degraded, p)
        s = score(out)
        if best is None or s[0] > best[2][0]:
            best = (p, out, s)
    if best is None:
        raise ValueError("params is empty")
    return best


def gaussian_denoise(stack: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian filter of standard deviation ``sigma`` pixels within each slice."""
    return ndimage.gaussian_filter(np.asarray(stack, np.float32), (0, sigma, sigma))


def nlm_denoise(stack: np.ndarray, h: float, noise_sigma: float) -> np.ndarray:
    """Non-local means per slice (5x5 patches, 13x13 search) with filter strength ``h``
    (same units as the image) for noise of standard deviation ``noise_sigma``."""
    try:
        from skimage.restoration import denoise_nl_means
    except ImportError as e:
        raise ImportError("non-local means needs scikit-image: pip install scikit-image") from e
    return np.stack(
        [
            denoise_nl_means(
                s, h=h, sigma=noise_sigma, patch_size=5, patch_distance=6, fast_mode=True
            )
            for s in np.asarray(stack, np.float64)
        ]
    ).astype(np.float32)
