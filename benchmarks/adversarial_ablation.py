"""What the adversarial term buys: the same enhancement model trained on L1 alone
(``--adv-weight 0``) and with L1 + adversarial (``--adv-weight 1``), over seeds, scored on
fidelity (PSNR/SSIM on held-out data) and on realism, as the jobs issue asks:

- ``ct``: ``examples/denoise_low_dose_ct.py``; realism = the noise power spectrum's distance
  to full-dose images on uniform soft tissue of held-out phantoms (0 = full-dose texture);
- ``sr``: ``examples/superres_mri.py``; realism = the domain encoder's FID of the output
  planes against the real 2 mm planes of the held-out half.

Each (job, seed, weight) run is one process of the example with ``--json``; ``--jobs``
runs that many at once, one thread each. The table: mean ± sample sd over the seeds.

    python benchmarks/adversarial_ablation.py --job sr --seeds 0,1,2     # ~6 x 2.5 CPU-min
    python benchmarks/adversarial_ablation.py --job ct --seeds 0,1,2     # ~6 x 6 CPU-min
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = {"ct": "examples/denoise_low_dose_ct.py", "sr": "examples/superres_mri.py"}
# (label, path into the example's JSON record, decimals); the realism measure last
COLUMNS = {
    "ct": [
        ("phantom PSNR", ("gan_phantoms", 0), 2),
        ("phantom SSIM", ("gan_phantoms", 1), 4),
        ("real-slice PSNR", ("gan_real", 0), 2),
        ("noise std HU", ("gan_nps", "std_hu"), 2),
        ("NPS mean f", ("gan_nps", "mean_freq"), 3),
        ("NPS dist. (realism)", ("gan_nps", "nps_dist"), 3),
    ],
    "sr": [
        ("PSNR", ("gan", 0), 2),
        ("SSIM", ("gan", 1), 4),
        ("FID (realism)", ("fid", "ThicknessSR"), 3),
    ],
}


def run(job: str, seed: int, weight: float, out: Path, extra: list[str]) -> dict:
    """One example run; its JSON record (read back if a run with the same settings wrote
    it already)."""
    steps = extra[1] if extra else "default"
    path = out / f"{job}_s{seed}_w{weight:g}_steps{steps}.json"
    if not path.exists():
        cmd = [sys.executable, SCRIPTS[job], "--seed", str(seed), "--adv-weight", str(weight)]
        cmd += ["--json", str(path), "--out", str(out / "figures"), *extra]
        if job == "sr":
            cmd += ["--checkpoint", str(out / f"sr_s{seed}_w{weight:g}.pt")]
        env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        with open(path.with_suffix(".log"), "w") as log:
            subprocess.run(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, check=True)
    return json.loads(path.read_text())


def pick(record: dict, keys: tuple) -> float:
    """The value at ``keys`` in a record."""
    for k in keys:
        record = record[k]
    return float(record)  # type: ignore[arg-type]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--job", choices=sorted(SCRIPTS), required=True)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--weights", default="0,1", help="adversarial weights compared")
    ap.add_argument("--jobs", type=int, default=2, help="runs at once (one thread each)")
    ap.add_argument("--out", type=Path, default=Path("medgan-ablation"))
    ap.add_argument("--steps", type=int, default=None, help="training steps (example default)")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    weights = [float(w) for w in args.weights.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    extra = [] if args.steps is None else ["--steps", str(args.steps)]
    tasks = [(s, w) for w in weights for s in seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        records = list(pool.map(lambda t: run(args.job, *t, args.out.resolve(), extra), tasks))
    by_weight = {
        w: [r for (s, ww), r in zip(tasks, records, strict=True) if ww == w] for w in weights
    }
    cols = COLUMNS[args.job]
    print(f"{args.job}: {len(seeds)} seeds ({args.seeds}); mean ± sd (ddof 1) over seeds")
    print(f"{'adversarial weight':>20s}" + "".join(f"{c[0]:>24s}" for c in cols))
    for w, recs in by_weight.items():
        cells = []
        for _, keys, dec in cols:
            v = np.array([pick(r, keys) for r in recs])
            sd = float(v.std(ddof=1)) if len(v) > 1 else 0.0
            cells.append(f"{v.mean():.{dec}f} ± {sd:.{dec}f}")
        print(f"{w:>20g}" + "".join(f"{c:>24s}" for c in cells))
    base = records[0]
    if args.job == "ct":
        print("classical baselines (same in every run):")
        for k, v in base["nps"].items():
            if not k.startswith("CTDenoiser"):
                psnr = base["phantoms"].get(k, [float("nan")])[0]
                print(f"  {k:40s} PSNR {psnr:6.2f}  NPS dist. {v['nps_dist']:.3f}")
    else:
        print(
            "baselines (same in every run): "
            + ", ".join(
                f"{k} PSNR {base['rows'][k][0]:.2f} FID {base['fid'][k]:.3f}"
                for k in base["fid"]
                if k != "ThicknessSR"
            )
        )


if __name__ == "__main__":
    main()
