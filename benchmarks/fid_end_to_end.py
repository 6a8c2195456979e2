"""End-to-end FID on two PNG folders: ``medgan fid`` vs pytorch-fid's
``calculate_fid_given_paths`` (baseline; ``pip install pytorch-fid``), same images, same
Inception weights (a randomly initialised FID-Inception state dict written to a temp file,
since nothing may be downloaded; pass ``--weights`` to use the published file). Target:
throughput ratio >= 1.2x on CPU with the same value.

    python benchmarks/fid_end_to_end.py [--n 300] [--weights pt_inception-2015-12-05-6726825d.pth]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
import time
from pathlib import Path

import torch

from medgan.cli import main as medgan_main
from medgan.data import CTPhantomSlices, SliceDataset, embedded, save_png
from medgan.metrics.inception import random_weights


def write_folders(root: Path, n: int) -> tuple[Path, Path]:
    mri = SliceDataset(embedded("mni152_t1"), "axial", min_foreground=0.05, size=96)
    ct = CTPhantomSlices(n=n, size=96, seed=1)
    a, b = root / "real", root / "fake"
    for i in range(n):
        save_png(mri[i % len(mri)][0].numpy() if i % 2 else ct[i][0].numpy(), a / f"{i:05d}.png")
        save_png(ct[(i * 7) % n][0].numpy(), b / f"{i:05d}.png")
    return a, b


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300, help="images per folder")
    ap.add_argument("--weights", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        weights = args.weights
        if weights is None:
            weights = tmp / "random_inception.pth"
            torch.save(random_weights(0), weights)
        a, b = write_folders(tmp, args.n)

        import pytorch_fid.inception as pfi
        from pytorch_fid.fid_score import calculate_fid_given_paths

        pfi.load_state_dict_from_url = lambda *x, **k: torch.load(weights, weights_only=True)
        t0 = time.perf_counter()
        ref = calculate_fid_given_paths(
            [str(a), str(b)], batch_size=50, device="cpu", dims=2048, num_workers=0
        )
        t_ref = time.perf_counter() - t0

        buf = io.StringIO()
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
            medgan_main(["fid", str(a), str(b), "--weights", str(weights), "--quiet"])
        t_ours = time.perf_counter() - t0
        ours = json.loads(buf.getvalue())["fid"]
    print(f"{args.n} + {args.n} PNG images (96x96 -> 299)")
    print(f"pytorch-fid: FID {ref:.8g} in {t_ref:.1f} s ({2 * args.n / t_ref:.1f} images/s)")
    print(f"medgan fid:  FID {ours:.8g} in {t_ours:.1f} s ({2 * args.n / t_ours:.1f} images/s)")
    print(f"relative difference {abs(ours - ref) / abs(ref):.2e}")
    print(f"throughput ratio medgan/pytorch-fid = {t_ref / t_ours:.2f}x  (target >= 1.2x)")


if __name__ == "__main__":
    main()
