"""The classical methods a GAN has to beat, each with its parameter chosen on the data.

:func:`best_parameter` runs a method over a parameter grid and keeps the best score (the
baseline's most favourable setting, chosen on the very images it is scored on, so the
comparison is if anything unfair to the GAN). :func:`gaussian_denoise` and
:func:`nlm_denoise` (non-local means, Buades et al. 2005, via scikit-image) work slice by
slice on stacks ``(N, H, W)`` in physical units; for MR magnitude images
:func:`nlm_rician` corrects the non-local mean for the Rician bias and
:func:`dipy_nlmeans` runs dipy's Rician-adapted blockwise non-local means (Coupe et al.
2008), and :func:`bm4d_rician` bias-corrected BM4D: the baselines an MR denoiser has to
beat; :func:`bm3d_denoise` is BM3D for (CT) Gaussian-like noise. :class:`IntensityLookup`
is the best voxel-wise intensity map between two modalities, fitted on paired voxels.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from scipy import ndimage

from medgan.metrics.image_quality import psnr, ssim


def psnr_ssim(pred: np.ndarray, ref: np.ndarray, data_range: float) -> tuple[float, float]:
    """Mean PSNR (dB) and SSIM of the 2D stack ``pred`` ``(N, H, W)`` against ``ref``, same
    shape and units; ``data_range`` is the span of valid values in those units (e.g. 2000
    for HU in [-1000, 1000])."""
    p = torch.from_numpy(np.asarray(pred, np.float64))[:, None]
    r = torch.from_numpy(np.asarray(ref, np.float64))[:, None]
    return float(psnr(p, r, data_range)), float(ssim(p, r, data_range))


def best_parameter(
    method: Callable[[np.ndarray, Any], np.ndarray],
    params: Iterable[Any],
    degraded: np.ndarray,
    score: Callable[[np.ndarray], tuple[float, ...]],
) -> tuple[Any, np.ndarray, tuple[float, ...]]:
    """``(best param, its output, its score)`` maximising ``score(output)[0]`` over ``params``.

    Args:
        method: ``method(degraded, param) -> output``, e.g. :func:`gaussian_denoise`.
        params: the parameter grid (non-empty; ValueError otherwise).
        degraded: the input of every run, e.g. a noisy stack ``(N, H, W)``.
        score: ``score(output) -> (value, ...)``; the first value is maximised (e.g.
            ``lambda out: psnr_ssim(out, clean, data_range)``).
    """
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
    """Gaussian filter of standard deviation ``sigma`` pixels within each slice of
    ``stack`` ``(N, H, W)`` (not across slices); float32, same units."""
    return ndimage.gaussian_filter(np.asarray(stack, np.float32), (0, sigma, sigma))


def nlm_denoise(stack: np.ndarray, h_factor: float, noise_sigma: float) -> np.ndarray:
    """Non-local means per slice of ``stack`` ``(N, H, W)`` (5x5 patches, 13x13 search;
    float32 output in the input's units) with filter strength
    h = ``h_factor * noise_sigma`` for noise of standard deviation ``noise_sigma`` (image
    units). Search ``h_factor`` with ``best_parameter(partial(nlm_denoise, noise_sigma=s),
    ...)``."""
    try:
        from skimage.restoration import denoise_nl_means
    except ImportError as e:
        raise ImportError("non-local means needs scikit-image: pip install scikit-image") from e
    return np.stack(
        [
            denoise_nl_means(
                s,
                h=h_factor * noise_sigma,
                sigma=noise_sigma,
                patch_size=5,
                patch_distance=6,
                fast_mode=True,
            )
            for s in np.asarray(stack, np.float64)
        ]
    ).astype(np.float32)


def nlm_rician(stack: np.ndarray, h_factor: float, noise_sigma: float) -> np.ndarray:
    """Bias-corrected non-local means for Rician (MR magnitude) noise: the non-local mean
    estimates E[M], which :func:`~medgan.tasks.noise.rician_mean_inverse` maps back to
    the signal (dark regions are otherwise left at ~1.25 sigma). ``stack``, ``h_factor``
    and ``noise_sigma`` as in :func:`nlm_denoise` (``noise_sigma``: the Rician sigma, in
    the stack's units)."""
    from medgan.tasks.noise import rician_mean_inverse

    return rician_mean_inverse(nlm_denoise(stack, h_factor, noise_sigma), noise_sigma)


def dipy_nlmeans(stack: np.ndarray, noise_sigma: float) -> np.ndarray:
    """dipy's blockwise non-local means with its Rician correction (``rician=True``, 3x3
    patches, 11x11 search), per slice of ``stack`` ``(N, H, W)``, at the noise level
    ``noise_sigma`` in the stack's units (dipy uses the one value both as filter strength
    and for the bias correction, so it is not swept)."""
    try:
        from dipy.denoise.nlmeans import nlmeans
    except ImportError as e:
        raise ImportError("dipy's nlmeans needs dipy: pip install dipy") from e
    return np.stack(
        [
            nlmeans(
                s[..., None],
                noise_sigma,
                rician=True,
                patch_radius=1,
                block_radius=5,
            )[..., 0]
            for s in np.asarray(stack, np.float64)
        ]
    ).astype(np.float32)


def bm3d_denoise(stack: np.ndarray, strength: float, noise_sigma: float) -> np.ndarray:
    """BM3D (Dabov et al. 2007, PyPI ``bm3d``) per slice of ``stack`` ``(N, H, W)`` for
    white Gaussian noise of
    standard deviation ``noise_sigma`` (image units), run at ``strength * noise_sigma``
    (search ``strength`` near 1 with :func:`best_parameter`)."""
    try:
        import bm3d
    except ImportError as e:
        raise ImportError("BM3D needs the bm3d package: pip install bm3d") from e
    return np.stack(
        [bm3d.bm3d(s, strength * noise_sigma) for s in np.asarray(stack, np.float64)]
    ).astype(np.float32)


def bm4d_rician(stack: np.ndarray, strength: float, noise_sigma: float) -> np.ndarray:
    """Bias-corrected BM4D (Maggioni et al. 2013, PyPI ``bm4d``) for Rician MR magnitude
    noise, per slice: BM4D at ``strength * noise_sigma`` estimates E[M] (the package has no
    Rician mode), which :func:`~medgan.tasks.noise.rician_mean_inverse` maps back to the
    signal, as for :func:`nlm_rician`. ``stack``: ``(N, H, W)`` magnitude slices;
    ``noise_sigma``: the Rician sigma in their units; ``strength``: its multiple BM4D runs
    at (search near 1 with :func:`best_parameter`)."""
    try:
        import bm4d
    except ImportError as e:
        raise ImportError("BM4D needs the bm4d package: pip install bm4d") from e
    from medgan.tasks.noise import rician_mean_inverse

    out = np.stack(
        [
            bm4d.bm4d(s[..., None], strength * noise_sigma)[..., 0]
            for s in np.asarray(stack, np.float64)
        ]
    ).astype(np.float32)
    return rician_mean_inverse(out, noise_sigma)


@dataclass(frozen=True)
class IntensityLookup:
    """The best voxel-by-voxel map from one image to another: E[target | source value].

    ``table[c, b]`` is the mean of target channel c over the training voxels whose source
    value falls in bin b of ``bins`` equal bins over [lo, hi]; bins with no training voxel
    take the linear interpolation of their non-empty neighbours. In mean squared error no
    function of the voxel value alone does better on the training voxels, which makes it
    the baseline a context-aware model (a GAN) has to beat for modality synthesis.

    Args:
        table: ``(C, bins)`` predicted target value per channel and source bin (use
            :meth:`fit`).
        lo: the source value at the lower edge of the first bin (lower values fall in it).
        hi: the source value at the upper edge of the last bin (higher values fall in it).
    """

    table: np.ndarray  # (C, bins)
    lo: float
    hi: float

    @classmethod
    def fit(
        cls,
        source: np.ndarray,
        target: np.ndarray,
        bins: int = 256,
        lo: float | None = None,
        hi: float | None = None,
    ) -> IntensityLookup:
        """The lookup fitted on paired voxels.

        Args:
            source: source voxel values ``(*S)``, any units.
            target: paired target values ``(*S)`` or ``(C, *S)``.
            bins: equal-width source bins.
            lo: lower end of the binned source range; None: the source minimum.
            hi: upper end of the binned source range; None: the source maximum.
        """
        src = np.asarray(source, np.float64)
        tgt = np.asarray(target, np.float64)
        tgt = tgt[None] if tgt.shape == src.shape else tgt
        if tgt.shape[1:] != src.shape:
            raise ValueError(f"target {tgt.shape} does not pair with source {src.shape}")
        lo = float(src.min()) if lo is None else lo
        hi = float(src.max()) if hi is None else hi
        idx = _bin(src, lo, hi, bins).ravel()
        counts = np.bincount(idx, minlength=bins)
        seen = np.nonzero(counts)[0]
        table = np.empty((tgt.shape[0], bins))
        for c, t in enumerate(tgt.reshape(tgt.shape[0], -1)):
            mean = np.bincount(idx, weights=t, minlength=bins)[seen] / counts[seen]
            table[c] = np.interp(np.arange(bins), seen, mean)
        return cls(table, lo, hi)

    def __call__(self, source: np.ndarray) -> np.ndarray:
        """``(*S)`` -> ``(C, *S)`` float32 predictions."""
        idx = _bin(np.asarray(source, np.float64), self.lo, self.hi, self.table.shape[1])
        return self.table[:, idx].astype(np.float32)


def _bin(x: np.ndarray, lo: float, hi: float, bins: int) -> np.ndarray:
    scaled = (x - lo) / max(hi - lo, 1e-12) * bins
    return np.clip(scaled.astype(np.int64), 0, bins - 1)


def classical_denoisers(
    noisy: np.ndarray,
    score: Callable[[np.ndarray], tuple[float, ...]],
    noise_sigma: float,
    gaussian_sigmas: Iterable[float] = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0),
    nlm_factors: Iterable[float] = (0.6, 0.8, 1.0, 1.2),
    bm3d_strengths: Iterable[float] = (0.8, 1.0, 1.2),
    outputs: dict[str, np.ndarray] | None = None,
) -> dict[str, tuple[float, ...]]:
    """Scores of the Gaussian filter, non-local means and BM3D at their best parameters, as
    rows ``{"method (best parameter)": score}``; non-local means and BM3D are left out
    (with a logged warning) when scikit-image or bm3d is missing.

    Args:
        noisy: the noisy stack ``(N, H, W)``, physical units.
        score: ``score(denoised) -> (value, ...)``; the first value is maximised.
        noise_sigma: the noise standard deviation, in the stack's units.
        gaussian_sigmas: the Gaussian filter's sigmas tried, in pixels.
        nlm_factors: the non-local means strengths tried, as multiples of ``noise_sigma``.
        bm3d_strengths: the BM3D strengths tried, as multiples of ``noise_sigma``.
        outputs: if given, filled with each row's denoised stack at its best parameter,
            under the row's label (to measure more than the score on it, e.g. the NPS).
    """
    kept = {} if outputs is None else outputs
    s, out, sc = best_parameter(gaussian_denoise, gaussian_sigmas, noisy, score)
    rows = {f"Gaussian filter (best sigma={s} px)": sc}
    kept[f"Gaussian filter (best sigma={s} px)"] = out
    for label, method, grid in (
        ("non-local means (best h={}*sigma)", nlm_denoise, nlm_factors),
        ("BM3D (best strength={}*sigma)", bm3d_denoise, bm3d_strengths),
    ):
        try:
            k, out, sc = best_parameter(
                partial(method, noise_sigma=noise_sigma), grid, noisy, score
            )
        except ImportError as e:
            logging.getLogger(__name__).warning("%s: %s skipped", e, label.split(" (")[0])
            continue
        rows[label.format(k)] = sc
        kept[label.format(k)] = out
    return rows
