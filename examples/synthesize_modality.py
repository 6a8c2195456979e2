"""Missing-modality synthesis on real brain MRI: T1 -> grey/white-matter probability maps
(the second "modality" in the embedded MNI152 data), trained two ways, against the best
pointwise map, on held-out slices (train: axial slices of the lower brain; test: axial
slices of the upper brain, disjoint voxels):

- paired (pix2pix): T1 slices with their own tissue maps;
- unpaired (CycleGAN): T1 of even slices, tissue maps of odd slices, never a matching pair;
- baseline: the intensity lookup table E[p | T1 value] fitted on the training voxels (the
  best any voxel-by-voxel map can do in mean squared error; it needs pairs).

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
    # baseline: E[p | T1 value] on the training voxels (T1 is integer-valued 0..255)
    t1_train = slices(t1, train_k).astype(np.int64).ravel()
    counts = np.bincount(t1_train, minlength=256)
    lut = np.stack(
        [
            np.bincount(t1_train, weights=slices(prob[c], train_k).ravel(), minlength=256)
            / np.maximum(counts, 1)
            for c in range(2)
        ]
    )
    lut_pred = lut[:, test_t1.astype(np.int64)].transpose(1, 0, 2, 3)
    rows["intensity lookup E[p | T1] (paired)"] = scores(lut_pred, test_p, test_labels, head)

    medgan.seed_everything(0)
    paired = torch.utils.data.TensorDataset(torch.from_numpy(src), torch.from_numpy(tgt))
    g, secs = fit(pix2pix_trainer(paired, args.steps, out_channels=2))
    test_vol = Volume(test_t1, np.eye(4), {"unit": "arbitrary"})  # slices along axis 0

    def synthesize(net):
        out = translate(test_vol, net, T1_WINDOW, PROB_WINDOW, axis=0, tile=96, overlap=0)
        return out.array.transpose(1, 0, 2, 3)  # (2, N, H, W) -> (N, 2, H, W)

    pix = synthesize(g)
    rows[f"pix2pix GAN (paired, {args.steps} steps, {secs:.0f} s)"] = scores(
        pix, test_p, test_labels, head
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
    idx = [2, 6]
    show = lambda a: torch.from_numpy(np.asarray(a[idx], np.float32)) * 2 - 1  # noqa: E731
    grid = save_grid(
        torch.cat(
            [
                torch.from_numpy(T1_WINDOW.to_unit(test_t1[idx]))[:, None],
                show(pix[:, :1]),
                show(cycle[:, :1]),
                show(test_p[:, :1]),
                show(pix[:, 1:]),
                show(cycle[:, 1:]),
                show(test_p[:, 1:]),
            ]
        ),
        Path(args.out) / "synthesize_modality.png",
        nrow=2,
    )
    print(
        f"figure (rows: T1; GM by pix2pix, CycleGAN, reference; WM by pix2pix, CycleGAN, "
        f"reference): {grid}"
    )


if __name__ == "__main__":
    main()
