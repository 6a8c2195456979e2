"""Streaming feature statistics and the Fréchet distance (Heusel et al. 2017, eq. 6; Dowson &
Landau 1982):

    d^2 = ||mu1 - mu2||^2 + Tr(S1) + Tr(S2) - 2 Tr((S1 S2)^{1/2})

``Tr((S1 S2)^{1/2})`` is computed as ``sum sqrt(eig(B^T S2 B))`` for any B with
``B B^T = S1``: ``B^T S2 B`` is symmetric positive semi-definite and similar to ``S1 S2``, so
its eigenvalues (float64, values only) replace a general matrix square root. B is the
Cholesky factor when S1 is positive definite, else ``S1^{1/2}`` from an eigendecomposition
(rank-deficient covariances, N < d). Eigenvalues are clipped at 0, so the result is always
real and finite.
"""

from __future__ import annotations

import logging
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

from medgan.errors import ConfigError, DataError

log = logging.getLogger(__name__)


class FeatureStats:
    """Mean and covariance of a feature stream, with float64 sums: memory O(d^2), not O(N).

    ``update(features (N, d))``; ``merge(other)`` adds another stream (e.g. another rank);
    ``mu``, ``sigma`` (unbiased, N - 1, as ``np.cov``); ``save``/``load`` an ``.npz`` with
    ``mu`` and ``sigma`` keys like pytorch-fid's, plus the sample count ``n``.

    Loaded statistics keep the file's ``mu`` and ``sigma`` exactly until features are added;
    then the sums are rebuilt from them (``sum = n mu``, ``sum_outer = (n - 1) sigma +
    n mu mu^T``), so updating or merging gives the statistics of all samples together (to
    float64 rounding). Files without ``n`` (pytorch-fid's) cannot take more features.

    Args:
        dim: the feature dimension d, to allocate the sums now; None allocates them on the
            first :meth:`update`.
    """

    def __init__(self, dim: int | None = None) -> None:
        self.n = 0
        self.sum = None if dim is None else np.zeros(dim)
        self.sum_outer = None if dim is None else np.zeros((dim, dim))
        self._mu: np.ndarray | None = None
        self._sigma: np.ndarray | None = None
        self._source: Path | None = None  # the file the frozen mu/sigma came from

    def _sums(self) -> tuple[int, np.ndarray | None, np.ndarray | None]:
        """``(n, sum, sum_outer)``, rebuilt from loaded ``mu`` and ``sigma`` if need be."""
        if self._mu is None:
            return self.n, self.sum, self.sum_outer
        if self.n < 2:
            raise ConfigError(
                f"{self._source}: these statistics have no sample count (pytorch-fid's .npz "
                "files store only mu and sigma), so features cannot be added to them: the real "
                "side is frozen from the file; compute it from the images instead"
            )
        mu = self._mu
        return self.n, self.n * mu, (self.n - 1) * self._sigma + self.n * np.outer(mu, mu)

    def _thaw(self) -> None:
        """Turn loaded ``mu``/``sigma`` into sums that further features add to."""
        if self._mu is not None:
            self.n, self.sum, self.sum_outer = self._sums()
            self._mu = self._sigma = None

    def update(self, features: torch.Tensor | np.ndarray) -> None:
        """Add a batch of ``features`` ``(N, d)`` (a tensor on any device, or an array),
        summed in float64. ValueError unless 2-D; ConfigError when the statistics were loaded
        from a file without a sample count."""
        self._thaw()
        f = (
            features.detach().cpu().double().numpy()
            if isinstance(features, torch.Tensor)
            else np.asarray(features, np.float64)
        )
        if f.ndim != 2:
            raise ValueError(f"features must be (N, d), got {f.shape}")
        if self.sum is None:
            self.sum, self.sum_outer = np.zeros(f.shape[1]), np.zeros((f.shape[1],) * 2)
        self.n += f.shape[0]
        self.sum += f.sum(0)
        self.sum_outer += f.T @ f

    def merge(self, other: FeatureStats) -> FeatureStats:
        """Add ``other``'s samples to these statistics (``other`` is unchanged); returns
        self. Loaded statistics on either side take part through their rebuilt sums."""
        n, total, outer = other._sums()
        if n:
            self._thaw()
            if self.sum is None:
                self.sum, self.sum_outer = np.zeros_like(total), np.zeros_like(outer)
            self.n += n
            self.sum += total
            self.sum_outer += outer
        return self

    def all_reduce(self) -> None:
        """Sum the statistics over all processes of the default torch.distributed group."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            if self._mu is not None:
                raise ConfigError(
                    f"{self._source}: statistics loaded from a file are the same on every "
                    "process; all_reduce would count them once per process"
                )
            t = torch.from_numpy(np.concatenate([[self.n], self.sum, self.sum_outer.ravel()]))
            dist.all_reduce(t)
            d = self.sum.shape[0]
            self.n, self.sum, self.sum_outer = (
                int(t[0]),
                t[1 : 1 + d].numpy(),
                t[1 + d :].numpy().reshape(d, d),
            )

    @property
    def mu(self) -> np.ndarray:
        """The mean feature ``(d,)``, float64; ValueError when no features were added."""
        if self._mu is not None:
            return self._mu
        if self.n == 0:
            raise ValueError("no features were added: FID needs at least 2 images per side")
        return self.sum / self.n

    @property
    def sigma(self) -> np.ndarray:
        """The unbiased covariance ``(d, d)`` (divided by N - 1, as ``np.cov``), float64;
        ValueError with fewer than 2 samples."""
        if self._sigma is not None:
            return self._sigma
        if self.n < 2:
            raise ValueError(
                f"FID needs at least 2 images per side (the covariance of {self.n} sample is "
                "undefined); use hundreds to thousands for a stable score"
            )
        mu = self.mu
        return (self.sum_outer - self.n * np.outer(mu, mu)) / (self.n - 1)

    def save(self, path: str | Path) -> Path:
        """Write ``mu``, ``sigma`` and ``n`` to ``path`` (``.npz`` appended when missing, as
        numpy does); returns the path written."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        np.savez(path, mu=self.mu, sigma=self.sigma, n=self.n)
        return path

    @classmethod
    def load(cls, path: str | Path) -> FeatureStats:
        """Statistics from an ``.npz`` with ``mu`` ``(d,)`` and ``sigma`` ``(d, d)`` (ours, or
        pytorch-fid's), and ``n`` when present (0 otherwise: no features can be added).

        Args:
            path: the ``.npz`` file (as written by :meth:`save`, or by pytorch-fid).

        Raises:
            DataError: the file cannot be read, lacks ``mu`` or ``sigma``, or their shapes
                are not a mean and its covariance.
        """
        path = Path(path)
        try:
            with np.load(path) as z:
                mu, sigma = z["mu"], z["sigma"]
                n = int(z["n"]) if "n" in z.files else 0
        except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise DataError(f"{path}: not a statistics file with 'mu' and 'sigma' ({e})") from None
        s = cls()
        if mu.ndim != 1 or sigma.shape != (mu.size, mu.size):
            raise DataError(
                f"{path}: mu {mu.shape} and sigma {sigma.shape} are not a mean (d,) and a "
                "covariance (d, d)"
            )
        s._mu, s._sigma, s.n = mu.astype(np.float64), sigma.astype(np.float64), n
        s._source = path
        return s


def _sqrt_psd(m: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr((S1 S2)^{1/2}) (float, >= 0) for symmetric PSD ``sigma1`` = S1 and ``sigma2`` = S2,
    both ``(d, d)`` (see the module docstring)."""
    s1 = np.asarray(sigma1, np.float64)
    try:
        b = np.linalg.cholesky((s1 + s1.T) / 2)
    except np.linalg.LinAlgError:  # singular (N < d): symmetric square root instead
        b = _sqrt_psd(s1)
    m = b.T @ np.asarray(sigma2, np.float64) @ b
    w = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(w, 0, None)).sum())


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Squared Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), float64, >= 0 up
    to rounding (the FID when the statistics are of Inception pool3 features).

    Args:
        mu1: the first mean ``(d,)``.
        sigma1: the first covariance ``(d, d)``, symmetric positive semi-definite.
        mu2: the second mean ``(d,)``.
        sigma2: the second covariance ``(d, d)``.

    Raises:
        ValueError: the shapes do not match.
    """
    mu1, mu2 = (
        np.atleast_1d(np.asarray(mu1, np.float64)),
        np.atleast_1d(np.asarray(mu2, np.float64)),
    )
    s1, s2 = (
        np.atleast_2d(np.asarray(sigma1, np.float64)),
        np.atleast_2d(np.asarray(sigma2, np.float64)),
    )
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(
            f"shape mismatch: mu {mu1.shape} vs {mu2.shape}, sigma {s1.shape} vs {s2.shape}"
        )
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(s1, s2))


def warn_if_small(n: int, dim: int, what: str = "FID") -> None:
    """Warn when ``n`` < ``dim``: covariances of N < d samples are rank-deficient and FID
    is strongly biased upward; ``what`` names the score in the warning."""
    if n < dim:
        warnings.warn(
            f"{what} from {n} samples of {dim}-d features: the covariance is rank-deficient "
            f"and the score is biased by sample size. Compare only at equal N, use KID (unbiased), "
            f"fid_infinity(), or lower-dimensional features (e.g. the domain encoder).",
            stacklevel=3,
        )


def fid_infinity(
    fake_features: np.ndarray,
    real_stats: FeatureStats,
    sizes: tuple[int, ...] | None = None,
    seed: int = 0,
) -> tuple[float, list[tuple[int, float]]]:
    """FID extrapolated to infinitely many samples (Chong & Forsyth 2020): FID_N is linear in
    1/N; fit FID at several N on random subsets of the fake features and return the intercept
    with the (N, FID_N) points used.

    Args:
        fake_features: generated features ``(N, d)``.
        real_stats: the real side's statistics (all of them, not subsampled).
        sizes: the subset sizes N; None: 8 sizes from 20% to 100% of the fake features.
        seed: seeds the subsets' draws (numpy ``default_rng``).
    """
    f = np.asarray(fake_features, np.float64)
    n = len(f)
    sizes = sizes or tuple(sorted({max(2, int(n * r)) for r in np.linspace(0.2, 1.0, 8)}))
    rng = np.random.default_rng(seed)
    points = []
    for m in sizes:
        idx = rng.choice(n, m, replace=False)
        s = FeatureStats()
        s.update(f[idx])
        points.append((m, frechet_distance(s.mu, s.sigma, real_stats.mu, real_stats.sigma)))
    x = np.array([1.0 / m for m, _ in points])
    y = np.array([v for _, v in points])
    slope, intercept = np.polyfit(x, y, 1)
    return float(intercept), points
