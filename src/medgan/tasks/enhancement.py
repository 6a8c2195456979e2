"""Image enhancement (denoising, super-resolution) with paired image-to-image GANs.

- :class:`DegradedPairs`: a Dataset of ``(degraded, clean)`` slices in [-1, 1], the degraded
  input drawn deterministically per (seed, index) from a degradation model.
- :func:`enhance`: the one entry point that runs a trained 2D enhancement model over a
  whole :class:`~medgan.data.Volume` slice by slice (whole slices, or overlapping tiles
  blended with a separable triangular weight) and returns a Volume with the same affine,
  in the same physical units; MR denoisers go through :func:`~medgan.tasks.denoising.denoise`,
  CT denoisers through :func:`~medgan.tasks.denoising.denoise_ct`,
  slice-thickness super-resolution through :func:`~medgan.tasks.superres.superres`.
- :func:`harm_checks`: the do-no-harm figures of any enhancement model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from medgan.data.intensity import IntensityWindow
from medgan.data.volume import Volume
from medgan.errors import ConfigError
from medgan.metrics.image_quality import psnr_db
from medgan.tasks.translation import has_content_normalisation, translate

Degrade = Callable[[np.ndarray, np.random.Generator], np.ndarray]


class DegradedPairs(Dataset):
    """``(degraded, clean)`` pairs ``(1, H, W)`` in [-1, 1] from clean physical slices.

    Args:
        slices: clean slices ``(N, H, W)`` in physical units (HU for CT).
        degrade: ``f(slice, rng) -> degraded slice`` in the same units.
        window: the intensity map of both images to [-1, 1].
        seed: with the index, seeds the generator ``degrade`` draws from
            (``np.random.default_rng([seed, i])``): item ``i`` is the same on every read.
    """

    def __init__(
        self, slices: np.ndarray, degrade: Degrade, window: IntensityWindow, seed: int = 0
    ) -> None:
        self.slices, self.degrade, self.window, self.seed = (
            np.asarray(slices, np.float32),
            degrade,
            window,
            seed,
        )

    def __len__(self) -> int:
        return len(self.slices)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        clean = self.slices[i]
        bad = self.degrade(clean, np.random.default_rng([self.seed, i]))
        return (
            torch.from_numpy(self.window.to_unit(bad))[None].float(),
            torch.from_numpy(self.window.to_unit(clean))[None].float(),
        )


@torch.no_grad()
def enhance(
    volume: Volume,
    generator: nn.Module,
    window: IntensityWindow | None = None,
    axis: int = 0,
    tile: int | None = None,
    overlap: int | None = None,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    sigma: float | None = None,
    factor: int | None = None,
    ensemble: bool = False,
) -> Volume:
    """Apply a trained enhancement model to every slice along ``axis`` of ``volume``; the
    result is in the input's physical units, with the same affine.

    - a :class:`~medgan.models.denoiser.NoiseLevelDenoiser` goes through
      :func:`~medgan.tasks.denoising.denoise` (its own whole-volume scale and blind noise
      estimate, or ``sigma``; ``window`` unused), with its report in ``meta["denoise"]``;
    - a :class:`~medgan.models.denoiser.CTDenoiser` through
      :func:`~medgan.tasks.denoising.denoise_ct` (``sigma`` in HU or a blind estimate;
      ``window``: ``None`` or the model's own), report in ``meta["denoise"]``;
    - a :class:`~medgan.models.conditioned.ThicknessSR` through
      :func:`~medgan.tasks.superres.superres`: ``axis`` is the slice axis, ``factor`` the
      slab / fine spacing ratio (``None``: from the geometry; 1 returns the volume
      unchanged); a thick volume comes back on the fine grid, with its affine updated; the
      report is in ``meta["superres"]``;
    - any other generator (``(B, C, h, w)`` in [-1, 1] -> same) through
      :func:`~medgan.tasks.translation.translate` with ``window`` for input and output.

    ``tile=None`` (default) runs whole slices, so the result does not depend on a tiling;
    an integer runs overlapping tiles of that side to bound memory.

    Args:
        volume: the volume to enhance, in physical units (HU for CT): ``(X, Y, Z)``, or
            ``(C, X, Y, Z)`` for a multi-channel generator through
            :func:`~medgan.tasks.translation.translate`.
        generator: the trained enhancement model (its type chooses the path above); a
            plain generator maps ``(B, C_in, h, w)`` in [-1, 1] to ``(B, C_out, h, w)`` in
            [-1, 1].
        window: the intensity window of training, mapping the volume's units to [-1, 1]
            and back; required (ConfigError without it) except for a NoiseLevelDenoiser
            (unused) and a CTDenoiser (``None`` or the model's own window).
        axis: the axis (0..2) along which slices are taken (for a ThicknessSR, the thick
            slice axis).
        tile: ``None``: whole slices; an integer: overlapping tiles of that side, a
            multiple of the model's down-sampling (``2**depth`` for a model with an
            integer ``depth``, else 16); ConfigError for a model with instance, group or
            layer normalisation.
        overlap: the tiles' overlap in pixels (default: ``tile // 2``); unused without
            ``tile``.
        batch_size: slices or tiles per forward pass.
        device: where the model runs (it is moved there and put in eval mode).
        sigma: the noise std to remove, for a NoiseLevelDenoiser (in the volume's units)
            or a CTDenoiser (HU); ``None``: a blind estimate. ConfigError for another model.
        factor: for a ThicknessSR only (ConfigError for another model): slab spacing /
            fine spacing; ``None``: from the geometry; 1 returns the volume unchanged.
        ensemble: average the model over the eight flips and quarter turns of each slice
            (:class:`~medgan.tasks.translation.DihedralMean`, eight times the compute);
            ConfigError for a ThicknessSR, whose last in-plane axis is the slice axis.
    """
    from medgan.models.conditioned import ThicknessSR
    from medgan.models.denoiser import CTDenoiser, NoiseLevelDenoiser
    from medgan.tasks.denoising import denoise, denoise_ct
    from medgan.tasks.superres import superres

    if factor is not None and not isinstance(generator, ThicknessSR):
        raise ConfigError(
            f"factor applies to a ThicknessSR (slice-thickness super-resolution) only, not a "
            f"{type(generator).__name__}"
        )
    if ensemble and isinstance(generator, ThicknessSR):
        raise ConfigError(
            "ensemble (flips and quarter turns) does not apply to a ThicknessSR: its last "
            "in-plane axis is the slice axis, which a quarter turn would move"
        )
    slicing = {"tile": tile, "overlap": overlap, "batch_size": batch_size, "device": device}
    if isinstance(generator, NoiseLevelDenoiser):
        return denoise(volume, generator, sigma, axis, ensemble=ensemble, **slicing)
    if isinstance(generator, CTDenoiser):
        if window is not None and (window.lo, window.hi) != tuple(
            float(v) for v in generator.window_hu.cpu()
        ):
            raise ConfigError(
                f"this CTDenoiser was trained in the window {generator.window_hu.tolist()} HU, "
                f"not {window!r}; pass window=None (the model's own) or that window"
            )
        return denoise_ct(volume, generator, sigma, axis, ensemble=ensemble, **slicing)
    if window is None:
        raise ConfigError(
            f"enhance with a {type(generator).__name__} needs the intensity window its "
            "training used (window=IntensityWindow(lo, hi))"
        )
    if sigma is not None:
        raise ConfigError("sigma applies to a NoiseLevelDenoiser or CTDenoiser only")
    if isinstance(generator, ThicknessSR):
        return superres(volume, generator, window, axis, factor, **slicing)
    return translate(
        volume,
        generator,
        window,
        axis=axis,
        ensemble=ensemble,
        enhanced_by=type(generator).__name__,
        **slicing,
    )


def harm_checks(
    clean: Volume,
    generator: nn.Module,
    window: IntensityWindow | None = None,
    axis: int = 0,
    tile: int = 64,
    overlap: int = 32,
    degraded: Volume | None = None,
    **options: Any,
) -> dict[str, float]:
    """Do-no-harm figures of an enhancement model on a volume that needs no enhancement.

    Returns ``clean_psnr_db``: PSNR of ``enhance(clean, **options)`` against ``clean`` (data
    range: the window's width, or the 99.5th percentile for a denoiser), high when the model
    leaves a good image alone (999.0 when it returns it exactly); ``clean_max_diff``: the
    largest absolute change, as a fraction of that range; and ``tiling_max_diff`` /
    ``tiling_mean_diff``: the largest and mean absolute difference between tiled (``tile``,
    ``overlap``) and whole-slice inference on ``degraded`` (an input the model is meant for;
    default ``clean``), as fractions of that range (``nan`` for a model with instance, group
    or layer normalisation, which runs on whole slices only). ``options`` go to
    :func:`enhance` (e.g. ``factor`` or ``sigma``).

    Args:
        clean: a volume that needs no enhancement, in physical units (the reference of
            the ``clean_*`` figures).
        generator: the enhancement model, as :func:`enhance` takes it.
        window: the model's intensity window (:func:`enhance`); its width ``hi - lo`` is
            the data range of the figures. ``None`` (a denoiser) takes the data range as
            the 99.5th percentile of ``clean``.
        axis: the slice axis (0..2), as in :func:`enhance`.
        tile: the tile side of the tiled run (a multiple of the model's down-sampling).
        overlap: the tiles' overlap in pixels in the tiled run.
        degraded: the input of the tiling comparison (one the model is meant for, e.g. a
            noisy version of ``clean``); ``None``: ``clean``.
        **options: further arguments of :func:`enhance` (e.g. ``factor``, ``sigma``,
            ``device``, ``batch_size``).

    Returns:
        ``{"clean_psnr_db", "clean_max_diff", "tiling_max_diff", "tiling_mean_diff"}`` as
        described above.
    """
    arr = np.asarray(clean.array, np.float64)
    if window is not None:
        data_range = float(window.hi - window.lo)
    else:
        data_range = float(np.percentile(arr, 99.5))
    whole = enhance(clean, generator, window, axis=axis, **options).array
    rmse = float(np.sqrt(np.mean((whole - arr) ** 2)))
    out = {
        "clean_psnr_db": psnr_db(rmse, data_range),
        "clean_max_diff": float(np.abs(whole - arr).max()) / data_range,
    }
    if has_content_normalisation(generator):  # whole slices only
        return out | {"tiling_max_diff": float("nan"), "tiling_mean_diff": float("nan")}
    if degraded is not None:
        whole = enhance(degraded, generator, window, axis=axis, **options).array
    tiled = enhance(
        clean if degraded is None else degraded,
        generator,
        window,
        axis=axis,
        tile=tile,
        overlap=overlap,
        **options,
    ).array
    diff = np.abs(tiled.astype(np.float64) - whole) / data_range
    return out | {"tiling_max_diff": float(diff.max()), "tiling_mean_diff": float(diff.mean())}
