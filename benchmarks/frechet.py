"""Fréchet distance at d = 2048: medgan's eigenvalue route vs scipy ``sqrtm`` (the route
pytorch-fid takes), same covariances, same value. Target: >= 5x faster.

    python benchmarks/frechet.py [--dim 2048] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import scipy.linalg

from medgan.metrics.frechet import frechet_distance


def scipy_route(mu1, s1, mu2, s2):
    """pytorch-fid's calculate_frechet_distance, written out: sqrtm of the product."""
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        offset = np.eye(len(s1)) * 1e-6
        covmean = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))
    covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--n", type=int, default=4000, help="samples behind each covariance")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.n, args.dim))
    y = (
        rng.normal(size=(args.n, args.dim))
        @ (np.eye(args.dim) + 0.02 * rng.normal(size=(args.dim,) * 2))
        + 0.1
    )
    mu1, mu2, s1, s2 = x.mean(0), y.mean(0), np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    ours, ref = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        a = frechet_distance(mu1, s1, mu2, s2)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        b = scipy_route(mu1, s1, mu2, s2)
        ref.append(time.perf_counter() - t0)
    o, r = statistics.median(ours), statistics.median(ref)
    print(
        f"d={args.dim}: medgan {a:.6f} in {o:.2f} s; scipy sqrtm {b:.6f} in {r:.2f} s; "
        f"relative difference {abs(a - b) / abs(b):.2e}"
    )
    print(f"ratio scipy/medgan = {r / o:.1f}x  (target >= 5x)")


if __name__ == "__main__":
    main()
