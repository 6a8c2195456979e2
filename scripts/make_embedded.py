"""Build src/medgan/data/embedded/mni152_2mm.npz from the MNI ICBM152 2009a templates that
ship inside the nilearn wheel on PyPI (real human brain MRI, averaged over 152 subjects).

    pip download --no-deps nilearn==0.14.1 -d /tmp/whl
    python scripts/make_embedded.py /tmp/whl/nilearn-0.14.1-py3-none-any.whl

(or pass nothing when nilearn is installed). Output: T1 at 2 mm as uint8 (0..255 over the
0..100th percentile of the original), a tissue label map (0 background, 1 grey matter,
2 white matter; probability > 0.5, WM winning ties), the grey- and white-matter probability
maps as uint8 (0..255 = 0..1) and the 2 mm affine; < 1 MB.
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np

NAMES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
OUT = Path(__file__).resolve().parents[1] / "src/medgan/data/embedded/mni152_2mm.npz"


def read_images(source: str | None) -> dict[str, nib.Nifti1Image]:
    if source and source.endswith(".whl"):
        with zipfile.ZipFile(source) as z:
            return {
                k: nib.Nifti1Image.from_bytes(
                    __import__("gzip").decompress(z.read(f"nilearn/datasets/data/{v}"))
                )
                for k, v in NAMES.items()
            }
    import nilearn

    folder = Path(nilearn.__file__).parent / "datasets" / "data"
    return {k: nib.load(folder / v) for k, v in NAMES.items()}


def downsample2(a: np.ndarray) -> np.ndarray:
    """2x2x2 block mean (1 mm -> 2 mm), cropping odd edges."""
    s = [n - n % 2 for n in a.shape]
    a = a[: s[0], : s[1], : s[2]]
    return a.reshape(s[0] // 2, 2, s[1] // 2, 2, s[2] // 2, 2).mean(axis=(1, 3, 5))


def main() -> None:
    imgs = read_images(sys.argv[1] if len(sys.argv) > 1 else None)
    imgs = {k: nib.as_closest_canonical(v) for k, v in imgs.items()}
    t1 = downsample2(imgs["t1"].get_fdata(dtype=np.float32))
    # nilearn ships the probability maps as uint8 0..255 (= probability 0..1)
    gm = downsample2(imgs["gm"].get_fdata(dtype=np.float32)) / 255.0
    wm = downsample2(imgs["wm"].get_fdata(dtype=np.float32)) / 255.0
    hi = float(t1.max())
    t1_u8 = np.round(np.clip(t1 / hi, 0, 1) * 255).astype(np.uint8)
    labels = np.zeros(t1.shape, np.uint8)
    labels[gm > 0.5] = 1
    labels[(wm > 0.5) & (wm >= gm)] = 2
    affine = imgs["t1"].affine.copy()
    affine[:3, :3] *= 2  # voxel (i, j, k) at 2 mm = old voxel (2i, 2j, 2k) + half a voxel
    affine[:3, 3] += imgs["t1"].affine[:3, :3] @ np.array([0.5, 0.5, 0.5])
    buf = io.BytesIO()
    prob_u8 = np.round(np.clip(np.stack([gm, wm]), 0, 1) * 255).astype(np.uint8)
    np.savez_compressed(
        buf,
        t1=t1_u8,
        labels=labels,
        tissue_prob=prob_u8,
        affine=affine,
        t1_scale=np.float32(hi / 255),
    )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(buf.getvalue())
    print(f"wrote {OUT} ({OUT.stat().st_size / 1024:.0f} KiB), shape {t1.shape}")


if __name__ == "__main__":
    main()
