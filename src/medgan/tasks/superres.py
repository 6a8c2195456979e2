"""Through-plane super-resolution of thick-slice volumes that does no harm.

A thick-slice acquisition has slices ``factor`` times as far apart (and as thick) as its
in-plane pixels; a :class:`~medgan.models.conditioned.ThicknessSR` restores fine slices
from them, told ``factor``, and returns its input exactly at factor 1.

- :class:`ThickSlicePairs`: a Dataset of ``([thick plane on the fine grid, factor - 1 map],
  clean plane)`` over factors 1..``max_factor`` (factor 1: identity pairs), deterministic.
- :class:`ThickSlicePatches`: the same for a 3D model, 3D patches of a volume.
- :func:`thick_volume`: simulate a thick acquisition of a Volume (slabs of ``factor``
  slices averaged), with its affine.
- :func:`resample_slabs`: a thick Volume onto the fine grid (the model's input grid), with
  its affine.
- :func:`factor_from_geometry`: spacing along the slice axis / in-plane spacing.
- :func:`superres`: the model over a Volume (``enhance`` routes a ThicknessSR here): plane
  by plane for a 2D model, over the whole volume (or overlapping cubes) for a 3D one.

Geometry convention (shared with :func:`~medgan.tasks.degradations.thick_slices`): slab j
covers fine slices ``j*f .. j*f + f - 1`` and is centred at fine index ``j*f + (f - 1) / 2``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from medgan.data.intensity import IntensityWindow
from medgan.data.tiles import tile_corners
from medgan.data.volume import Volume
from medgan.errors import ConfigError, DataError
from medgan.models.conditioned import ThicknessSR
from medgan.tasks.degradations import slabs_to_grid, thick_slices
from medgan.tasks.translation import blend_ramp, check_axis, refuse_non_finite, translate

log = logging.getLogger(__name__)

# a spacing ratio within this relative distance of an integer counts as that integer
# (DICOM/NIfTI spacings carry rounding, e.g. 2.0 vs 1.99999)
RATIO_TOLERANCE = 0.01


class ThickSlicePairs(Dataset):
    """``(source (2, H, W), target (1, H, W))`` in [-1, 1]: source = [the plane after
    :func:`~medgan.tasks.degradations.thick_slices` with ``factor`` along W (resampled back
    onto the fine grid, linear), constant ``factor - 1``], target = the clean plane.

    Item ``i`` is plane ``i // max_factor`` at factor ``i % max_factor + 1``, so every plane
    appears at every factor and no random numbers are drawn. Factor 1 items are identity
    pairs (the model returns its input there by construction; they teach the discriminator
    what thin planes look like).

    Args:
        planes: clean planes ``(N, H, W)`` in physical units, containing the slice axis as
            their last axis W (e.g. coronal planes of an axial stack, ``(A, R, S)``).
        window: the intensity map of both images to [-1, 1].
        max_factor: the largest slab factor (an integer >= 1).
    """

    def __init__(self, planes: np.ndarray, window: IntensityWindow, max_factor: int = 4) -> None:
        planes = np.asarray(planes, np.float32)
        if planes.ndim != 3 or len(planes) == 0:
            raise ValueError(f"planes must be a non-empty stack (N, H, W), got {planes.shape}")
        if int(max_factor) != max_factor or not 1 <= max_factor <= planes.shape[2]:
            raise ConfigError(
                f"max_factor must be an integer in [1, W = {planes.shape[2]}], got {max_factor}"
            )
        self.planes, self.window, self.max_factor = planes, window, int(max_factor)

    def __len__(self) -> int:
        return len(self.planes) * self.max_factor

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(i)
        clean = self.planes[i // self.max_factor]
        factor = i % self.max_factor + 1
        thick = thick_slices(clean, factor, axis=1) if factor > 1 else clean
        source = np.stack([self.window.to_unit(thick), np.full_like(thick, factor - 1.0)])
        target = self.window.to_unit(clean)[None]
        return torch.from_numpy(source.astype(np.float32)), torch.from_numpy(
            target.astype(np.float32)
        )


class ThickSlicePatches(Dataset):
    """3D patches for a ``spatial_dims=3`` :class:`~medgan.models.conditioned.ThicknessSR`:
    ``(source (2, P_x, P_y, Q), target (1, P_x, P_y, Q))`` in [-1, 1], source = [the patch of the
    whole volume made thick along its last axis (slabs of ``factor`` slices averaged, then
    resampled back onto the fine grid, linear: :func:`~medgan.tasks.degradations.thick_slices`),
    constant ``factor - 1``], target = the clean patch.

    Item ``i`` has factor ``i % max_factor + 1`` and a position and in-plane flips drawn
    from ``numpy.random.default_rng([seed, i])``, so items are reproducible. The volume is
    made thick once per factor, whole, so patches see real slab neighbours rather than
    patch-border extrapolation.

    Args:
        volume: the clean volume ``(X, Y, Z)`` in physical units, slice axis last (Z).
        window: the intensity map of both images to [-1, 1].
        patch: ``(P_x, P_y, Q)``, the patch shape (each side divisible by the model's
            ``2**depth``, at most the volume's).
        max_factor: the largest slab factor (an integer >= 1).
        n: the number of items; each is fixed by its index, so every epoch sees the same
            ``n`` patches (draw more with a larger ``n``).
        seed: with the index, seeds each item.
    """

    def __init__(
        self,
        volume: np.ndarray,
        window: IntensityWindow,
        patch: Sequence[int] = (32, 32, 32),
        max_factor: int = 4,
        n: int = 1024,
        seed: int = 0,
    ) -> None:
        vol = np.asarray(volume, np.float32)
        if vol.ndim != 3:
            raise ValueError(f"volume must be (X, Y, Z), got {vol.shape}")
        patch = tuple(int(p) for p in patch)
        if len(patch) != 3 or any(not 1 <= p <= s for p, s in zip(patch, vol.shape, strict=True)):
            raise ConfigError(f"patch must be 3 sides within the volume's {vol.shape}, got {patch}")
        if int(max_factor) != max_factor or not 1 <= max_factor <= patch[2]:
            raise ConfigError(
                f"max_factor must be an integer in [1, Q = {patch[2]}], got {max_factor}"
            )
        self.window, self.patch, self.max_factor = window, patch, int(max_factor)
        self.n, self.seed = int(n), seed
        self.clean = window.to_unit(vol).astype(np.float32)
        self.thick = [self.clean] + [
            window.to_unit(thick_slices(vol, f, axis=2)).astype(np.float32)
            for f in range(2, self.max_factor + 1)
        ]

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= i < self.n:
            raise IndexError(i)
        rng = np.random.default_rng([self.seed, i])
        factor = i % self.max_factor + 1
        corner = [
            int(rng.integers(0, s - p + 1))
            for s, p in zip(self.clean.shape, self.patch, strict=True)
        ]
        box = tuple(slice(c, c + p) for c, p in zip(corner, self.patch, strict=True))
        thick, clean = self.thick[factor - 1][box], self.clean[box]
        for ax in (0, 1):  # in-plane flips keep the slice axis and the slab geometry
            if rng.random() < 0.5:
                thick, clean = np.flip(thick, ax), np.flip(clean, ax)
        source = np.stack([thick, np.full_like(thick, factor - 1.0)])
        return torch.from_numpy(source.copy()), torch.from_numpy(clean[None].copy())


def _slab_affine(affine: np.ndarray, axis: int, scale: float) -> np.ndarray:
    """The affine after merging (``scale = f``) or splitting (``scale = 1 / f``) slices
    along ``axis`` under the slab-centre convention: the column scales by ``scale`` and the
    origin moves to the new first slice centre, ``(scale - 1) / 2`` old slices along it."""
    out = np.array(affine, np.float64)
    col = out[:3, axis].copy()
    out[:3, axis] = col * scale
    out[:3, 3] = out[:3, 3] + (scale - 1.0) / 2.0 * col
    return out


def _spatial(volume: Volume, axis: int) -> int:
    """The array axis of spatial ``axis`` (after a channel axis, if any)."""
    check_axis(axis)
    return axis + volume.array.ndim - 3


def thick_volume(volume: Volume, factor: int, axis: int) -> Volume:
    """Simulate a thick-slice acquisition: slabs of ``factor`` slices along ``axis``
    averaged (slices beyond the last whole slab dropped). The affine's column ``axis`` is
    ``factor`` times longer and the origin sits at the first slab's centre, so every slab
    keeps its physical position. Same units as ``volume``."""
    arr = thick_slices(volume.array, factor, _spatial(volume, axis), same_grid=False)
    return volume.with_array(arr, _slab_affine(volume.affine, axis, float(factor)))


def resample_slabs(volume: Volume, factor: int, axis: int, order: int = 1) -> Volume:
    """A thick ``volume`` (slices along ``axis`` ``factor`` times the fine spacing) on the
    fine grid: ``factor`` times as many slices (:func:`~medgan.tasks.degradations.slabs_to_grid`,
    spline ``order`` 1 linear or 3 cubic B-spline), the affine's column ``axis`` divided by
    ``factor`` and the origin moved to the first fine slice centre, ``(factor - 1) / (2
    factor)`` slab spacings before the first slab's centre. Inverse geometry of
    :func:`thick_volume`."""
    if int(factor) != factor or factor < 1:
        raise ConfigError(f"factor must be an integer >= 1, got {factor}")
    arr = slabs_to_grid(volume.array, int(factor), _spatial(volume, axis), order)
    return volume.with_array(arr, _slab_affine(volume.affine, axis, 1.0 / factor))


def spacing_ratio(volume: Volume, axis: int) -> float:
    """Spacing of ``volume`` along ``axis`` (0..2) / mean spacing of the other two axes
    (mm / mm)."""
    check_axis(axis)
    sp = volume.spacing
    return sp[axis] / float(np.mean([s for a, s in enumerate(sp) if a != axis]))


def factor_from_geometry(volume: Volume, axis: int) -> int:
    """The slice-thickness factor of ``volume`` along ``axis``: :func:`spacing_ratio`
    rounded; ConfigError naming the spacings when it is below 1 (``axis`` is not the slice
    axis) or not within ``RATIO_TOLERANCE`` of an integer."""
    r = spacing_ratio(volume, axis)
    f = round(r)
    sp = ", ".join(f"{s:.4g}" for s in volume.spacing)
    if r < 1 - RATIO_TOLERANCE:
        raise ConfigError(
            f"spacing along axis {axis} / mean in-plane spacing = {r:.3f} (spacing {sp} mm): "
            f"slices along axis {axis} are thinner than the in-plane pixels; the slice axis "
            f"(the thickest) is {int(np.argmax(volume.spacing))}"
        )
    if abs(r - f) > RATIO_TOLERANCE * r:
        raise ConfigError(
            f"spacing along axis {axis} / mean in-plane spacing = {r:.3f} (spacing {sp} mm) "
            "is not an integer: resample the volume in-plane (medgan.data.resample) to "
            f"an integer fraction of {volume.spacing[axis]:.4g} mm, or pass factor=..."
        )
    return int(f)


def _check_factor(factor: float, model: ThicknessSR, where: str) -> int:
    """``factor`` as an int in the model's trained range, or ConfigError naming it."""
    lo, hi = model.factor_range
    if isinstance(factor, bool) or not (
        isinstance(factor, (int, float, np.integer, np.floating))
        and math.isfinite(factor)
        and int(factor) == factor
        and factor >= 1
    ):
        raise ConfigError(f"factor must be an integer >= 1 (slab / fine spacing), got {factor!r}")
    if not factor <= hi:  # factor 1 needs no training: the model is the identity there
        raise ConfigError(
            f"factor {int(factor)} ({where}) is outside the model's trained range {lo}-{hi}; "
            "train with a larger max_factor to restore thicker slices"
        )
    return int(factor)


class _WithLevel(nn.Module):
    """``ThicknessSR`` on one-channel planes: appends the constant ``factor - 1`` channel,
    so :func:`~medgan.tasks.translation.translate` can tile it like any generator."""

    def __init__(self, model: ThicknessSR, factor: int) -> None:
        super().__init__()
        self.model, self.level, self.depth = model, float(factor - 1), model.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, h, w)`` planes (slice axis along w) in [-1, 1] -> ``(B, 1, h, w)``."""
        return self.model(torch.cat([x, torch.full_like(x, self.level)], 1))


@torch.no_grad()
def superres(
    volume: Volume,
    model: ThicknessSR,
    window: IntensityWindow,
    axis: int = 2,
    factor: int | None = None,
    views: Sequence[int] | None = None,
    tile: int | None = None,
    overlap: int | None = None,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
) -> Volume:
    """Restore fine slices along ``axis`` (the slice axis) of ``volume`` ``(X, Y, Z)``.

    Args:
        volume: in physical units; its affine gives the geometry.
        model: a trained :class:`~medgan.models.conditioned.ThicknessSR`.
        window: maps the volume's units to [-1, 1] as in training (values outside are
            clipped, as in :func:`~medgan.tasks.translation.translate`).
        axis: the slice axis (0..2): the direction in which slices are thick.
        factor: slab spacing / fine spacing. ``None`` derives it from the geometry
            (:func:`factor_from_geometry`); 1 returns the volume unchanged (its slices are
            already as thin as its pixels). A given factor must match the geometry: either
            the volume is thick (spacing ratio = ``factor``) or already on the fine grid
            (ratio 1, e.g. thick slices interpolated elsewhere).
        views: the axes along which 2D planes (containing ``axis``) are taken; the
            results are averaged. Default: both axes other than ``axis``. A 3D model sees
            the volume whole and refuses ``views``.
        tile, overlap, batch_size, device: as in :func:`~medgan.tasks.translation.translate`
            (whole planes by default: the result does not depend on a tiling). For a 3D
            model ``tile`` is the side of overlapping cubes (default: the whole volume in
            one pass) and ``batch_size`` is unused.

    Returns:
        A Volume in the input's units on the fine grid: ``factor`` times as many slices
        along ``axis`` when the input was thick, the affine's column ``axis`` divided by
        ``factor`` and its origin at the first fine slice centre (see
        :func:`resample_slabs`); the input itself at factor 1. ``meta["superres"]`` reports
        the factor, whether it came from the geometry, the spacing ratio, whether the input
        was resampled, and the views.

    Raises:
        ConfigError: a non-integer spacing ratio or factor, a factor < 1 or outside the
            model's trained range, a factor that contradicts the geometry, bad views.
        DataError: a volume with channels.
    """
    if not isinstance(model, ThicknessSR):
        raise TypeError(f"superres needs a ThicknessSR, got {type(model).__name__}")
    if volume.array.ndim != 3:
        raise DataError(
            f"superres expects a single-channel volume (X, Y, Z), got {volume.array.shape}"
        )
    check_axis(axis)
    others = [a for a in range(3) if a != axis]
    three_d = getattr(model, "spatial_dims", 2) == 3
    if three_d and views is not None:
        raise ConfigError("views apply to a 2D ThicknessSR; a 3D one sees the whole volume")
    views = (others if views is None else list(views)) if not three_d else []
    if not three_d and (
        not views or len(set(views)) != len(views) or not set(views) <= set(others)
    ):
        raise ConfigError(f"views must be distinct axes among {others} (not {axis}), got {views}")
    ratio = spacing_ratio(volume, axis)
    if factor is None:
        f = _check_factor(factor_from_geometry(volume, axis), model, "from the geometry")
    else:
        f = _check_factor(factor, model, "given")
        if not any(abs(ratio - r) <= RATIO_TOLERANCE * r for r in (1, f)):
            raise ConfigError(
                f"factor {f} does not match the geometry: spacing along axis {axis} is "
                f"{ratio:.3f} times the in-plane spacing (expected {f}: a thick volume, or 1: "
                "thick slices already on the fine grid); leave the factor out to use the geometry"
            )
    resampled = f > 1 and abs(ratio - 1) > RATIO_TOLERANCE
    report = {
        "factor": f,
        "factor_from_geometry": factor is None,
        "spacing_ratio": ratio,
        "resampled_to_fine_grid": resampled,
        "views": views if not three_d else None,
        "spatial_dims": 3 if three_d else 2,
    }
    log.info("superres along axis %d: %s", axis, report)
    if f == 1:  # already thin: nothing to restore
        return volume.with_array(volume.array.copy(), superres=report)
    fine = resample_slabs(volume, f, axis) if resampled else volume
    planes = np.moveaxis(fine.array, axis, 2)  # the slice axis last: W of every plane
    if three_d:
        unit = window.to_unit(planes).astype(np.float32)  # clipped to [-1, 1]
        out = _apply_volume(unit, model, f, tile, overlap, torch.device(device))
        result = np.moveaxis(window.from_unit(np.clip(out, -1, 1)), 2, axis).astype(np.float32)
        return fine.with_array(result, superres=report, enhanced_by=type(model).__name__)
    net = _WithLevel(model, f)
    outs = [
        translate(
            Volume(planes, np.eye(4)),
            net,
            window,
            axis=others.index(v),
            tile=tile,
            overlap=overlap,
            batch_size=batch_size,
            device=device,
        ).array
        for v in views
    ]
    result = np.moveaxis(np.mean(outs, axis=0, dtype=np.float32), 2, axis)
    return fine.with_array(result, superres=report, enhanced_by=type(model).__name__)


def _apply_volume(
    unit: np.ndarray,
    model: ThicknessSR,
    factor: int,
    tile: int | None,
    overlap: int | None,
    device: torch.device,
) -> np.ndarray:
    """A 3D ThicknessSR over a volume ``unit`` ``(X, Y, Z)`` in [-1, 1] (slice axis last):
    reflect-padded to a multiple of ``2**depth`` (and to ``tile``), whole or in cubes of
    side ``tile`` overlapping by ``overlap`` (default ``tile // 2``) blended with separable
    triangular weights; cropped back, float32, not clipped."""
    m = 2**model.depth
    if tile is not None:
        overlap = tile // 2 if overlap is None else overlap
        if tile % m or not 0 <= overlap < tile:
            raise ConfigError(
                f"tile must be a multiple of {m} and overlap in [0, tile), got tile={tile}, "
                f"overlap={overlap}"
            )
    side = lambda n: max(tile or 0, -(-n // m) * m)  # noqa: E731
    pad = [(0, side(n) - n) for n in unit.shape]
    mode = "reflect" if min(unit.shape) > max(p for _, p in pad) else "edge"
    padded = np.pad(unit, pad, mode=mode)
    model = model.eval().to(device)

    def run(block: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(block))[None, None].to(device)
        x = torch.cat([x, torch.full_like(x, float(factor - 1))], 1)
        return model(x)[0, 0].float().cpu().numpy()

    if tile is None:
        out = run(padded)
    else:
        assert overlap is not None
        r = blend_ramp(tile, overlap)
        weight = r[:, None, None] * r[None, :, None] * r[None, None, :]
        out = np.zeros(padded.shape, np.float32)
        norm = np.zeros(padded.shape, np.float32)
        for c in tile_corners(padded.shape, tile, tile - overlap):
            box = tuple(slice(a, a + tile) for a in c)
            out[box] += run(padded[box]) * weight
            norm[box] += weight
        out = out / norm
    x, y, z = unit.shape
    return refuse_non_finite(out[:x, :y, :z], model)
