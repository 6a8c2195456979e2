"""Step time of medgan.Trainer vs a minimal hand-written GAN loop, same model/data/seed.

Baseline: the plain PyTorch loop below (DCGAN-64, non-saturating loss, Adam, no EMA, no
penalties, no callbacks) — the least a user could write. Target: ratio <= 1.03.

    python benchmarks/trainer_overhead.py [--steps 20] [--repeats 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

import medgan
from medgan.data import CTPhantomSlices


def build(seed: int, base: int):
    medgan.seed_everything(seed)
    g = medgan.models.build("dcgan_generator", image_size=64, base_channels=base, latent_dim=100)
    d = medgan.models.build("dcgan_discriminator", image_size=64, base_channels=base)
    return g, d


def hand_loop(data, steps, batch, device, base):
    g, d = build(0, base)
    g, d = g.to(device), d.to(device)
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    loader = DataLoader(data, batch_size=batch, shuffle=True, drop_last=True)
    it = iter(loader)

    def step():
        nonlocal it
        try:
            real = next(it)
        except StopIteration:
            it = iter(loader)
            real = next(it)
        real = real.to(device)
        z = torch.randn(batch, 100, device=device)
        with torch.no_grad():
            fake = g(z)
        loss_d = F.softplus(-d(real)).mean() + F.softplus(d(fake)).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        z = torch.randn(batch, 100, device=device)
        d.requires_grad_(False)
        loss_g = F.softplus(-d(g(z))).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        d.requires_grad_(True)
        if not torch.isfinite(loss_d + loss_g):  # same divergence check as the trainer
            raise FloatingPointError

    return _time(step, steps, device)


def trainer_loop(data, steps, batch, device, base):
    g, d = build(0, base)
    cfg = medgan.TrainConfig(steps=10**9, batch_size=batch, device=device, ema_halflife_kimg=None)
    tr = medgan.Trainer(g, d, data, loss=medgan.losses.NonSaturating(), config=cfg)

    def step():
        tr.fit(tr.step + 1)

    return _time(step, steps, device)


def _time(step, steps, device):
    for _ in range(3):  # warm-up
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--base", type=int, default=32, help="DCGAN base channels")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    ds = CTPhantomSlices(n=512, size=64)
    data = torch.stack([ds[i] for i in range(len(ds))])  # decode once: time the loops only
    hand, ours = [], []
    for _ in range(args.repeats):  # interleave to share machine noise fairly
        hand.append(hand_loop(data, args.steps, args.batch, args.device, args.base))
        ours.append(trainer_loop(data, args.steps, args.batch, args.device, args.base))
    h, o = statistics.median(hand), statistics.median(ours)
    print(
        f"device={args.device} DCGAN-64 base={args.base} batch={args.batch} "
        f"steps={args.steps}x{args.repeats}"
    )
    print(f"hand-written loop: {h * 1000:.1f} ms/step")
    print(f"medgan.Trainer:    {o * 1000:.1f} ms/step")
    print(f"ratio Trainer/hand = {o / h:.3f}  (target <= 1.03)")


if __name__ == "__main__":
    main()
