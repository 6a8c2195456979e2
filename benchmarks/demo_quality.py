"""Is `medgan demo` diverse? Runs the demo at its defaults (`medgan demo --help`: the recipe
on CT phantoms for a wall-clock budget) for each seed, draws 64 samples from its
checkpoint as `medgan sample` does, and compares them with 64 training phantoms:

* diversity ratio: mean pairwise pixel distance (L2) of the 64 samples / that of 64 real
  images (1 = as varied as the data; a collapsed generator gives ~0). Target >= 0.7.
* coverage (k = 5, Naeem et al. 2020) of 64 held-out phantoms by the samples on the shipped
  domain encoder's features. Target >= 0.7.

    python benchmarks/demo_quality.py [--seeds 0,1,2] [--max-minutes M]

Also prints the process-CPU minutes each demo used (the target is <= 2).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from medgan.cli import main as medgan_main
from medgan.data import CTPhantomSlices
from medgan.generate import generate, load_generator
from medgan.metrics import DensityCoverage, DomainEncoderFeatures
from medgan.utils import process_cpu_seconds


def mean_pairwise_distance(x: torch.Tensor) -> float:
    flat = x.flatten(1).double()
    d = torch.cdist(flat, flat)
    n = len(flat)
    return float(d.sum() / (n * (n - 1)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--max-minutes", default=None, help="default: the demo's")
    args = ap.parse_args()
    enc = DomainEncoderFeatures()
    train = CTPhantomSlices(size=64)  # the demo's data set (seed 0)
    real = torch.stack([train[i] for i in range(64)])
    held = torch.stack([CTPhantomSlices(n=64, size=64, seed=1)[i] for i in range(64)])
    rows = []
    for seed in args.seeds.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "demo"
            t0 = process_cpu_seconds() / 60
            argv = ["demo", "--out", str(out), "--seed", seed]
            if args.max_minutes is not None:
                argv += ["--max-minutes", args.max_minutes]
            medgan_main([*argv, "--quiet"])
            used = process_cpu_seconds() / 60 - t0
            g = load_generator(out / "checkpoints" / "last.pt")
            fake = generate(g, 64, seed=int(seed))
            steps = torch.load(out / "checkpoints" / "last.pt", weights_only=True)["step"]
        cov = DensityCoverage(enc)
        cov.update(held, real=True)
        cov.update(fake, real=False)
        ratio = mean_pairwise_distance(fake) / mean_pairwise_distance(real)
        rows.append((ratio, cov.compute()["coverage"], used, steps))
        print(
            f"seed {seed}: {steps} steps, {used:.2f} CPU-min, diversity ratio {ratio:.2f}, "
            f"coverage {rows[-1][1]:.2f}",
            flush=True,
        )
    for i, name in enumerate(("diversity ratio", "coverage", "CPU-min", "steps")):
        vals = [r[i] for r in rows]
        sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
        print(f"{name}: {statistics.mean(vals):.2f} ± {sd:.2f}")


if __name__ == "__main__":
    main()
