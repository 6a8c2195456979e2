"""Degradation models that turn clean images into training inputs for enhancement.

All functions take numpy arrays in physical units (HU for CT) or in [-1, 1] and a
``numpy.random.Generator``, and return arrays of the same shape and dtype float32.

- :func:`low_dose_ct_noise` (image domain). Justification: filtered back-projection turns
  the Poisson noise of the projections into image noise that is close to Gaussian, whose
  variance scales with 1/dose and whose power spectrum rises ~linearly with spatial
  frequency (the ramp filter) up to the reconstruction cut-off (Hanson 1979; Kak & Slaney,
  ch. 5). We draw white noise, shape its 2D spectrum with |f| (per slice) and scale it to
  the standard deviation a dose reduction adds: sigma_add = sigma_full * sqrt(1/d - 1)
  for a dose fraction d.
- :func:`rician_noise` (MR magnitude images): |x + n_re + i n_im|, n ~ N(0, sigma^2).
- :func:`bias_field` (MR intensity inhomogeneity): multiplication by exp(s * p(x, y)), p a
  random smooth polynomial scaled to [-1, 1] (the model of TorchIO's RandomBiasField, after
  Van Leemput et al. 1999).
- :func:`thick_slices` (super-resolution): average ``factor`` consecutive slices along an
  axis (a thicker slab), then return either the thick volume or it re-sampled onto the
  original grid (:func:`slabs_to_grid`, linear by default), so pairs stay aligned.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage


def ramp_shaped_noise(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Unit-variance float32 noise of ``shape`` (at least 2 axes) whose power spectrum over
    the last two axes is proportional to |f|, drawn from ``rng``."""
    white = rng.standard_normal(shape)
    fy = np.fft.fftfreq(shape[-2])[:, None]
    fx = np.fft.fftfreq(shape[-1])[None, :]
    ramp = np.sqrt(np.sqrt(fx**2 + fy**2))  # amplitude ~ sqrt(|f|) <=> power ~ |f|
    shaped = np.fft.ifft2(np.fft.fft2(white, axes=(-2, -1)) * ramp, axes=(-2, -1)).real
    return (shaped / shaped.std()).astype(np.float32)


def low_dose_ct_noise(
    hu: np.ndarray,
    rng: np.random.Generator,
    dose_fraction: float = 0.25,
    full_dose_sigma_hu: float = 10.0,
) -> np.ndarray:
    """Simulate a scan at ``dose_fraction`` (in (0, 1]) of the dose of ``hu`` (slices in
    HU, last two axes the image plane, whose own noise std is ``full_dose_sigma_hu`` HU):
    adds ramp-shaped noise (drawn from ``rng``) of sigma_full * sqrt(1/d - 1) HU."""
    if not 0 < dose_fraction <= 1:
        raise ValueError(f"dose_fraction must be in (0, 1], got {dose_fraction}")
    sigma = full_dose_sigma_hu * np.sqrt(1.0 / dose_fraction - 1.0)
    return (hu + sigma * ramp_shaped_noise(hu.shape, rng)).astype(np.float32)


def rician_noise(x: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Magnitude of complex Gaussian noise added to a (non-negative) MR image ``x``:
    ``|x + n_re + i n_im|`` with ``n ~ N(0, sigma^2)`` drawn from ``rng``; ``sigma`` in the
    image's units."""
    re = x + sigma * rng.standard_normal(x.shape)
    im = sigma * rng.standard_normal(x.shape)
    return np.sqrt(re**2 + im**2).astype(np.float32)


@lru_cache(maxsize=16)
def _monomials(h: int, w: int, order: int) -> tuple[np.ndarray, ...]:
    """x^i y^j (i + j <= order) on the [-1, 1]^2 grid of an h x w image, in the order the
    coefficients are drawn; cached (read-only) since training draws one per item."""
    yy, xx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    out = tuple(xx**i * yy**j for i in range(order + 1) for j in range(order + 1 - i))
    for m in out:
        m.flags.writeable = False
    return out


def bias_field(
    x: np.ndarray, rng: np.random.Generator, strength: float = 0.3, order: int = 3
) -> np.ndarray:
    """Multiply each 2D slice (last two axes) by exp(``strength`` * p), p a polynomial of total
    degree ``order`` in the normalised coordinates with coefficients ~ U(-1, 1), scaled so
    that max |p| = 1: gains between exp(-strength) and exp(strength). ``x``: the image(s),
    any units; ``rng`` draws the coefficients."""
    monomials = _monomials(*x.shape[-2:], order)
    p = sum(rng.uniform(-1, 1) * m for m in monomials)
    p = p / max(float(np.abs(p).max()), 1e-12)
    return (x * np.exp(strength * p)).astype(np.float32)


def thick_slices(
    x: np.ndarray, factor: int, axis: int = 0, same_grid: bool = True, order: int = 1
) -> np.ndarray:
    """Average ``factor`` slices of ``x`` along ``axis`` (spacing multiplies by ``factor``; slices
    beyond the last whole slab are dropped); with ``same_grid`` re-sample back to the input
    grid (the usual SR input) by :func:`slabs_to_grid` with spline interpolation of
    ``order`` along ``axis`` (1: linear, 3: cubic B-spline)."""
    if factor < 1:
        raise ValueError("factor must be >= 1")
    n = x.shape[axis] - x.shape[axis] % factor
    moved = np.moveaxis(x, axis, 0)[:n]
    thick = moved.reshape(n // factor, factor, *moved.shape[1:]).mean(1)
    thick = np.moveaxis(thick, 0, axis).astype(np.float32)
    if not same_grid:
        return thick
    return slabs_to_grid(thick, factor, axis, order, length=x.shape[axis])


def slabs_to_grid(
    thick: np.ndarray, factor: int, axis: int = 0, order: int = 1, length: int | None = None
) -> np.ndarray:
    """Resample slabs ``thick`` (spacing ``factor`` times the fine spacing along ``axis``)
    onto the fine grid, with spline interpolation of ``order`` along ``axis`` only (1:
    linear, 3: cubic B-spline; constant beyond the first and last slab centres).

    Slab j covers fine slices ``j*f .. j*f + f - 1``, so its centre sits at fine index
    ``j*f + (f - 1) / 2``: fine slice k is read at slab coordinate ``(k - (f - 1) / 2) / f``.
    Returns float32, ``length`` (default ``factor * thick.shape[axis]``) slices along ``axis``.
    """
    if int(factor) != factor or factor < 1:
        raise ValueError(f"factor must be an integer >= 1, got {factor}")
    moved = np.moveaxis(np.asarray(thick, np.float32), axis, 0)
    length = factor * moved.shape[0] if length is None else length
    coords = np.clip((np.arange(length) - (factor - 1) / 2) / factor, 0, moved.shape[0] - 1)
    out = ndimage.map_coordinates(
        moved,
        np.meshgrid(coords, *[np.arange(s) for s in moved.shape[1:]], indexing="ij"),
        order=order,
        mode="nearest",
    )
    return np.moveaxis(out, 0, axis).astype(np.float32)
