"""Train a DCGAN on procedural CT phantoms; runs alone or data-parallel under torchrun.

python examples/train_phantoms.py --steps 300
torchrun --nproc_per_node=2 examples/train_phantoms.py --steps 300
"""

from __future__ import annotations

import argparse

import medgan


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--out", default="runs/phantoms")
    ap.add_argument("--size", type=int, default=64)
    args = ap.parse_args()
    medgan.seed_everything(0)
    g = medgan.models.build(
        "dcgan_generator", image_size=args.size, base_channels=16, latent_dim=64
    )
    d = medgan.models.build("dcgan_discriminator", image_size=args.size, base_channels=16)
    trainer = medgan.Trainer(
        g,
        d,
        medgan.data.CTPhantomSlices(n=2048, size=args.size),
        config=medgan.TrainConfig(steps=args.steps, batch_size=32),
        callbacks=medgan.callbacks.standard_callbacks(args.out, 100, 100),
    )
    trainer.fit(progress=trainer.is_main)
    if trainer.is_main:
        print(f"outputs in {args.out}")


if __name__ == "__main__":
    main()
