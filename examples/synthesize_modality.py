"""Missing-modality synthesis on real brain MRI: T1 -> grey/white-matter probability maps
(the second "modality" in the embedded MNI152 data), trained three ways, against the best
pointwise map, on held-out slices (train: axial slices of the lower brain; test: axial
slices of the upper brain, disjoint voxels):

- baseline: the intensity lookup table E[p | T1 value] fitted on the training voxels (the
  best any voxel-by-voxel map can do in mean squared error; it needs pairs);
- paired (pix2pix): T1 slices with their own tissue maps;
- paired, coarse to fine: pix2pix whose residual U-Net sees (lookup maps, T1) and predicts
  a correction to the lookup maps;
- unpaired (CycleGAN): T1 of even slices, tissue maps of odd slices, never a matching pair.

Scores: MAE of the probabilities (percentage points) inside the head, and the Dice of the
p > 0.5 maps against the reference label map.

    python examples/synthesize_modality.py [--steps 400] [--cycle-steps 300] [--out docs/figures]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import medgan
from medgan.data import IntensityWindow, UnpairedDataset, Volume, embedded
from medgan.images import save_grid
from medgan.metrics import dice
from medgan.tasks import cyclegan_trainer, pix2pix_trainer, translate
from medgan.tasks.baselines import IntensityLookup

T1_WINDOW = IntensityWindow(0.0, 255.0)  # the embedded T1 is 0..255
PROB_WINDOW = IntensityWindow(0.0, 1.0)  # probabilities


def slices(vol: np.ndarray, ks) -> np.ndarray:
    """Axial slices ``(N, [C,] 96, 112)`` of ``(..., X, Y, Z)``."""
    return np.stack([vol[..., :96, :112, k] for k in ks])


def scores(pred: np.ndarray, ref: np.ndarray, labels: np.ndarray, head: np.ndarray):
    """MAE (percentage points, inside the head) and Dice GM/WM of the p > 0.5 maps."""
    mae = 100 * float(np.abs(pred - ref).transpose(1, 0, 2, 3)[:, head].mean())
    hard = np.where(pred[:, 1] > 0.5, 2, np.where(pred[:, 0] > 0.5, 1, 0))
    gm, wm = dice(torch.from_numpy(hard), torch.from_numpy(labels.astype(np.int64)), 3).tolist()
    return mae, gm, wm


def fit(trainer: medgan.Trainer) -> tuple[torch.nn.Module, float]:
    t0 = time.perf_counter()
    trainer.fit(progress=True)
    return trainer.ema, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=400, help="pix2pix steps")
    ap.add_argument("--cycle-steps", type=int, default=300, help="CycleGAN steps")
    ap.add_argument("--out", default="docs/figures")
    ap.add_argument(
        "--skip-refine",
        action="store_true",
        help="skip the coarse-to-fine pix2pix (and the figure, which shows it)",
    )
    args = ap.parse_args()
    t1 = embedded("mni152_t1").array
    prob = embedded("mni152_tissue_prob").array  # (2, X, Y, Z) in [0, 1]
    labels = embedded("mni152_tissue").array
    train_k, test_k = range(15, 48), range(52, 82, 3)
    src = T1_WINDOW.to_unit(slices(t1, train_k))[:, None]
    tgt = PROB_WINDOW.to_unit(slices(prob, train_k))
    test_t1, test_p = slices(t1, test_k), slices(prob, test_k)
    test_labels, head = slices(labels, test_k), slices(t1, test_k) > 10

    rows = {}
    lookup = IntensityLookup.fit(slices(t1, train_k), slices(prob, train_k).transpose(1, 0, 2, 3))
    lut_pred = lookup(test_t1).transpose(1, 0, 2, 3)  # (N, 2, H, W)
    rows["intensity lookup E[p | T1] (paired)"] = scores(lut_pred, test_p, test_labels, head)

    def synthesize(net, with_lookup: bool = False):
        if with_lookup:  # channels (lookup GM, lookup WM, T1 / 255), all on a 0..1 scale
            vol, win = np.concatenate([lookup(test_t1), test_t1[None] / 255]), PROB_WINDOW
        else:
            vol, win = test_t1, T1_WINDOW
        out = translate(Volume(vol, np.eye(4)), net, win, PROB_WINDOW, axis=0)
        return out.array.transpose(1, 0, 2, 3)  # (2, N, H, W) -> (N, 2, H, W)

    medgan.seed_everything(0)
    paired = torch.utils.data.TensorDataset(torch.from_numpy(src), torch.from_numpy(tgt))
    g, secs = fit(pix2pix_trainer(paired, args.steps, out_channels=2))
    pix = synthesize(g)
    rows[f"pix2pix GAN (paired, {args.steps} steps, {secs:.0f} s)"] = scores(
        pix, test_p, test_labels, head
    )

    # coarse to fine: G sees (lookup maps, T1) and predicts a correction to the lookup maps
    pix_lut = None
    if not args.skip_refine:
        medgan.seed_everything(0)
        lut_train = PROB_WINDOW.to_unit(lookup(slices(t1, train_k)).transpose(1, 0, 2, 3))
        refine = torch.utils.data.TensorDataset(
            torch.from_numpy(np.concatenate([lut_train, src], 1)), torch.from_numpy(tgt)
        )
        g2, secs = fit(pix2pix_trainer(refine, args.steps, 3, 2, residual=True))
        pix_lut = synthesize(g2, with_lookup=True)
        rows[f"pix2pix refining the lookup ({args.steps} steps, {secs:.0f} s)"] = scores(
            pix_lut, test_p, test_labels, head
        )

    medgan.seed_everything(0)
    unpaired = UnpairedDataset(
        torch.from_numpy(np.concatenate([src[0::2], src[0::2, :, :, ::-1].copy()])),  # T1, even k
        torch.from_numpy(np.concatenate([tgt[1::2], tgt[1::2, :, :, ::-1].copy()])),  # maps, odd k
    )
    cyc, secs = fit(cyclegan_trainer(unpaired, args.cycle_steps, channels_b=2))
    cycle = synthesize(cyc.ab)
    rows[f"CycleGAN (unpaired, {args.cycle_steps} steps, {secs:.0f} s)"] = scores(
        cycle, test_p, test_labels, head
    )

    print(f"\nheld-out axial slices of the upper brain: {len(test_k)}; T1 -> GM/WM probability")
    print(f"{'method':48s} {'MAE (pp)':>9s} {'Dice GM':>8s} {'Dice WM':>8s}")
    for name, (m, dg, dw) in rows.items():
        print(f"{name:48s} {m:9.2f} {dg:8.3f} {dw:8.3f}")
    if pix_lut is None:
        return
    idx = [2, 6]
    show = lambda a: torch.from_numpy(np.asarray(a[idx], np.float32)) * 2 - 1  # noqa: E731
    grid = save_grid(
        torch.cat(
            [
                torch.from_numpy(T1_WINDOW.to_unit(test_t1[idx]))[:, None],
                show(pix_lut[:, :1]),
                show(cycle[:, :1]),
                show(test_p[:, :1]),
                show(pix_lut[:, 1:]),
                show(cycle[:, 1:]),
                show(test_p[:, 1:]),
            ]
        ),
        Path(args.out) / "synthesize_modality.png",
        nrow=2,
    )
    print(
        f"figure (rows: T1; GM by pix2pix refining the lookup, CycleGAN, reference; WM by the "
        f"same three): {grid}"
    )


if __name__ == "__main__":
    main()
