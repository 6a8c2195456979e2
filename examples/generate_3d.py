"""3D generation: the recipe with ``spatial_dims=3`` vs a 3D DCGAN on 32^3 patches of the
embedded MNI152 T1, at equal process-CPU time, scored with 2.5D domain-encoder FID (mean of
the axial, coronal and sagittal slice FIDs) against held-out patches.

Train patches come from the anterior half of the head, held-out patches from the posterior
half (voxel-disjoint; a left/right split would leak through the template's symmetry).

    python examples/generate_3d.py [--cpu-minutes 3] [--seeds 0] [--out docs/figures]
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch

import medgan
from medgan.data.embedded import embedded
from medgan.images import save_side_by_side
from medgan.metrics import FID, DomainEncoderFeatures, score_25d
from medgan.utils import process_cpu_seconds


def patches(posterior: bool, n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """``n`` random ``size``^3 patches with >= 30 % brain, in [-1, 1] (0.5-99.5 percentile
    window of the brain), from the anterior (y >= 55) or posterior (y < 54) half."""
    arr = np.asarray(embedded("mni152_t1").array, dtype=np.float32)
    lo, hi = np.percentile(arr[arr > 0], [0.5, 99.5])
    arr = np.clip((arr - lo) / (hi - lo), 0, 1) * 2 - 1
    half = arr[:, :54] if posterior else arr[:, 55:]
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    while len(out) < n:
        a, b, c = (rng.integers(0, s - size + 1) for s in half.shape)
        p = half[a : a + size, b : b + size, c : c + size]
        if (p > -0.9).mean() >= 0.3:
            out.append(p)
    return torch.from_numpy(np.stack(out).astype(np.float32))[:, None]


def train_for(trainer: medgan.Trainer, seconds: float) -> int:
    start = process_cpu_seconds()
    while process_cpu_seconds() - start < seconds:
        trainer.fit(trainer.step + 1)
    return trainer.step


@torch.no_grad()
def samples(trainer: medgan.Trainer, n: int) -> torch.Tensor:
    net = trainer.ema if trainer.ema is not None else trainer.generator
    net.eval()
    return net(trainer.sample_noise(n, torch.Generator().manual_seed(1))).float()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cpu-minutes", type=float, default=3.0)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--train", type=int, default=256)
    ap.add_argument("--held-out", type=int, default=64)
    ap.add_argument("--out", default="docs/figures")
    args = ap.parse_args()
    train, held = patches(False, args.train), patches(True, args.held_out, seed=1)
    enc = DomainEncoderFeatures()

    def fid25(fake: torch.Tensor) -> float:
        return score_25d(lambda: FID(enc), held, fake, resize=64)["mean"]

    rows: dict[str, list[float]] = {"recipe (modern 3D)": [], "DCGAN 3D": []}
    for seed in [int(s) for s in args.seeds.split(",")]:
        recipe = medgan.recipes.unconditional(train, seed=seed, steps=10**9, device="cpu")
        medgan.seed_everything(seed)
        g = medgan.models.build("dcgan_generator", image_size=32, spatial_dims=3, base_channels=16)
        d = medgan.models.build(
            "dcgan_discriminator", image_size=32, spatial_dims=3, base_channels=16
        )
        dcgan = medgan.Trainer(
            g,
            d,
            train,
            config=medgan.TrainConfig(steps=10**9, batch_size=8, seed=seed, device="cpu"),
        )
        for name, tr in (("recipe (modern 3D)", recipe), ("DCGAN 3D", dcgan)):
            steps = train_for(tr, 60 * args.cpu_minutes)
            fake = samples(tr, len(held))
            rows[name].append(fid25(fake))
            print(f"seed {seed} {name}: {steps} steps, 2.5D FID {rows[name][-1]:.2f}", flush=True)
            if name.startswith("recipe") and seed == int(args.seeds.split(",")[0]):
                save_side_by_side(held[:16], fake[:16], f"{args.out}/generate_3d.png", nrow=4)
    print(f"\n| {args.cpu_minutes} CPU-min each | 2.5D domain FID vs held-out patches |")
    print("|---|---|")
    for name, vals in rows.items():
        sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
        print(f"| {name} | {statistics.mean(vals):.2f} ± {sd:.2f} |")
    print(f"reference (training patches): {fid25(train[: len(held)]):.2f}")


if __name__ == "__main__":
    main()
