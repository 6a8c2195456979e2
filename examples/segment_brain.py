"""Grey/white-matter segmentation of real brain MRI (MNI152 T1 + tissue map): U-Net with
Dice + cross-entropy, with and without the adversarial term, Dice on held-out slices (train
on axial slices of the lower half, test on the upper half).

    python examples/segment_brain.py [--steps 300]
"""

from __future__ import annotations

import argparse
import time

import torch

import medgan
from medgan.data import IntensityWindow, embedded
from medgan.metrics import dice
from medgan.tasks import LabelsToOneHot

WINDOW = IntensityWindow(0.0, 255.0)


def slices(vol, labels, ks):
    img = torch.stack(
        [torch.from_numpy(WINDOW.to_unit(vol[:96, :112, k]))[None] for k in ks]
    ).float()
    lab = torch.stack([torch.from_numpy(labels[:96, :112, k]).long() for k in ks])
    return img, lab


def run(adv_weight: float, steps: int, train, test) -> tuple[float, float, float]:
    medgan.seed_everything(0)
    seg = medgan.models.build("unet_segmenter", num_classes=3, base_channels=16, depth=3)
    d = medgan.models.build(
        "patchgan_discriminator", in_channels=3, cond_channels=1, base_channels=16, n_layers=2
    )
    loss = medgan.losses.build_loss("segmentation", adv_weight=adv_weight)
    t0 = time.perf_counter()
    medgan.Trainer(
        seg,
        d,
        torch.utils.data.TensorDataset(*train),
        adapter=LabelsToOneHot(3),
        loss=loss,
        config=medgan.TrainConfig(steps=steps, batch_size=8, lr_g=1e-3, ema_halflife_kimg=None),
    ).fit()
    with torch.no_grad():
        pred = seg.eval()(test[0]).argmax(1)
    gm, wm = dice(pred, test[1], 3).tolist()
    return gm, wm, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    t1, lab = embedded("mni152_t1").array, embedded("mni152_tissue").array
    train = slices(t1, lab, range(20, 50))  # lower brain
    test = slices(t1, lab, range(52, 80, 2))  # upper brain, never seen
    print(f"train {len(train[0])} axial slices (z 20-49), test {len(test[0])} slices (z 52-78)")
    print(f"{'method':38s} {'Dice GM':>8s} {'Dice WM':>8s} {'time':>6s}")
    for name, w in (("U-Net, Dice+CE only", 0.0), ("U-Net, Dice+CE + adversarial (0.05)", 0.05)):
        gm, wm, t = run(w, args.steps, train, test)
        print(f"{name:38s} {gm:8.4f} {wm:8.4f} {t:5.0f}s")


if __name__ == "__main__":
    main()
