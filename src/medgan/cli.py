"""``medgan`` command line: thin wrappers over the library.

medgan demo [--out DIR] [--steps N]         train a small CT GAN on embedded data
medgan train --config FILE.json             train anything the registries can build
medgan sample CKPT -n N --out DIR           draw samples from a checkpoint
medgan models | losses | datasets           list registered names
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from medgan.errors import MedganError


def _demo(args: argparse.Namespace) -> int:
    from medgan.experiment import ExperimentConfig, build_trainer

    size = args.size
    cfg = ExperimentConfig.from_dict(
        {
            "generator": {
                "name": "dcgan_generator",
                "kwargs": {"image_size": size, "base_channels": 16, "latent_dim": 64},
            },
            "discriminator": {
                "name": "dcgan_discriminator",
                "kwargs": {"image_size": size, "base_channels": 16},
            },
            "loss": {"name": "non_saturating", "kwargs": {}},
            "data": {"name": args.data, "kwargs": {"size": size}},
            "train": {
                "steps": args.steps,
                "batch_size": 32,
                "device": args.device,
                "seed": args.seed,
            },
            "out_dir": str(args.out),
            "checkpoint_every": max(1, args.steps // 4),
            "sample_every": max(1, args.steps // 4),
            "log_every": 5,
            "resume": None,
        }
    )
    print(
        f"medgan demo: training a {size}x{size} DCGAN on '{args.data}' for {args.steps} steps "
        f"(CPU: a few minutes) -> {args.out}"
    )
    t0 = time.perf_counter()
    trainer = build_trainer(cfg)
    (Path(args.out)).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
    trainer.fit(progress=not args.quiet)
    out = Path(args.out)
    print(f"done in {time.perf_counter() - t0:.0f} s on {trainer.device}.")
    print(f"  samples:    {out / 'samples' / 'samples_final.png'}")
    print(f"  loss plot:  {out / 'losses.png'}")
    print(f"  metrics:    {out / 'metrics.csv'}")
    print(f"  checkpoint: {out / 'checkpoints' / 'last.pt'}")
    print(
        f"  config:     {out / 'config.json'}"
        f"  (rerun with: medgan train --config {out / 'config.json'})"
    )
    return 0


def _train(args: argparse.Namespace) -> int:
    from medgan.experiment import ExperimentConfig, build_trainer

    cfg = ExperimentConfig.from_json(args.config)
    trainer = build_trainer(cfg)
    start = trainer.step
    trainer.fit(progress=not args.quiet)
    if trainer.is_main:
        print(f"trained steps {start}..{trainer.step}; outputs in {cfg.out_dir}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    from medgan.images import save_grid, save_pngs
    from medgan.sampling import generate, load_generator

    g = load_generator(args.checkpoint, ema=not args.no_ema, device=args.device)
    x = generate(g, args.n, seed=args.seed, device=args.device)
    out = Path(args.out)
    if x.dim() == 5:
        import nibabel as nib
        import numpy as np

        out.mkdir(parents=True, exist_ok=True)
        for i, vol in enumerate(x):
            nib.save(
                nib.Nifti1Image(vol.numpy().transpose(1, 2, 3, 0).squeeze(-1), np.eye(4)),
                out / f"sample_{i:05d}.nii.gz",
            )
    else:
        save_pngs(x, out)
    grid = save_grid(x[:64], out / "grid.png")
    print(f"wrote {len(x)} samples to {out} (grid: {grid})")
    return 0


def _list(registry_name: str) -> int:
    from medgan import data, losses, models  # noqa: F401  (fill the registries)
    from medgan.registry import DATASETS, LOSSES, MODELS

    reg = {"models": MODELS, "losses": LOSSES, "datasets": DATASETS}[registry_name]
    print("\n".join(reg.available()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="medgan", description="GANs for medical images.")
    p.add_argument("-v", "--verbose", action="store_true", help="log INFO messages")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="train a small GAN on embedded CT data (a few CPU minutes)")
    d.add_argument("--out", type=Path, default=Path("medgan-demo"))
    d.add_argument("--steps", type=int, default=300)
    d.add_argument("--size", type=int, default=64, choices=[16, 32, 64, 128])
    d.add_argument(
        "--data",
        default="ct_phantoms",
        help="a registered dataset taking `size` (mni152_slices: real brain MRI; "
        "ct_phantoms: procedural CT in HU)",
    )
    d.add_argument("--device", default="auto")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(fn=_demo)

    t = sub.add_parser("train", help="train from a JSON experiment config")
    t.add_argument("--config", required=True, type=Path)
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(fn=_train)

    s = sub.add_parser("sample", help="draw samples from a checkpoint")
    s.add_argument("checkpoint", type=Path)
    s.add_argument("-n", type=int, default=64)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-ema", action="store_true", help="use the raw generator, not its EMA")
    s.add_argument("--device", default="cpu")
    s.set_defaults(fn=_sample)

    for name in ("models", "losses", "datasets"):
        sub.add_parser(name, help=f"list registered {name}").set_defaults(
            fn=lambda a, n=name: _list(n)
        )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.fn(args)
    except MedganError as e:
        print(f"medgan: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
