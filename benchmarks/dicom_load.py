"""DICOM series loading and slice-dataset throughput.

1. ``medgan.data.load`` vs MONAI's ``LoadImage`` (baseline; ``pip install monai``) on a
   generated 200-slice 512x512 CT series, written with ``save_dicom_series``. Same voxels
   are checked (up to MONAI's axis order). Target: ratio >= 2x.
2. ``SliceDataset`` items/s (64x64 slices, batches of 64 through a DataLoader) vs the
   images/s a DCGAN-64 training step consumes on this machine. Target: >= 5x.

    python benchmarks/dicom_load.py [--slices 200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import medgan
from medgan.data import SliceDataset, Volume, load, save_dicom_series


def make_series(folder: Path, slices: int) -> Volume:
    rng = np.random.default_rng(0)
    ph = np.stack([medgan.data.ct_phantom_hu(512, rng) for _ in range(4)])
    arr = np.round(ph[np.arange(slices) % 4]).astype(np.float32)
    affine = np.diag([-0.7, -0.7, 1.25, 1.0])[[2, 1, 0, 3]]  # axes: slice (S), row (A->P), col
    affine[:3, 3] = [180.0, 180.0, -120.0]
    vol = Volume(arr, affine, {"modality": "CT"})
    save_dicom_series(vol, folder)
    return vol


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--slices", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "series"
        ref = make_series(folder, args.slices)
        t_ours, vol = best_of(lambda: load(folder), args.repeats)
        np.testing.assert_array_equal(vol.array, ref.array)
        print(f"medgan.data.load: {t_ours:.2f} s for {args.slices} x 512 x 512")
        try:
            from monai.transforms import LoadImage
        except ImportError:
            print("MONAI not installed (pip install monai): loader ratio not measured")
        else:
            loader = LoadImage(image_only=True, reader="PydicomReader")
            t_monai, img = best_of(lambda: loader(str(folder)), args.repeats)
            m = np.asarray(img)
            # MONAI returns (col, row, slice) in its own orientation; compare as sorted values
            same = np.array_equal(np.sort(m.ravel()), np.sort(vol.array.ravel()))
            print(f"MONAI LoadImage(PydicomReader): {t_monai:.2f} s (same voxel values: {same})")
            print(f"ratio MONAI/medgan = {t_monai / t_ours:.2f}x  (target >= 2x)")

    # slice dataset throughput vs a DCGAN-64 step's consumption
    ds = SliceDataset(medgan.data.embedded("mni152_t1"), "axial", size=64)
    loader = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True, drop_last=True)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 3.0:
        for batch in loader:
            n += batch.shape[0]
    items_per_s = n / (time.perf_counter() - t0)
    g = medgan.models.build("dcgan_generator", image_size=64)
    d = medgan.models.build("dcgan_discriminator", image_size=64)
    data = torch.rand(256, 1, 64, 64) * 2 - 1
    tr = medgan.Trainer(
        g, d, data, config=medgan.TrainConfig(batch_size=64, device="cpu", ema_halflife_kimg=None)
    )
    tr.fit(1)
    t0 = time.perf_counter()
    tr.fit(4)
    step_imgs_per_s = 64 * 3 / (time.perf_counter() - t0)
    print(
        f"SliceDataset: {items_per_s:.0f} slices/s; "
        f"DCGAN-64 step consumes {step_imgs_per_s:.0f} images/s"
    )
    print(f"ratio dataset/step = {items_per_s / step_imgs_per_s:.1f}x  (target >= 5x)")


if __name__ == "__main__":
    main()
