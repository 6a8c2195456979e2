"""Scores for 3D volumes from 2D feature extractors (2.5D): compute the metric on all
axial, coronal and sagittal slices separately and average the three scores.

Array axes of ``(N, C, D, H, W)`` volumes are taken as (axial = along D, coronal = along H,
sagittal = along W), which holds for medgan's canonical RAS volumes transposed to
(S, A, R) order; pass ``views`` to name other axes. For a native 3D encoder, wrap it in
:class:`~medgan.metrics.features.ModuleFeatures` and use the metric on volumes directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

VIEWS = {"axial": 2, "coronal": 3, "sagittal": 4}


def slices_along(volumes: torch.Tensor, axis: int) -> torch.Tensor:
    """``volumes`` ``(N, C, D, H, W)`` -> every slice along ``axis`` (2, 3 or 4) as
    ``(N * S, C, h, w)``, volume by volume."""
    if volumes.dim() != 5:
        raise ValueError(f"expected volumes (N, C, D, H, W), got {tuple(volumes.shape)}")
    moved = volumes.movedim(axis, 1)  # (N, S, C, h, w)
    return moved.reshape(-1, *moved.shape[2:])


def score_25d(
    make_metric: Callable[[], Any],
    real: torch.Tensor,
    fake: torch.Tensor,
    views: dict[str, int] = VIEWS,
    resize: int | None = None,
) -> dict[str, Any]:
    """The score per view and their mean (``"mean"``; per key for dict-valued metrics).

    Args:
        make_metric: builds a fresh metric with ``update(images, real=...)`` and
            ``compute()`` (``lambda: FID(extractor)``, ``KID(...)``...), one per view.
        real: real volumes ``(N, C, D, H, W)`` in [-1, 1].
        fake: generated volumes ``(M, C, D, H, W)`` in [-1, 1].
        views: view name -> array axis (2, 3 or 4) along which that view's slices are taken.
        resize: side in pixels to which every slice is resized (bilinear); None keeps the
            slices' sizes.
    """
    out: dict[str, Any] = {}
    for name, axis in views.items():
        m = make_metric()
        for x, is_real in ((real, True), (fake, False)):
            s = slices_along(x, axis)
            if resize is not None:
                s = torch.nn.functional.interpolate(
                    s, size=(resize, resize), mode="bilinear", align_corners=False
                )
            m.update(s, real=is_real)
        out[name] = m.compute()
    scores = [out[v] for v in views]
    if isinstance(scores[0], dict):
        out["mean"] = {k: sum(s[k] for s in scores) / len(scores) for k in scores[0]}
    else:
        out["mean"] = sum(scores) / len(scores)
    return out
