"""Held-out MR denoising: the trained denoiser against its noisy input and the classical
baselines (bias-corrected non-local means; dipy's Rician nlmeans when dipy is installed),
on real MR images from scanners and subjects it never saw (the sets are listed in
``medgan.tasks.heldout``).

    python examples/denoise_mri.py        # trains, writes medgan-denoise-mri/denoiser.pt
    python benchmarks/heldout_enhance.py [--checkpoint PATH [PATH ...]] [--sigma 15] [--json OUT]

Several checkpoints (one per training seed: ``python examples/denoise_mri.py --seed S
--checkpoint DIR/sS.pt``) share one tuning and scoring of the baselines, and a last table
gives every column as mean ± sd over them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from medgan.generate import load_generator
from medgan.tasks.heldout import evaluate_denoisers, format_seeds, format_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--checkpoint", type=Path, nargs="+", default=[Path("medgan-denoise-mri/denoiser.pt")]
    )
    ap.add_argument("--sigma", type=float, default=15.0)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--no-ensemble", action="store_true", help="skip the 8-fold ensemble columns")
    args = ap.parse_args()
    for ckpt in args.checkpoint:
        if not ckpt.exists():
            raise SystemExit(
                f"{ckpt} not found: train it with `python examples/denoise_mri.py` "
                "(writes medgan-denoise-mri/denoiser.pt) or pass --checkpoint PATH"
            )
    results = evaluate_denoisers(
        [load_generator(c) for c in args.checkpoint], args.sigma, ensemble=not args.no_ensemble
    )
    for ckpt, result in zip(args.checkpoint, results, strict=True):
        print(f"\n{ckpt}\n{format_table(result)}")
    if len(results) > 1:
        print("\n" + format_seeds(results))
    if args.json:
        # one checkpoint: its result, as before; several: one result per checkpoint path
        named = {str(c): r for c, r in zip(args.checkpoint, results, strict=True)}
        args.json.write_text(json.dumps(results[0] if len(results) == 1 else named, indent=1))
        print(f"written {args.json}")


if __name__ == "__main__":
    main()
