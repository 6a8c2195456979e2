"""Noise power spectrum (NPS) of CT images: the texture measure of CT image quality
(ICRU Report 87, sec. 4; Dobbins 2000), used to tell a denoiser that keeps full-dose noise
texture from one that leaves blotchy, low-frequency noise (Yang et al. 2018; Eulig et al.
2024).

For square regions of interest (ROIs) ``n_k`` of ``M x M`` pixels of spacing ``dx`` on a
uniform object, each with its own mean removed,

    NPS(u, v) = dx^2 / M^2 * < |DFT(n_k - mean(n_k))(u, v)|^2 >_k      (HU^2 mm^2),

at the frequencies ``u, v = j / (M dx)``. By Parseval's theorem its sum over the grid times
the frequency cell ``1 / (M dx)^2`` is the mean variance of the ROIs (tested). The radial
NPS averages it over rings of width ``1 / (M dx)``; its mean frequency and the distance
between two area-normalised radial spectra compare texture independently of noise
magnitude.
"""

from __future__ import annotations

import numpy as np


def uniform_rois(
    reference: np.ndarray,
    size: int,
    stride: int | None = None,
    value_range: tuple[float, float] | None = None,
    margin: int = 0,
) -> np.ndarray:
    """Corners of the ROIs on which a noiseless ``reference`` is constant.

    Args:
        reference: noiseless slices ``(N, H, W)`` (e.g. a phantom before noise).
        size: ROI side in pixels.
        stride: step between ROI corners (default ``size``: no overlap).
        value_range: keep only ROIs whose constant value lies in ``[lo, hi]`` (e.g. soft
            tissue, leaving out air that a model's window clips); None keeps all.
        margin: the reference must also be constant ``margin`` pixels around the ROI, so
            that an edge blurred by a filter or model does not leak into it as "noise".

    Returns:
        int array ``(K, 3)`` of ``(slice, row, column)`` corners, in scan order.
    """
    ref = np.asarray(reference)
    if ref.ndim != 3 or size < 2 or size + 2 * margin > min(ref.shape[1:]):
        raise ValueError(
            f"reference must be (N, H, W) with sides >= size + 2 * margin, size >= 2; got "
            f"{ref.shape}, size {size}, margin {margin}"
        )
    if (stride is not None and stride < 1) or margin < 0:
        raise ValueError(f"stride must be >= 1 and margin >= 0, got {stride}, {margin}")
    step = stride or size
    m, big = margin, size + 2 * margin
    lo, hi = value_range if value_range is not None else (-np.inf, np.inf)
    out = [
        (k, r + m, c + m)
        for k in range(ref.shape[0])
        for r in range(0, ref.shape[1] - big + 1, step)
        for c in range(0, ref.shape[2] - big + 1, step)
        if np.ptp(ref[k, r : r + big, c : c + big]) == 0 and lo <= ref[k, r, c] <= hi
    ]
    return np.asarray(out, dtype=np.int64).reshape(-1, 3)


def cut_rois(images: np.ndarray, corners: np.ndarray, size: int) -> np.ndarray:
    """The ``(K, size, size)`` ROIs of ``images`` ``(N, H, W)`` at ``corners`` ``(K, 3)``
    (from :func:`uniform_rois`, at least one), ``size`` pixels a side."""
    if len(corners) == 0:
        raise ValueError("no ROI corners: no uniform region of that size (and margin) was found")
    return np.stack([images[k, r : r + size, c : c + size] for k, r, c in corners])


def noise_power_spectrum(rois: np.ndarray, spacing: float = 1.0) -> np.ndarray:
    """2D NPS ``(M, M)`` of ROIs ``(K, M, M)`` (HU^2 mm^2 for HU and mm), zero frequency at
    index ``(0, 0)`` (numpy's FFT order); the formula in the module docstring.

    Args:
        rois: square noise regions ``(K, M, M)``, each detrended by its own mean here.
        spacing: pixel spacing ``dx`` (mm).
    """
    r = np.asarray(rois, np.float64)
    if r.ndim != 3 or r.shape[1] != r.shape[2] or len(r) == 0:
        raise ValueError(f"rois must be (K, M, M) with K >= 1, got {r.shape}")
    m = r.shape[1]
    r = r - r.mean(axis=(1, 2), keepdims=True)
    power = np.abs(np.fft.fft2(r)) ** 2
    return power.mean(axis=0) * spacing**2 / m**2


def radial_nps(nps: np.ndarray, spacing: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Ring average of a 2D NPS from :func:`noise_power_spectrum`.

    Args:
        nps: 2D NPS ``(M, M)``, zero frequency at index ``(0, 0)``.
        spacing: pixel spacing (mm) the NPS was computed with.

    Returns:
        ``(frequencies, radial NPS)``, each ``(M // 2 + 1,)``: ring ``j`` holds the
        frequencies with ``|f|`` within half a cell of ``j / (M dx)`` (cycles/mm), up to the
        Nyquist frequency ``1 / (2 dx)``.
    """
    m = nps.shape[0]
    f = np.fft.fftfreq(m)  # cycles / pixel
    ring = np.rint(np.hypot(f[:, None], f[None, :]) * m).astype(np.int64)
    n = m // 2 + 1
    keep = ring < n
    sums = np.bincount(ring[keep], weights=nps[keep], minlength=n)
    counts = np.bincount(ring[keep], minlength=n)
    return np.arange(n) / (m * spacing), sums / np.maximum(counts, 1)


def mean_frequency(freqs: np.ndarray, radial: np.ndarray) -> float:
    """The NPS-weighted mean frequency ``sum f NPS(f) / sum NPS(f)`` of a radial NPS
    ``radial`` on the rings ``freqs`` (cycles/mm, from :func:`radial_nps`); lower for
    blotchier noise."""
    return float((freqs * radial).sum() / radial.sum())


def nps_shape_distance(radial_a: np.ndarray, radial_b: np.ndarray) -> float:
    """Total-variation distance ``0.5 * sum |a / sum a - b / sum b|`` in [0, 1] between two
    area-normalised radial NPS ``radial_a`` and ``radial_b`` on the same rings: 0 for the
    same texture whatever the noise magnitude, 1 for spectra without common frequencies."""
    a, b = np.asarray(radial_a, np.float64), np.asarray(radial_b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"radial NPS on different rings: {a.shape} vs {b.shape}")
    return float(0.5 * np.abs(a / a.sum() - b / b.sum()).sum())
