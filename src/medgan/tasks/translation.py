"""Image-to-image translation of whole Volumes (enhancement, missing-modality synthesis).

:func:`translate` runs a trained 2D generator over every slice of a
:class:`~medgan.data.Volume` along one axis: whole slices by default (reflect-padded to the
generator's down-sampling multiple), so the result does not depend on a tiling; or, to bound
memory, in overlapping tiles blended with a separable triangular (linear) weight
(:func:`apply_slices`, shared with :func:`medgan.tasks.denoising.denoise`). With
``ensemble=True`` each slice goes through :class:`DihedralMean`: the mean of the generator
over the eight flips and quarter turns of its input, mapped back.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from medgan.data.intensity import IntensityWindow
from medgan.data.tiles import tile_corners
from medgan.data.volume import Volume
from medgan.errors import ConfigError, DataError


def blend_ramp(n: int, overlap: int) -> np.ndarray:
    """Blend weights ``(n,)`` float32 of one tile side of ``n`` pixels: 1 inside, rising
    linearly over the first ``overlap`` pixels and falling over the last (never 0, so every
    pixel is covered); tiles are weighted by the outer product of their sides' ramps."""
    w = np.ones(n, np.float32)
    if overlap > 0:
        r = (np.arange(overlap, dtype=np.float32) + 1) / (overlap + 1)
        w[:overlap], w[-overlap:] = r, r[::-1]
    return w


_CONTENT_NORMS = (
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.GroupNorm,
    nn.LayerNorm,
)


def has_content_normalisation(model: nn.Module) -> bool:
    """True when ``model`` normalises by statistics of its input (instance, group or layer
    norm): its output on a tile then depends on what else is in the tile."""
    return any(isinstance(m, _CONTENT_NORMS) for m in model.modules())


def _pad_to(unit: np.ndarray, multiple: int, min_side: int) -> tuple[np.ndarray, int, int]:
    """Reflect-pad the last two axes up to a multiple of ``multiple`` and at least
    ``min_side`` (edge-pad when a side is too short to reflect)."""
    h, w = unit.shape[-2:]
    H = max(min_side, -(-h // multiple) * multiple)
    W = max(min_side, -(-w // multiple) * multiple)
    pad = ((0, 0), (0, 0), (0, H - h), (0, W - w))
    return np.pad(unit, pad, mode="reflect" if min(h, w) > 1 else "edge"), h, w


class DihedralMean(nn.Module):
    """Geometric self-ensemble of a 2D image-to-image ``generator`` (Timofte et al. 2016,
    "Seven ways to improve example-based single image super resolution"):

        y = 1/8 * sum_{t in D4} t^-1( g( t(x) ) )

    over the eight elements t of the dihedral group of the square (quarter turns, each with
    and without a flip) acting on the last two axes of ``x`` ``(B, C, H, W)``. The sum is
    accumulated in float64, so for a generator that is exact on some input (a residual
    denoiser told sigma 0 returns its input) the mean is exact there too; it costs eight
    forward passes. Only for models
    without a preferred in-plane direction (denoisers, modality translation), not for a
    model whose last axis means something (slice-thickness SR).
    """

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The mean of the generator over the eight transforms of ``x`` ``(B, C, H, W)``,
        each mapped back: ``(B, C_out, H, W)``."""
        total: torch.Tensor | None = None
        for flip in (False, True):
            xf = x.flip(-1) if flip else x
            for k in range(4):
                y = torch.rot90(self.generator(torch.rot90(xf, k, (-2, -1))), -k, (-2, -1))
                y = (y.flip(-1) if flip else y).double()
                total = y if total is None else total + y
        assert total is not None
        return (total / 8.0).to(x.dtype)


@torch.no_grad()
def apply_slices(
    unit: np.ndarray,
    generator: nn.Module,
    tile: int | None = None,
    overlap: int | None = None,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    multiple: int = 16,
    ensemble: bool = False,
) -> np.ndarray:
    """Run a 2D ``generator`` over slices ``unit`` ``(n, C_in, H, W)`` -> ``(n, C_out, H, W)``.

    ``tile=None`` feeds whole slices, reflect-padded to a multiple of ``multiple`` (the
    generator's total down-sampling) and cropped back: the result then does not depend on
    any tiling. An integer ``tile`` (a multiple of ``multiple``) bounds memory instead: tiles
    overlapping by ``overlap`` pixels (default ``tile // 2``), blended with separable
    triangular weights; for a
    generator without per-image normalisation this matches whole slices up to the
    receptive-field effects at tile borders, which the blend weights down.

    ``batch_size`` slices (or tiles) run at once, on ``device`` (the generator is moved
    there and put in eval mode); the result is float32 on the CPU, not clipped.
    ``ensemble`` True runs :class:`DihedralMean` of the generator (eight passes per slice
    or tile).
    """
    generator = generator.eval().to(device)
    net = DihedralMean(generator) if ensemble else generator
    n = unit.shape[0]
    if tile is None:
        padded, h, w = _pad_to(unit, multiple, multiple)
        outs = []
        for k0 in range(0, n, batch_size):
            t = torch.from_numpy(np.ascontiguousarray(padded[k0 : k0 + batch_size]))
            outs.append(net(t.to(device)).float().cpu().numpy())
        return refuse_non_finite(np.concatenate(outs)[:, :, :h, :w], generator)
    if has_content_normalisation(generator):
        raise ConfigError(
            f"{type(generator).__name__} has instance normalisation (or group/layer norm), "
            "whose statistics change with each tile's content: run it on whole slices "
            "(tile=None), or train it without normalisation (e.g. pix2pix_trainer(..., "
            "norm='none')) to tile"
        )
    overlap = tile // 2 if overlap is None else overlap
    if tile % multiple or not 0 <= overlap < tile:
        raise ConfigError(
            f"tile must be a multiple of {multiple} and overlap in [0, tile), got "
            f"tile={tile}, overlap={overlap}"
        )
    padded, h, w = _pad_to(unit, multiple, tile)
    H, W = padded.shape[2:]
    weight = np.outer(blend_ramp(tile, overlap), blend_ramp(tile, overlap))
    coords = tile_corners((H, W), tile, tile - overlap)
    norm = np.zeros((H, W), np.float32)
    for y, x in coords:
        norm[y : y + tile, x : x + tile] += weight
    out: np.ndarray | None = None
    for k0 in range(0, n, batch_size):
        block = padded[k0 : k0 + batch_size]
        for y, x in coords:
            t = torch.from_numpy(np.ascontiguousarray(block[:, :, y : y + tile, x : x + tile]))
            pred = net(t.to(device)).float().cpu().numpy()
            if out is None:
                out = np.zeros((n, pred.shape[1], H, W), np.float32)
            out[k0 : k0 + batch_size, :, y : y + tile, x : x + tile] += pred * weight
    assert out is not None
    return refuse_non_finite((out / norm)[:, :, :h, :w], generator)


def refuse_non_finite(out: np.ndarray, generator: nn.Module) -> np.ndarray:
    """``out`` itself when every value is finite; otherwise a DataError naming
    ``generator``, raised before anything is saved (damaged weights, an unsuited input)."""
    bad = int(np.count_nonzero(~np.isfinite(out)))
    if bad:
        raise DataError(
            f"{type(generator).__name__} produced {bad} NaN/inf value(s); nothing was written. "
            "Check the checkpoint's weights and the input's intensity window"
        )
    return out


@torch.no_grad()
def translate(
    volume: Volume,
    generator: nn.Module,
    window: IntensityWindow,
    out_window: IntensityWindow | None = None,
    axis: int = 0,
    tile: int | None = None,
    overlap: int | None = None,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    ensemble: bool = False,
    **meta: Any,
) -> Volume:
    """Translate ``volume`` slice by slice with a 2D ``generator``.

    Args:
        volume: ``(X, Y, Z)`` or ``(C_in, X, Y, Z)`` in physical units.
        generator: ``(B, C_in, h, w)`` in [-1, 1] -> ``(B, C_out, h, w)`` in [-1, 1].
        window: maps the input's units to [-1, 1].
        out_window: maps [-1, 1] back to the output's units (default ``window``: same units).
        axis: spatial axis (0..2) along which slices are taken.
        tile, overlap: ``None`` (default) runs whole slices; an integer runs tiles of that
            side overlapping by ``overlap`` pixels (default ``tile // 2``; see
            :func:`apply_slices`).
        batch_size: slices (or tiles) per forward pass.
        device: where the generator runs (it is moved there and put in eval mode).
        ensemble: average the generator over the eight flips and quarter turns of each
            slice (:class:`DihedralMean`; eight times the compute).
        meta: entries added to the result's meta.

    Returns:
        A Volume with the same affine: ``(X, Y, Z)`` when ``C_out == 1``, else
        ``(C_out, X, Y, Z)``, in ``out_window``'s units.
    """
    check_axis(axis)
    out_window = out_window or window
    arr = np.asarray(volume.array, np.float32)
    arr = arr if arr.ndim == 4 else arr[None]
    unit = np.moveaxis(window.to_unit(arr), axis + 1, 0)  # (n, C_in, H, W)
    out = np.clip(
        apply_slices(
            unit, generator, tile, overlap, batch_size, device, multiple_of(generator), ensemble
        ),
        -1,
        1,
    )
    result = np.moveaxis(out_window.from_unit(out), 0, axis + 1).astype(np.float32)
    if result.shape[0] == 1:
        result = result[0]
    return volume.with_array(result, **meta)


def check_axis(axis: int) -> None:
    """Refuse (ConfigError) a slicing ``axis`` that is not one of the three spatial axes
    0, 1, 2."""
    if not 0 <= axis <= 2:
        raise ConfigError(f"axis must be a spatial axis 0, 1 or 2, got {axis}")


def multiple_of(generator: nn.Module) -> int:
    """The side every input of ``generator`` must divide into: ``2**depth`` for U-Nets
    (an integer ``depth`` attribute), else 16."""
    depth = getattr(generator, "depth", None)
    return 2 ** int(depth) if isinstance(depth, int) else 16
