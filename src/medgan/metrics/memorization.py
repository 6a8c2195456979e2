"""Did the generator copy training patients? Nearest-neighbour distances of generated
samples to the training set, compared with those of held-out real images to the training
set, in feature space and in pixel space.

If the generator generalises, a generated image is on average no closer to its nearest
training image than an unseen real image is. The audit flags the run when the median
generated-to-train distance is below the median held-out-to-train distance (ratio < 1,
in either space) and reports the closest (generated, training) pairs for a human to look at.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from medgan.metrics.features import extract_features


def _nn(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """For each row of ``a``, the distance to and index of its nearest row of ``b``."""
    d = torch.cdist(a.double(), b.double())
    return d.min(dim=1)


@dataclass
class AuditReport:
    """What :func:`memorization_audit` found; distances are Euclidean, in feature space or
    between flattened images in [-1, 1] (pixel space).

    Attributes:
        feature_ratio: median nearest-training distance of the generated samples over that
            of the held-out images, in feature space (< 1: closer than unseen data).
        pixel_ratio: the same ratio in pixel space.
        median_gen_train: median generated-to-nearest-training distance, keys "feature"
            and "pixel".
        median_heldout_train: median held-out-to-nearest-training distance, same keys.
        closest_pairs: the ``top`` closest pairs in feature space, nearest first, as
            ``(generated index, training index, feature distance)``.
        flagged: True when either ratio is below 1.
    """

    feature_ratio: float  # median d(gen, train) / median d(held-out, train) in feature space
    pixel_ratio: float
    median_gen_train: dict[str, float]
    median_heldout_train: dict[str, float]
    closest_pairs: list[tuple[int, int, float]] = field(default_factory=list)  # (gen, train, dist)
    flagged: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The fields by name (values as stored, not copied)."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def memorization_audit(
    generated: Tensor,
    train: Tensor,
    held_out: Tensor,
    extractor: nn.Module,
    top: int = 8,
    batch_size: int = 64,
) -> AuditReport:
    """Audit generated samples against the training set, with held-out images as reference.

    Args:
        generated: generated samples ``(N, C, H, W)`` in [-1, 1].
        train: the training images ``(M, C, H, W)`` in [-1, 1], the same size.
        held_out: real images not trained on ``(K, C, H, W)`` in [-1, 1], the same size.
        extractor: images in [-1, 1] -> features ``(n, d)``
            (:func:`medgan.metrics.build_features`).
        top: how many closest (generated, training) pairs to report.
        batch_size: images per forward pass of the extractor.
    """

    f_gen, f_train, f_held = (
        extract_features(extractor, x, batch_size) for x in (generated, train, held_out)
    )
    d_gen_f, idx_f = _nn(f_gen, f_train)
    d_held_f, _ = _nn(f_held, f_train)
    p_gen, p_train, p_held = (t.flatten(1) for t in (generated, train, held_out))
    d_gen_p, _ = _nn(p_gen, p_train)
    d_held_p, _ = _nn(p_held, p_train)
    med = lambda t: float(t.median())  # noqa: E731
    feature_ratio = med(d_gen_f) / max(med(d_held_f), 1e-12)
    pixel_ratio = med(d_gen_p) / max(med(d_held_p), 1e-12)
    order = torch.argsort(d_gen_f)[:top]
    pairs = [(int(i), int(idx_f[i]), float(d_gen_f[i])) for i in order]
    return AuditReport(
        feature_ratio=feature_ratio,
        pixel_ratio=pixel_ratio,
        median_gen_train={"feature": med(d_gen_f), "pixel": med(d_gen_p)},
        median_heldout_train={"feature": med(d_held_f), "pixel": med(d_held_p)},
        closest_pairs=pairs,
        flagged=feature_ratio < 1.0 or pixel_ratio < 1.0,
    )


def save_closest_pairs(
    report: AuditReport, generated: Tensor, train: Tensor, path: str | Path
) -> Path:
    """A PNG grid: each row a generated sample and its nearest training image.

    Args:
        report: the audit whose ``closest_pairs`` are drawn.
        generated: the generated samples ``(N, C, H, W)`` in [-1, 1] given to the audit.
        train: the training images ``(M, C, H, W)`` in [-1, 1] given to the audit.
        path: the PNG file to write.

    Returns:
        The path written.
    """
    from medgan.images import save_grid

    rows = [torch.stack([generated[g], train[t]]) for g, t, _ in report.closest_pairs]
    return save_grid(torch.cat(rows), path, nrow=2)
