"""Sample-based distances between feature sets (float64 numpy, features ``(N, d)``).

- KID (Binkowski et al. 2018): unbiased MMD^2 with the cubic polynomial kernel
  k(x, y) = (x.y / d + 1)^3, averaged over random subsets (mean, std);
- precision / recall (Kynkäänniemi et al. 2019, k = 3): a sample is "inside" a set's
  manifold if it lies within the k-NN radius of some member of that set;
- density / coverage (Naeem et al. 2020, k = 5).

Subsets are drawn like torch-fidelity's (``numpy.random.RandomState(seed).choice`` without
replacement, first set then second, per subset), so numbers agree on the same features.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch


def polynomial_kernel(
    x: np.ndarray, y: np.ndarray, degree: int = 3, coef0: float = 1.0
) -> np.ndarray:
    """k(x, y) = (x.y / d + coef0)^degree: the ``(M, N)`` kernel matrix of KID.

    Args:
        x: features ``(M, d)``.
        y: features ``(N, d)``.
        degree: the polynomial's degree (3 in KID).
        coef0: the constant added to the scaled dot product (1 in KID).
    """
    return (x @ y.T / x.shape[1] + coef0) ** degree


def mmd2_unbiased(k_xx: np.ndarray, k_xy: np.ndarray, k_yy: np.ndarray) -> float:
    """sum_{i!=j} k(x_i,x_j)/(m(m-1)) + sum_{i!=j} k(y_i,y_j)/(m(m-1)) - 2 sum k(x_i,y_j)/m^2.

    The unbiased estimate of MMD^2 (Gretton et al. 2012) from kernel matrices of two sets of
    equal size m (it may be slightly negative).

    Args:
        k_xx: kernel matrix ``(m, m)`` within the first set.
        k_xy: kernel matrix ``(m, m)`` between the sets.
        k_yy: kernel matrix ``(m, m)`` within the second set.
    """
    m = k_xx.shape[0]
    off_xx = k_xx.sum() - np.trace(k_xx)
    off_yy = k_yy.sum() - np.trace(k_yy)
    return float((off_xx + off_yy) / (m * (m - 1)) - 2 * k_xy.sum() / (m * m))


def kid(
    fake: np.ndarray,
    real: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 2020,
) -> dict[str, float]:
    """KID mean and std over random subsets: ``{"kid_mean", "kid_std"}``.

    Args:
        fake: generated features ``(M, d)``.
        real: real features ``(N, d)``.
        subsets: number of random subsets (100, as torch-fidelity).
        subset_size: samples per subset, drawn without replacement from each set; clipped
            to the smaller set with a warning (small medical sets are the norm). Each set
            needs at least 2 samples (ValueError).
        seed: seeds the ``numpy.random.RandomState`` of the draws (2020, as torch-fidelity).
    """
    fake, real = np.asarray(fake, np.float64), np.asarray(real, np.float64)
    m = min(subset_size, len(fake), len(real))
    if m < subset_size:
        warnings.warn(
            f"KID subset size clipped from {subset_size} to {m} (the smaller set)", stacklevel=2
        )
    if m < 2:
        raise ValueError("KID needs at least 2 samples in each set")
    rng = np.random.RandomState(seed)  # noqa: NPY002 (the same draws as torch-fidelity)
    values = np.empty(subsets)
    for i in range(subsets):
        f = fake[rng.choice(len(fake), m, replace=False)]
        r = real[rng.choice(len(real), m, replace=False)]
        values[i] = mmd2_unbiased(
            polynomial_kernel(f, f), polynomial_kernel(f, r), polynomial_kernel(r, r)
        )
    return {"kid_mean": float(values.mean()), "kid_std": float(values.std())}


def _cdist(a: np.ndarray, b: np.ndarray) -> torch.Tensor:
    return torch.cdist(
        torch.from_numpy(np.asarray(a, np.float32)), torch.from_numpy(np.asarray(b, np.float32))
    )


def knn_radii(x: np.ndarray, k: int) -> torch.Tensor:
    """Distance ``(N,)`` (float32) of each sample of ``x`` ``(N, d)`` to its ``k``-th
    nearest other sample (self excluded; ``k`` < N)."""
    return _cdist(x, x).kthvalue(k + 1, dim=1).values


def precision_recall(fake: np.ndarray, real: np.ndarray, k: int = 3) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019), each in [0, 1].

    precision = 1/M sum_j 1[exists i: ||f_j - r_i|| <= NND_k(r_i)] (fakes inside the real
    manifold); recall = 1/N sum_i 1[exists j: ||r_i - f_j|| <= NND_k(f_j)] (reals inside
    the fake manifold). ``fake`` ``(M, d)``, ``real`` ``(N, d)``; distances in float32.
    ``k``: the neighbour whose distance is each sample's radius (3 in the paper).
    """
    r_real, r_fake = knn_radii(real, k), knn_radii(fake, k)
    d_fr = _cdist(fake, real)  # (M, N)
    precision = (d_fr <= r_real[None, :]).any(dim=1).float().mean()
    recall = (d_fr.T <= r_fake[None, :]).any(dim=1).float().mean()
    return {"precision": float(precision), "recall": float(recall)}


def density_coverage(fake: np.ndarray, real: np.ndarray, k: int = 5) -> dict[str, float]:
    """Density and coverage (Naeem et al. 2020): ``{"density", "coverage"}``.

    density = 1/(kM) sum_j sum_i 1[f_j in B(r_i, NND_k(r_i))] (>= 0, about 1 when the
    distributions match); coverage = 1/N sum_i 1[min_j ||r_i - f_j|| <= NND_k(r_i)] in
    [0, 1].

    Args:
        fake: generated features ``(M, d)``.
        real: real features ``(N, d)``.
        k: the neighbour whose distance is each real sample's radius (5 in the paper).
    """
    r_real = knn_radii(real, k)
    inside = _cdist(fake, real) <= r_real[None, :]  # (M, N)
    density = inside.float().sum() / (k * len(fake))
    coverage = inside.any(dim=0).float().mean()
    return {"density": float(density), "coverage": float(coverage)}


def inception_score(
    logits: np.ndarray, splits: int = 10, shuffle: bool = True, seed: int = 2020
) -> dict[str, float]:
    """IS = exp(E_x KL(p(y|x) || p(y))) per split (Salimans et al. 2016); mean and std.

    Args:
        logits: classifier logits ``(N, classes)`` (Inception's 1008).
        splits: the samples are scored in this many equal parts; the result is the mean
            and std over them (``{"is_mean", "is_std"}``).
        shuffle: permute the samples before splitting, as torch-fidelity does.
        seed: seeds the permutation's ``numpy.random.RandomState``.
    """
    x = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    n = len(x)
    if shuffle:
        x = x[np.random.RandomState(seed).permutation(n)]  # noqa: NPY002 (as torch-fidelity)
    p, log_p = x.softmax(1), x.log_softmax(1)
    scores = []
    for i in range(splits):
        sl = slice(i * n // splits, (i + 1) * n // splits)
        q = p[sl].mean(0, keepdim=True)
        scores.append(float((p[sl] * (log_p[sl] - q.log())).sum(1).mean().exp()))
    return {"is_mean": float(np.mean(scores)), "is_std": float(np.std(scores))}
