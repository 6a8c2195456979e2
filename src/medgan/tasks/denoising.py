"""MR denoising that does no harm on a user's own scans.

- :class:`DenoiseAugment`: what the training pairs vary (noise level, intensity window,
  gamma, bias field, random contrast remaps, zoom, orientation), so that a model trained on
  one template meets other scanners' intensity distributions and resolutions in training.
- :class:`NoisyPatches`: a Dataset of ``([noisy, sigma map] (2, P, P), clean (1, P, P))``
  random patches, drawn deterministically per (seed, index) from clean 2D images.
- :func:`mr_training_images`: the embedded training images (MNI152 T1 along its three
  axes, and synthetic contrasts painted on its tissue maps).
- :func:`denoise`: apply a :class:`~medgan.models.denoiser.NoiseLevelDenoiser` to a Volume:
  one intensity scale and one (blind) noise estimate for the whole volume, whole slices
  (tiling-independent), a report of what it did, and warnings when the input looks unlike
  the training data.
- Low-dose CT: :class:`CTNoisyPairs` (training pairs with ramp-shaped noise of a random
  level), :func:`estimate_ct_noise_sigma` (blind, calibrated for ramp-shaped noise) and
  :func:`denoise_ct` (a :class:`~medgan.models.denoiser.CTDenoiser` over a Volume in HU).

Units (MR): images are scaled so the 99.5th percentile is 255 (``percentile`` of the volume at
inference); the noise std sigma is in those 0..255 units, and in [-1, 1] units it is
``2 sigma / 255``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from torch.utils.data import Dataset

from medgan.data.intensity import IntensityWindow
from medgan.data.volume import Volume
from medgan.errors import ConfigError, DataError
from medgan.metrics.image_quality import psnr_db
from medgan.models.denoiser import HIST_BINS, HIST_RANGE, CTDenoiser, NoiseLevelDenoiser
from medgan.tasks.degradations import bias_field, rician_noise
from medgan.tasks.noise import estimate_noise_sigma
from medgan.tasks.translation import apply_slices, check_axis, multiple_of

log = logging.getLogger(__name__)

PERCENTILE = 99.5  # the intensity that maps to 255 (to 1 in [-1, 1] units), per volume


@dataclass(frozen=True)
class DenoiseAugment:
    """Ranges of the random variations of :class:`NoisyPatches` (uniform unless noted).

    Ranges are ``(lo, hi)`` pairs with ``lo <= hi``; probabilities are in [0, 1]; a value
    out of range is a ConfigError.

    Attributes:
        sigma: range of the Rician noise std, 0..255 units (>= 0); ``p_clean`` of the
            patches get none and are told none (the model's output is then its input by
            construction, so these carry no gradient: a measured run that told them a
            random level instead trained a model that barely denoised, 24.3 dB held-out
            against 30.7).
        p_clean: probability that a patch gets no noise (and is told sigma 0).
        sigma_jitter: relative error (log-normal std, >= 0) of the sigma the model is told,
            ``told = sigma * exp(sigma_jitter * N(0, 1))``, as a blind estimate errs.
        percentile: range, within [0, 100], of the percentile of the source image mapped
            to 255 (the intensity window); higher values leave fewer pixels above 255.
        gamma: range (> 0) of the log-uniform exponent applied to the image scaled to 1 at
            that percentile (< 1 brightens values below 1, > 1 darkens them).
        bias: max bias-field strength (>= 0; each item draws one uniform in [0, bias];
            0: no bias field; :func:`~medgan.tasks.degradations.bias_field`).
        p_remap: probability of a random piecewise-linear intensity map with 0 -> 0 (new
            tissue contrasts, e.g. bright fluid).
        zoom: range (> 0) of the log-uniform resampling factor (other pixel sizes): a crop
            of side ``ceil(P / zoom)`` resampled to P, so above 1 magnifies.
        p_floor, floor: with probability ``p_floor`` lift the image to ``f + (1 - f) x``
            with f ~ U(floor), ``floor`` within [0, 0.999] (in units of the scaled image, 1
            at the percentile): no black background, dark-grey tissue everywhere, as in body
            scans (the template's prior of "dark means empty" otherwise makes the model
            darken low-signal tissue, where the Rician floor is hardest to tell from
            signal).
    """

    sigma: tuple[float, float] = (0.0, 30.0)
    p_clean: float = 0.1
    sigma_jitter: float = 0.1
    percentile: tuple[float, float] = (97.0, 100.0)
    gamma: tuple[float, float] = (0.6, 1.7)
    bias: float = 0.5
    p_remap: float = 0.5
    zoom: tuple[float, float] = (0.5, 1.5)
    p_floor: float = 0.5
    floor: tuple[float, float] = (0.0, 0.35)

    def __post_init__(self) -> None:
        ranges = {
            "sigma": (0, None),
            "percentile": (0, 100),
            "gamma": (1e-9, None),
            "zoom": (1e-9, None),
            "floor": (0, 0.999),
        }
        for name, (low, high) in ranges.items():
            lo, hi = getattr(self, name)
            if not (low <= lo <= hi and (high is None or hi <= high)):
                bound = f"[{low}, {high}]" if high is not None else f">= {low}"
                raise ConfigError(
                    f"DenoiseAugment.{name} must be (lo, hi), lo <= hi, {bound}; got {(lo, hi)}"
                )
        for name in ("p_clean", "p_remap", "p_floor"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"DenoiseAugment.{name} must be a probability in [0, 1]")
        if self.bias < 0 or self.sigma_jitter < 0:
            raise ConfigError("DenoiseAugment.bias and sigma_jitter must be >= 0")


def _loguniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(np.exp(rng.uniform(np.log(lo_hi[0]), np.log(lo_hi[1]))))


def _remap(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random piecewise-linear intensity map on [0, 1] with 0 -> 0, extrapolated
    linearly above 1; renormalised so its largest knot value is 1."""
    knots = np.linspace(0.0, 1.0, 6)
    values = np.concatenate([[0.0], rng.uniform(0.05, 1.0, 5)])
    values /= values.max()
    slope = (values[-1] - values[-2]) / (knots[-1] - knots[-2])
    y = np.interp(x, knots, values)
    y = np.where(x > 1.0, values[-1] + slope * (x - 1.0), y)
    return np.clip(y, 0.0, None).astype(np.float32)


class NoisyPatches(Dataset):
    """``(source (2, P, P), target (1, P, P))`` in [-1, 1] units (see the module doc).

    Args:
        images: clean non-negative 2D images ``(H, W)`` of any sizes, in any units.
        patch: side P, a multiple of the model's down-sampling.
        length: items per epoch (each index draws a new random patch).
        augment: the random variations.
        seed: with the index, seeds each item's draw (items are reproducible).
    """

    def __init__(
        self,
        images: Sequence[np.ndarray],
        patch: int = 64,
        length: int = 4096,
        augment: DenoiseAugment = DenoiseAugment(),  # noqa: B008 (frozen)
        seed: int = 0,
    ) -> None:
        if not images:
            raise ValueError("NoisyPatches needs at least one image")
        if patch < 8 or patch % 8:
            raise ConfigError(f"patch must be a multiple of 8 (>= 8), got {patch}")
        self.images = [np.asarray(i, np.float32) for i in images]
        for k, im in enumerate(self.images):
            if im.ndim != 2:
                raise ValueError(f"image {k} has shape {im.shape}; expected 2D (H, W)")
        self.patch, self.length, self.augment, self.seed = patch, length, augment, seed
        lo, hi = augment.percentile
        qs = np.linspace(lo, hi, 7)
        self._qs = qs
        self._pct = [np.maximum(np.percentile(im, qs), 1e-6) for im in self.images]

    def __len__(self) -> int:
        return self.length

    def _crop(self, im: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        p = self.patch
        z = _loguniform(rng, self.augment.zoom)
        c = max(4, int(math.ceil(p / z)))
        if min(im.shape) < c:
            im = np.pad(im, [(0, max(0, c - s)) for s in im.shape], mode="reflect")
        y = int(rng.integers(0, im.shape[0] - c + 1))
        x = int(rng.integers(0, im.shape[1] - c + 1))
        crop = ndimage.zoom(
            im[y : y + c, x : x + c], p / c, order=1, grid_mode=True, mode="nearest"
        )[:p, :p]
        crop = np.rot90(crop, int(rng.integers(4)))
        return np.ascontiguousarray(crop[:, ::-1] if rng.random() < 0.5 else crop)

    def clean(self, i: int, whole: bool = False) -> tuple[np.ndarray, np.random.Generator]:
        """The clean patch ``(P, P)`` in 0..255 units of item ``i`` (with ``whole``, its
        source image, intensity-augmented but not cropped), and the item's ``rng``."""
        a, rng = self.augment, np.random.default_rng([self.seed, i])
        k = int(rng.integers(len(self.images)))
        scale = float(np.interp(rng.uniform(*a.percentile), self._qs, self._pct[k]))
        x = self.images[k] if whole else self._crop(self.images[k], rng)
        x = np.clip(x / scale, 0.0, None)
        if rng.random() < a.p_remap:
            x = _remap(x, rng)
        if rng.random() < a.p_floor:
            f = rng.uniform(*a.floor)
            x = f + (1.0 - f) * x
        x = x ** _loguniform(rng, a.gamma)
        if a.bias > 0:
            x = bias_field(x, rng, strength=float(rng.uniform(0.0, a.bias)))
        return (255.0 * x).astype(np.float32), rng

    def noisy(self, clean: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float, float]:
        """``(noisy image, noise sigma, sigma told to the model)`` in 0..255 units: Rician
        noise of a random level (none, and told none, for a ``p_clean`` share).

        Args:
            clean: a clean image in 0..255 units, any shape (as :meth:`clean` returns it:
                a patch ``(P, P)`` or a whole image).
            rng: the item's generator (as :meth:`clean` returns it), from which the noise
                level, the noise and the told sigma's jitter are drawn (it advances).
        """
        a = self.augment
        sigma = 0.0 if rng.random() < a.p_clean else float(rng.uniform(*a.sigma))
        noisy = rician_noise(clean, rng, sigma) if sigma > 0 else clean
        told = sigma * float(np.exp(a.sigma_jitter * rng.standard_normal()))
        return noisy, sigma, told

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < self.length:
            raise IndexError(i)
        clean, rng = self.clean(i)
        noisy, _, told = self.noisy(clean, rng)
        src = np.stack([noisy / 127.5 - 1.0, np.full_like(noisy, told / 127.5)])
        return torch.from_numpy(src.astype(np.float32)), torch.from_numpy(
            (clean / 127.5 - 1.0)[None].astype(np.float32)
        )


def mr_training_images(synthetic_contrasts: int = 2, seed: int = 0) -> list[np.ndarray]:
    """Clean 2D training images from the embedded MNI152 data: T1 slices along each of the
    three axes with some brain in them, plus, for each of ``synthetic_contrasts`` random
    draws, the same slices repainted from the tissue maps with random grey-matter,
    white-matter and fluid intensities (T2- or PD-like contrasts; the method of SynthSeg,
    Billot et al. 2023).

    Args:
        synthetic_contrasts: number of random repaintings added (0: the T1 slices only).
        seed: seeds the random tissue intensities of the repaintings (the T1 slices do not
            depend on it).

    Returns:
        Every second slice along each axis of each volume with more than 15% of its pixels
        above 20, as float32 ``(H, W)`` arrays in 0..255 units (the T1's range).
    """
    from medgan.data.embedded import embedded

    t1 = embedded("mni152_t1").array
    prob = embedded("mni152_tissue_prob").array  # (2, X, Y, Z): grey, white
    head = ndimage.binary_fill_holes(ndimage.binary_closing(t1 > 10, iterations=2))
    rng = np.random.default_rng(seed)
    volumes = [t1]
    csf = np.clip(head - prob[0] - prob[1], 0, 1) * (t1 < 60)
    rest = np.clip(head - prob[0] - prob[1] - csf, 0, 1)
    for _ in range(synthetic_contrasts):
        gm, wm, fluid, other = rng.uniform(0.1, 1.0, 4)
        img = (
            255
            * (gm * prob[0] + wm * prob[1] + fluid * csf + other * rest)
            / max(gm, wm, fluid, other)
        )
        volumes.append(ndimage.gaussian_filter(img, 0.5).astype(np.float32))
    out = []
    for vol in volumes:
        for axis in range(3):
            moved = np.moveaxis(vol, axis, 0)
            for s in moved[::2]:
                if (s > 20).mean() > 0.15:
                    out.append(np.ascontiguousarray(s, dtype=np.float32))
    return out


def intensity_histogram(unit: np.ndarray) -> np.ndarray:
    """Normalised histogram of ``unit`` values over ``HIST_RANGE`` in ``HIST_BINS`` bins
    (values outside are counted in the end bins)."""
    lo, hi = HIST_RANGE
    h = np.histogram(np.clip(unit, lo, hi), bins=HIST_BINS, range=(lo, hi))[0]
    return (h / max(h.sum(), 1)).astype(np.float32)


def histogram_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Wasserstein-1 distance between two histograms on ``HIST_RANGE`` (in [-1, 1] units):
    the mean intensity shift it would take to turn one into the other.

    Args:
        p, q: normalised histograms (each summing to 1) of ``HIST_BINS`` bins over
            ``HIST_RANGE``, as :func:`intensity_histogram` returns them; the distance is
            symmetric in them.
    """
    width = (HIST_RANGE[1] - HIST_RANGE[0]) / HIST_BINS
    return float(np.abs(np.cumsum(p) - np.cumsum(q)).sum() * width)


def calibrate(model: NoiseLevelDenoiser, data: NoisyPatches) -> None:
    """Record on ``model`` the noise range of ``data`` and a bank of input histograms:
    whole training images, intensity-augmented and noised as in training, scaled by their
    99.5th percentile as :func:`denoise` scales its input (call after building the model
    for ``data``; :func:`~medgan.tasks.recipes.denoiser_trainer` does)."""
    model.trained_sigma.copy_(torch.tensor(data.augment.sigma, dtype=torch.float32))
    bank = []
    for i in range(model.reference_hist.shape[0]):
        clean, rng = data.clean(i, whole=True)
        noisy = data.noisy(clean, rng)[0]
        scale = max(float(np.percentile(noisy, PERCENTILE)), 1e-6)
        bank.append(intensity_histogram(noisy / scale * 2 - 1))
    model.reference_hist.copy_(torch.from_numpy(np.stack(bank)))


def training_distance(model: NoiseLevelDenoiser, unit: np.ndarray) -> float:
    """W1 distance (in [-1, 1] units) from the histogram of ``unit`` to the nearest in
    ``model.reference_hist`` (``nan`` for a model never calibrated).

    Args:
        model: a :class:`~medgan.models.denoiser.NoiseLevelDenoiser` whose buffer
            ``reference_hist`` :func:`calibrate` filled.
        unit: intensities in [-1, 1] units (scaled by the 99.5th percentile as
            :func:`denoise` scales its input), any shape: all values make one histogram.
    """
    bank = model.reference_hist.cpu().numpy()
    if not bank.any():
        return float("nan")
    h = intensity_histogram(unit)
    return min(histogram_distance(h, ref) for ref in bank)


# an input further than this from every training histogram (W1, [-1, 1] units) gets a
# warning. Measured with the default training data: the real MR of medgan.tasks.heldout lie
# at 0.02-0.24 (clean or with Rician noise 15), a constant image at 0.82, skimage's text,
# moon and page photographs at 0.44, 0.35 and 0.30, its camera and coins at 0.21 and 0.04:
# the histogram catches grossly unlike intensity distributions, not every non-MR image.
# CT in HU is caught by its negative values instead.
HISTOGRAM_WARN = 0.3


def _describe(volume: Volume) -> str:
    """The volume's source for messages: its first file (and how many more)."""
    sources = [str(s) for s in volume.meta.get("sources", [])]
    if not sources:
        return "the input volume"
    return sources[0] + (f" (and {len(sources) - 1} more files)" if len(sources) > 1 else "")


def _volume_array(
    volume: Volume, sigma: float | None, axis: int, task: str, hint: str
) -> tuple[np.ndarray, str]:
    """The checks ``denoise`` and ``denoise_ct`` share: a finite noise level (or None), a
    single-channel volume ``(X, Y, Z)`` with finite values, a valid axis. Returns the
    float32 array and the source name for messages.

    Args:
        volume: the input Volume.
        sigma: the noise level given (in the volume's units), or None.
        axis: the slice axis.
        task: the function's name, for messages.
        hint: what to do instead of a wrong shape.
    """
    where = _describe(volume)
    if sigma is not None and not (math.isfinite(sigma) and sigma >= 0):
        raise ConfigError(f"sigma must be a finite noise std >= 0, got {sigma}")
    arr = np.asarray(volume.array, np.float32)
    if arr.ndim != 3:
        raise DataError(
            f"{where}: {task} expects a single-channel volume (X, Y, Z), got shape "
            f"{arr.shape}; {hint}"
        )
    check_axis(axis)
    if not np.isfinite(arr).all():
        raise DataError(f"{where}: contains NaN or infinite values")
    return arr, where


def _noise_level(
    arr: np.ndarray,
    sigma: float | None,
    axis: int,
    where: str,
    estimator: Callable[..., float],
) -> tuple[float, bool]:
    """``(sigma, estimated)``: the given noise level, or ``estimator(arr, axis=axis)`` (a
    blind estimate) when it is None; an array too small to estimate from is a DataError
    naming ``where``."""
    if sigma is not None:
        return float(sigma), False
    try:
        return estimator(arr, axis=axis), True
    except ValueError as e:
        raise DataError(f"{where}: {e}; pass the noise level (sigma=...)") from e


@torch.no_grad()
def denoise(
    volume: Volume,
    model: NoiseLevelDenoiser,
    sigma: float | None = None,
    axis: int = 0,
    tile: int | None = None,
    overlap: int | None = None,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    ensemble: bool = False,
) -> Volume:
    """Denoise a magnitude-image volume ``(X, Y, Z)`` (or one slice ``(1, H, W)``) slice by
    slice along ``axis``; returns a Volume in the same units with the same affine.

    One scale (the volume's 99.5th percentile, ``PERCENTILE``) and one noise level for the
    whole volume, and
    whole slices unless ``tile`` is given, so the result does not depend on a tiling.
    ``sigma`` is the noise std in the volume's units; ``None`` estimates it blind
    (:func:`~medgan.tasks.noise.estimate_noise_sigma`). ``meta["denoise"]`` of the result
    reports the noise level, whether it was estimated, the change made (RMS and PSNR of
    output vs input) and the input's histogram distance to the training data; an input
    unlike the training data (noise outside the trained range, negative intensities,
    histogram distance above ``HISTOGRAM_WARN``) is logged as a warning naming the source
    and listed in ``meta["denoise"]["warnings"]``.

    Args:
        volume: a magnitude-image volume ``(X, Y, Z)`` with non-negative intensities in any
            units (a single slice as ``(1, H, W)``); DataError for another shape, NaN or
            infinite values, or a 99.5th percentile <= 0.
        model: a trained :class:`~medgan.models.denoiser.NoiseLevelDenoiser` (its buffers
            give the trained noise range and the training histograms); TypeError for
            another model.
        sigma: the noise std in the volume's units (finite, >= 0; ConfigError otherwise);
            ``None``: a blind estimate.
        axis: the slice axis (0..2).
        tile: ``None`` runs whole slices; an integer, overlapping tiles of that side (a
            multiple of ``2**model.depth``) to bound memory.
        overlap: the tiles' overlap in pixels, ``0 <= overlap < tile`` (default: half a
            tile); unused without ``tile``.
        batch_size: slices or tiles per forward pass.
        device: where the model runs (it is moved there and put in eval mode).
        ensemble: average the model over the eight flips and quarter turns of each slice
            (:class:`~medgan.tasks.translation.DihedralMean`; eight times the compute, and
            still exact on a clean input told sigma 0).
    """
    if not isinstance(model, NoiseLevelDenoiser):
        raise TypeError(f"denoise needs a NoiseLevelDenoiser, got {type(model).__name__}")
    arr, where = _volume_array(
        volume, sigma, axis, "denoise", "denoise each channel or time point as its own Volume"
    )
    scale = float(np.percentile(arr, PERCENTILE))
    if scale <= 0:
        raise DataError(
            f"{where}: the {PERCENTILE}th percentile is {scale:g}; denoise needs a magnitude "
            "image with positive intensities"
        )
    sigma, estimated = _noise_level(arr, sigma, axis, where, estimate_noise_sigma)
    unit = np.moveaxis(arr, axis, 0)[:, None] / scale * 2.0 - 1.0  # (n, 1, H, W)
    sigma_unit = 2.0 * sigma / scale
    src = np.concatenate([unit, np.full_like(unit, sigma_unit)], 1)
    out = apply_slices(src, model, tile, overlap, batch_size, device, multiple_of(model), ensemble)
    result = np.moveaxis((out[:, 0] + 1.0) * (scale / 2.0), 0, axis).astype(np.float32)

    change = float(np.sqrt(np.mean((result.astype(np.float64) - arr) ** 2)))
    dist = training_distance(model, unit)
    lo, hi = (float(v) for v in model.trained_sigma.cpu())
    sigma_255 = sigma / scale * 255.0
    report = {
        "noise_sigma": float(sigma),
        "noise_sigma_estimated": estimated,
        "noise_sigma_255": sigma_255,
        "scale": scale,
        "change_rms": change,
        "change_psnr_db": psnr_db(change, scale),
        "histogram_distance": dist,
    }
    problems = []
    if hi > 0 and not lo <= sigma_255 <= hi:
        problems.append(
            f"noise level {sigma_255:.1f} (of 255 at the {PERCENTILE}th percentile) is outside "
            f"the trained range {lo:g}-{hi:g}"
        )
    negative = float((arr < 0).mean())
    if negative > 0.01:
        problems.append(f"{100 * negative:.0f}% of voxels are negative (not a magnitude image?)")
    if dist > HISTOGRAM_WARN:
        problems.append(
            f"its intensity histogram is {dist:.2f} (W1, [-1, 1] units) from the training "
            f"data's (warning above {HISTOGRAM_WARN})"
        )
    if problems:
        log.warning("%s looks unlike the denoiser's training data: %s", where, "; ".join(problems))
    report["warnings"] = problems
    log.info("denoise %s: %s", where, report)
    return volume.with_array(result, denoise=report, enhanced_by=type(model).__name__)


# Low-dose CT ---------------------------------------------------------------------------

# Immerkaer's operator (medgan.tasks.noise) on ramp-shaped noise of unit std
# (:func:`~medgan.tasks.degradations.ramp_shaped_noise`): sqrt of the 5th percentile of the
# 8x8 block mean squares, by simulation on 64 x 128 x 128 noise. The 5th percentile (not the
# MR estimator's 25th) because phantom edges bias the 25th: measured on 8 noise-free
# phantoms + 5..40 HU ramp noise, +12..17% with the 25th, +7..9% with the 5th.
_CT_PERCENTILE = 5.0
_CT_Q_OF_RAMP = 0.8767


def estimate_ct_noise_sigma(hu: np.ndarray, axis: int = 0) -> float:
    """Blind std (HU) of CT noise with a ramp-shaped spectrum in ``hu``, a slice ``(H, W)``
    or a volume (slices along ``axis``) in HU: Immerkaer's estimate
    (:func:`~medgan.tasks.noise.estimate_noise_sigma`) without the MR foreground rule,
    over the blocks that are not exactly constant (padding outside the field of view),
    taking the 5th percentile of the block mean squares, calibrated for ramp-shaped noise
    (``_CT_Q_OF_RAMP``). It measures all the noise in the image (a full-dose scan's own
    noise included), not only what a dose reduction added. White noise reads ~16% low."""
    from medgan.tasks.noise import _BLOCK, _block_stats

    a = np.asarray(hu, np.float64)
    if a.ndim == 2:
        a, axis = a[None], 0
    if a.ndim != 3:
        raise ValueError(f"expected a 2D slice or a 3D volume, got shape {a.shape}")
    a = np.moveaxis(a, axis, 0)
    if min(a.shape[1:]) < _BLOCK + 2:
        raise ValueError(f"slices of {a.shape[1:]} are too small to estimate noise")
    msq = np.concatenate([_block_stats(s)[0] for s in a])
    msq = msq[msq > 1e-12]
    if msq.size < 16:
        raise ValueError("fewer than 16 non-constant 8x8 blocks")
    return float(np.sqrt(np.percentile(msq, _CT_PERCENTILE))) / _CT_Q_OF_RAMP


class CTNoisyPairs(Dataset):
    """``([noisy, sigma map] (2, H, W), target (1, H, W))`` in [-1, 1] units of ``window``
    for a :class:`~medgan.models.denoiser.CTDenoiser`: ramp-shaped noise (the image-domain
    low-dose model of :func:`~medgan.tasks.degradations.low_dose_ct_noise`) of a random std
    added to a slice, the target the slice itself.

    Args:
        slices: target slices ``(N, H, W)`` in HU (e.g. full-dose phantoms).
        window: HU range mapped to [-1, 1]; sigma maps are ``2 * sigma_hu / (hi - lo)``.
        sigma: range (HU) of the added noise std, uniform.
        p_clean: share of the items with no noise added (the target itself as input).
        sigma_jitter: with ``blind=False``, the relative error (log-normal std) of the sigma
            told to the model.
        blind: tell the model what :func:`estimate_ct_noise_sigma` measures on the noisy
            slice (all its noise, the target's own included, with the estimator's errors),
            as :func:`denoise_ct` does at inference without a ``sigma``; otherwise tell it
            the added std times a log-normal error of std ``sigma_jitter`` (0 for the
            clean items).
        seed: with the index, seeds each item's draw (items are reproducible).
    """

    def __init__(
        self,
        slices: np.ndarray,
        window: IntensityWindow,
        sigma: tuple[float, float] = (0.0, 40.0),
        p_clean: float = 0.1,
        sigma_jitter: float = 0.1,
        blind: bool = True,
        seed: int = 0,
    ) -> None:
        if not 0 <= sigma[0] <= sigma[1]:
            raise ConfigError(f"sigma must be (lo, hi) HU with 0 <= lo <= hi, got {sigma}")
        if not 0 <= p_clean <= 1 or sigma_jitter < 0:
            raise ConfigError("p_clean must be in [0, 1] and sigma_jitter >= 0")
        self.slices = np.asarray(slices, np.float32)
        if self.slices.ndim != 3:
            raise ValueError(f"slices must be (N, H, W), got {self.slices.shape}")
        self.window, self.sigma, self.p_clean = window, tuple(sigma), p_clean
        self.sigma_jitter, self.blind, self.seed = sigma_jitter, blind, seed
        # the blind estimate of item i is the same every epoch (items are a function of i):
        # computed once per index instead of on every __getitem__
        self._told: dict[int, float] = {}

    def __len__(self) -> int:
        return len(self.slices)

    def pair(self, i: int) -> tuple[np.ndarray, float, np.ndarray]:
        """``(noisy slice (H, W) HU, sigma told (HU), target slice (H, W) HU)`` of item ``i``."""
        from medgan.tasks.degradations import ramp_shaped_noise

        clean = self.slices[i]
        rng = np.random.default_rng([self.seed, i])
        s = 0.0 if rng.random() < self.p_clean else float(rng.uniform(*self.sigma))
        noisy = clean + s * ramp_shaped_noise(clean.shape, rng) if s > 0 else clean
        if self.blind:
            if i not in self._told:
                self._told[i] = estimate_ct_noise_sigma(noisy)
            told = self._told[i]
        else:
            told = s * float(np.exp(self.sigma_jitter * rng.standard_normal()))
        return noisy, told, clean

    def told_range(self) -> tuple[float, float]:
        """The smallest and largest sigma (HU) told to the model over the items."""
        told = [self.pair(i)[1] for i in range(len(self))]
        return float(min(told)), float(max(told))

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        noisy, told, clean = self.pair(i)
        half = (self.window.hi - self.window.lo) / 2.0
        unit = self.window.to_unit(noisy)
        src = np.stack([unit, np.full_like(unit, told / half)])
        return (
            torch.from_numpy(src.astype(np.float32)),
            torch.from_numpy(self.window.to_unit(clean)[None].astype(np.float32)),
        )


@torch.no_grad()
def denoise_ct(
    volume: Volume,
    model: CTDenoiser,
    sigma: float | None = None,
    axis: int = 0,
    tile: int | None = None,
    overlap: int | None = None,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    ensemble: bool = False,
) -> Volume:
    """Denoise a CT volume ``(X, Y, Z)`` in HU slice by slice along ``axis`` with a
    :class:`~medgan.models.denoiser.CTDenoiser`; returns a Volume in HU, same affine.

    ``sigma``: the noise std to remove, in HU; ``None`` estimates it blind for the whole
    volume (:func:`estimate_ct_noise_sigma`: all the noise in the image). Only the model's
    correction is added to the input, so HU outside the model's window keep their values.
    ``meta["denoise"]`` reports the sigma used, whether it was estimated, and the change
    (RMS in HU); a sigma outside the trained range is logged as a warning and listed in
    ``meta["denoise"]["warnings"]``. ConfigError for a negative or non-finite sigma.

    Args:
        volume: the CT volume ``(X, Y, Z)`` in HU (a single slice as ``(1, H, W)``).
        model: a trained :class:`~medgan.models.denoiser.CTDenoiser` (its buffers give the
            window and the trained noise range).
        sigma: the total noise std of the input in HU, as :func:`estimate_ct_noise_sigma`
            measures it; ``None``: that blind estimate.
        axis: the slice axis.
        tile: ``None`` runs whole slices; an integer, overlapping tiles of that side.
        overlap: the tiles' overlap in pixels (default: half a tile).
        batch_size: slices or tiles per forward pass.
        device: where the model runs.
        ensemble: average the model over the eight flips and quarter turns of each slice
            (:class:`~medgan.tasks.translation.DihedralMean`; eight times the compute).
    """
    if not isinstance(model, CTDenoiser):
        raise TypeError(f"denoise_ct needs a CTDenoiser, got {type(model).__name__}")
    arr, where = _volume_array(
        volume, sigma, axis, "denoise_ct", "denoise each series as its own Volume (in HU)"
    )
    sigma, estimated = _noise_level(arr, sigma, axis, where, estimate_ct_noise_sigma)
    lo, hi = (float(v) for v in model.window_hu.cpu())
    window = IntensityWindow(lo, hi, "HU")
    half = (hi - lo) / 2.0
    moved = np.moveaxis(arr, axis, 0)[:, None]  # (n, 1, H, W) HU
    unit = window.to_unit(moved)
    src = np.concatenate([unit, np.full_like(unit, sigma / half)], 1)
    out = apply_slices(src, model, tile, overlap, batch_size, device, multiple_of(model), ensemble)
    result = moved[:, 0] + (out[:, 0] - unit[:, 0]) * half
    result = np.moveaxis(result, 0, axis).astype(np.float32)
    s_lo, s_hi = (float(v) for v in model.trained_sigma_hu.cpu())
    problems = []
    if not s_lo <= sigma <= s_hi:
        problems.append(f"noise std {sigma:.1f} HU is outside the trained range {s_lo:g}-{s_hi:g}")
        log.warning("%s: %s", where, problems[-1])
    report = {
        "noise_sigma_hu": float(sigma),
        "noise_sigma_estimated": estimated,
        "change_rms_hu": float(np.sqrt(np.mean((result.astype(np.float64) - arr) ** 2))),
        "warnings": problems,
    }
    log.info("denoise_ct %s: %s", where, report)
    return volume.with_array(result, denoise=report, enhanced_by=type(model).__name__)
