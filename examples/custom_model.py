"""Register your own generator in one line and train it like a built-in.

python examples/custom_model.py --steps 50 --out runs/custom
"""

from __future__ import annotations

import argparse

import torch
from torch import nn

import medgan


@medgan.models.register("upsample_generator")
class UpsampleGenerator(nn.Module):
    """z (N, latent_dim) -> (N, 1, 32, 32) in [-1, 1] with nearest-upsample + conv blocks."""

    def __init__(self, latent_dim: int = 64, width: int = 64) -> None:
        super().__init__()
        self.latent_dim = latent_dim  # the trainer reads this to draw noise
        self.width = width
        self.fc = nn.Linear(latent_dim, width * 4 * 4)
        blocks = []
        for _ in range(3):  # 4 -> 8 -> 16 -> 32
            blocks += [
                nn.Upsample(scale_factor=2),
                nn.Conv2d(width, width, 3, padding=1),
                nn.BatchNorm2d(width),
                nn.ReLU(),
            ]
        self.body = nn.Sequential(*blocks, nn.Conv2d(width, 1, 3, padding=1), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.fc(z).view(-1, self.width, 4, 4))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--out", default="runs/custom")
    args = ap.parse_args()
    medgan.seed_everything(0)
    g = medgan.models.build("upsample_generator", latent_dim=64)
    d = medgan.models.build("resnet_discriminator", image_size=32, base_channels=32)
    data = medgan.data.CTPhantomSlices(n=1024, size=32)
    trainer = medgan.Trainer(
        g,
        d,
        data,
        loss=medgan.losses.Hinge(),
        config=medgan.TrainConfig(steps=args.steps, batch_size=32),
        callbacks=medgan.callbacks.standard_callbacks(args.out, 100, 100),
    )
    trainer.fit(progress=True)
    # the checkpoint rebuilds the custom model by its registered name
    from medgan.generate import generate, load_generator

    g2 = load_generator(f"{args.out}/checkpoints/last.pt")
    print(type(g2).__name__, tuple(generate(g2, 4).shape), "samples in", args.out)


if __name__ == "__main__":
    main()
