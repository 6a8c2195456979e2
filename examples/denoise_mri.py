"""Denoising real MRI from scanners the model never saw.

Trains the noise-level-conditioned residual denoiser (medgan.models.denoiser, a GAN:
pix2pix loss against a PatchGAN) on the embedded MNI152 template only -- T1 slices along
all three axes plus synthetic contrasts painted on its tissue maps, with random intensity
windows, gamma, bias fields, contrast remaps, zoom and Rician noise levels 0-30 of 255 --
saves it, then scores it on real MR images from other scanners and subjects (the report
set of medgan.tasks.heldout: Toshiba head, Siemens abdomen, Philips shoulder, EPI brain),
with a blind noise estimate, against its noisy input and bias-corrected non-local means
(and dipy's Rician nlmeans when dipy is installed) tuned on a separate tune set.

    python examples/denoise_mri.py [--steps 2500] [--sigma 15] [--out docs/figures]
                                   [--checkpoint medgan-denoise-mri/denoiser.pt]
                                   [--seed 0] [--json scores.json] [--no-ensemble]

Then use it on your own scans: ``medgan enhance scan.nii.gz out.nii.gz --checkpoint
medgan-denoise-mri/denoiser.pt`` (prints the estimated noise level, the change it made and
a warning when the scan looks unlike its training data).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

import medgan
from medgan.data import Volume
from medgan.errors import DataError
from medgan.generate import load_generator
from medgan.images import save_grid
from medgan.tasks import NoisyPatches, denoise, denoiser_trainer, mr_training_images
from medgan.tasks.heldout import add_noise, evaluate_denoiser, format_table, heldout_mr_images


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2500)
    ap.add_argument("--sigma", type=float, default=15.0, help="Rician noise sigma (of 255)")
    ap.add_argument("--out", default="docs/figures")
    ap.add_argument("--checkpoint", default="medgan-denoise-mri/denoiser.pt")
    ap.add_argument("--seed", type=int, default=0, help="seed of the weights and training data")
    ap.add_argument("--json", type=Path, default=None, help="also write the scores here")
    ap.add_argument(
        "--no-ensemble",
        action="store_true",
        help="skip the 8-fold self-ensemble columns (about 2 CPU-minutes, mostly the "
        "1024x1024 shoulder)",
    )
    ap.add_argument(
        "--evaluate-only", action="store_true", help="score an existing --checkpoint, no training"
    )
    args = ap.parse_args()
    if args.evaluate_only:
        model = load_generator(args.checkpoint)
    else:
        medgan.seed_everything(args.seed)
        data = NoisyPatches(mr_training_images(), patch=64, length=10**7)
        t0 = time.perf_counter()
        trainer = denoiser_trainer(data, args.steps).fit(progress=True)
        print(f"trained {args.steps} steps in {time.perf_counter() - t0:.0f} s on CPU")
        print(f"checkpoint: {trainer.save(args.checkpoint)}")
        model = trainer.ema

    try:
        images = heldout_mr_images()
        result = evaluate_denoiser(model, args.sigma, images=images, ensemble=not args.no_ensemble)
    except DataError as e:
        print(f"held-out evaluation skipped: {e}")
        return
    print(format_table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
        print(f"written {args.json}")
    report = images[1]
    noisy = add_noise(report, args.sigma)
    tiles = []
    for name in ("MR_small (Toshiba head)", "Siemens abdomen", "example4d EPI z=12"):
        out = denoise(Volume(noisy[name][None], np.eye(4)), model).array[0]
        for img in (noisy[name], out, report[name]):
            t = torch.from_numpy(np.clip(img, 0, 255) / 127.5 - 1.0)[None, None].float()
            tiles.append(torch.nn.functional.interpolate(t, size=(128, 128), mode="area")[0])
    grid = save_grid(torch.stack(tiles), Path(args.out) / "denoise_mri.png", nrow=3)
    print(f"figure (columns: noisy, GAN, clean; rows: head, abdomen, EPI): {grid}")


if __name__ == "__main__":
    main()
