"""Held-out MR denoising: the trained denoiser against its noisy input and the classical
baselines (bias-corrected non-local means; dipy's Rician nlmeans when dipy is installed),
on real MR images from scanners and subjects it never saw (the sets are listed in
``medgan.tasks.heldout``).

    python examples/denoise_mri.py        # trains, writes medgan-denoise-mri/denoiser.pt
    python benchmarks/heldout_enhance.py [--checkpoint PATH] [--sigma 15] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from medgan.generate import load_generator
from medgan.tasks.heldout import evaluate_denoiser, format_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", type=Path, default=Path("medgan-denoise-mri/denoiser.pt"))
    ap.add_argument("--sigma", type=float, default=15.0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if not args.checkpoint.exists():
        raise SystemExit(
            f"{args.checkpoint} not found: train it with `python examples/denoise_mri.py` "
            "(writes medgan-denoise-mri/denoiser.pt) or pass --checkpoint PATH"
        )
    result = evaluate_denoiser(load_generator(args.checkpoint), args.sigma)
    print(format_table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
        print(f"written {args.json}")


if __name__ == "__main__":
    main()
