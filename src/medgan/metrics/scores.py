"""Streaming metrics with the torchmetrics shape: ``update(images, real=...)``,
``compute()``, ``reset()``. Images are ``(N, C, *spatial)`` in [-1, 1] on any device; the
extractor turns them into features. ``provenance()`` names the extractor and the SHA-256
of its weights file, to be stored with every published number.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
from torch import nn

from medgan.metrics import distances
from medgan.metrics.features import extract_features
from medgan.metrics.frechet import FeatureStats, frechet_distance, warn_if_small


class FeatureMetric:
    """Base: holds an extractor and runs it in batches without gradients.

    Args:
        extractor: images ``(N, C, *spatial)`` in [-1, 1] -> features ``(N, d)``
            (:func:`medgan.metrics.build_features`); put in eval mode.
        batch_size: images per forward pass of the extractor.
        device: where the extractor runs; None: where its parameters are (CPU for one
            without parameters).
    """

    def __init__(
        self, extractor: nn.Module, batch_size: int = 64, device: str | torch.device | None = None
    ):
        self.extractor = extractor.eval()
        self.batch_size = batch_size
        self.device = (
            torch.device(device)
            if device
            else next((p.device for p in extractor.parameters()), torch.device("cpu"))
        )
        self.reset()

    def reset(self) -> None:  # pragma: no cover - overridden
        """Forget every feature added (each metric defines what it keeps)."""
        raise NotImplementedError

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Features ``(N, d)`` (float64, CPU) of ``images`` ``(N, C, *spatial)`` in [-1, 1]."""
        return extract_features(self.extractor, images, self.batch_size, self.device)

    def provenance(self) -> dict[str, Any]:
        """What to store with a published number: ``extractor`` (its ``name`` attribute, else
        its class name), ``weights_sha256`` and ``published_weights`` (whether the weights
        file is the published one; None when the extractor does not say)."""
        return {
            "extractor": getattr(self.extractor, "name", type(self.extractor).__name__),
            "weights_sha256": getattr(self.extractor, "weights_sha256", None),
            "published_weights": getattr(self.extractor, "published", None),
        }


class FID(FeatureMetric):
    """Fréchet distance between real and generated feature distributions (Heusel et al. 2017).

    Real statistics may also come from a file: ``FID(extractor, real_stats=FeatureStats.load(p))``.

    Args:
        extractor: images ``(N, C, *spatial)`` in [-1, 1] -> features ``(N, d)``.
        real_stats: precomputed statistics of the real side, copied at every
            :meth:`reset` (the caller's object is never changed); None: the real side is
            built from :meth:`update` with ``real=True``.
        **kw: ``batch_size`` and ``device``, as in :class:`FeatureMetric`.
    """

    def __init__(self, extractor: nn.Module, real_stats: FeatureStats | None = None, **kw: Any):
        self._given_real = real_stats
        super().__init__(extractor, **kw)

    def reset(self) -> None:
        """Start over: fake statistics empty, real ones a fresh copy of ``real_stats`` (or
        empty when none was given)."""
        # a copy: features added to loaded real statistics must not leak into the caller's
        # object, nor survive reset()
        given = self._given_real
        self.real = copy.deepcopy(given) if given is not None else FeatureStats()
        self.fake = FeatureStats()

    def update(self, images: torch.Tensor, real: bool) -> None:
        """Add ``images`` ``(N, C, *spatial)`` in [-1, 1] to the real side (``real`` True) or
        the generated side (False)."""
        (self.real if real else self.fake).update(self.features(images))

    def update_features(self, features: torch.Tensor | np.ndarray, real: bool) -> None:
        """Add ``features`` ``(N, d)`` computed elsewhere (with the same extractor) to the real
        side (``real`` True) or the generated side (False)."""
        (self.real if real else self.fake).update(features)

    def compute(self) -> float:
        """The squared Fréchet distance (>= 0) of the two sides' feature statistics; warns
        when a side has fewer samples than feature dimensions. ValueError with fewer than 2
        samples on a side."""
        for s in (self.real, self.fake):
            if s.sum is not None:
                warn_if_small(s.n, s.sum.shape[0])
        return frechet_distance(self.real.mu, self.real.sigma, self.fake.mu, self.fake.sigma)


class _StoredFeatures(FeatureMetric):
    """Metrics that need every feature vector (k-NN, kernels)."""

    def reset(self) -> None:
        """Forget the stored features of both sides."""
        self.real_features: list[torch.Tensor] = []
        self.fake_features: list[torch.Tensor] = []

    def update(self, images: torch.Tensor, real: bool) -> None:
        """Add ``images`` ``(N, C, *spatial)`` in [-1, 1] to the real side (``real`` True) or
        the generated side (False)."""
        (self.real_features if real else self.fake_features).append(self.features(images))

    def update_features(self, features: torch.Tensor | np.ndarray, real: bool) -> None:
        """Add ``features`` ``(N, d)`` computed elsewhere (with the same extractor) to the real
        side (``real`` True) or the generated side (False)."""
        (self.real_features if real else self.fake_features).append(
            torch.as_tensor(features).double()
        )

    def _sets(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.real_features or not self.fake_features:
            raise ValueError("update() with real=True and real=False images first")
        return torch.cat(self.fake_features).numpy(), torch.cat(self.real_features).numpy()


class KID(_StoredFeatures):
    """Kernel Inception Distance: unbiased MMD^2, cubic polynomial kernel, random subsets.

    Args:
        extractor: images ``(N, C, *spatial)`` in [-1, 1] -> features ``(N, d)``.
        subsets: number of random subsets averaged.
        subset_size: samples per subset (clipped, with a warning, to the smaller side).
        seed: seeds the subsets' draws (torch-fidelity's default, 2020).
        **kw: ``batch_size`` and ``device``, as in :class:`FeatureMetric`.
    """

    def __init__(
        self,
        extractor: nn.Module,
        subsets: int = 100,
        subset_size: int = 1000,
        seed: int = 2020,
        **kw: Any,
    ):
        self.subsets, self.subset_size, self.seed = subsets, subset_size, seed
        super().__init__(extractor, **kw)

    def compute(self) -> dict[str, float]:
        """``{"kid_mean", "kid_std"}`` over the random subsets
        (:func:`~medgan.metrics.distances.kid`); ValueError unless both sides have features."""
        fake, real = self._sets()
        return distances.kid(fake, real, self.subsets, self.subset_size, self.seed)


class PrecisionRecall(_StoredFeatures):
    """Improved precision and recall (Kynkäänniemi et al. 2019), k = 3.

    Args:
        extractor: images ``(N, C, *spatial)`` in [-1, 1] -> features ``(N, d)``.
        k: the neighbour whose distance is each sample's manifold radius.
        **kw: ``batch_size`` and ``device``, as in :class:`FeatureMetric`.
    """

    def __init__(self, extractor: nn.Module, k: int = 3, **kw: Any):
        self.k = k
        super().__init__(extractor, **kw)

    def compute(self) -> dict[str, float]:
        """``{"precision", "recall"}``, each in [0, 1]; ValueError unless both sides have
        features."""
        return distances.precision_recall(*self._sets(), k=self.k)


class DensityCoverage(_StoredFeatures):
    """Density and coverage (Naeem et al. 2020), k = 5.

    Args:
        extractor: images ``(N, C, *spatial)`` in [-1, 1] -> features ``(N, d)``.
        k: the neighbour whose distance is each real sample's radius.
        **kw: ``batch_size`` and ``device``, as in :class:`FeatureMetric`.
    """

    def __init__(self, extractor: nn.Module, k: int = 5, **kw: Any):
        self.k = k
        super().__init__(extractor, **kw)

    def compute(self) -> dict[str, float]:
        """``{"density", "coverage"}`` (density >= 0, can exceed 1; coverage in [0, 1]);
        ValueError unless both sides have features."""
        return distances.density_coverage(*self._sets(), k=self.k)


class InceptionScore(FeatureMetric):
    """Inception Score of generated images from a logits extractor
    (``InceptionV3Features(output="logits")``), 10 splits.

    Args:
        extractor: images -> class logits ``(N, classes)``.
        splits: the generated set is scored in this many parts (mean and std over them).
        seed: seeds the shuffle before splitting.
        **kw: ``batch_size`` and ``device``, as in :class:`FeatureMetric`.
    """

    def __init__(self, extractor: nn.Module, splits: int = 10, seed: int = 2020, **kw: Any):
        self.splits, self.seed = splits, seed
        super().__init__(extractor, **kw)

    def reset(self) -> None:
        """Forget the stored logits."""
        self.logits: list[torch.Tensor] = []

    def update(self, images: torch.Tensor, real: bool = False) -> None:
        """Add generated ``images`` ``(N, C, H, W)`` in [-1, 1] (``real`` is ignored: IS
        scores generated images only)."""
        self.logits.append(self.features(images))

    def compute(self) -> dict[str, float]:
        """``{"is_mean", "is_std"}`` over the splits (shuffled with ``seed``); IS is in
        [1, number of classes]."""
        return distances.inception_score(
            torch.cat(self.logits).numpy(), self.splits, True, self.seed
        )
