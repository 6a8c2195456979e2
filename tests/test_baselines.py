"""The expert baselines of issue #14 item 0: BM3D for CT-like noise, bias-corrected BM4D for
Rician MR noise (PyPI ``bm3d`` / ``bm4d``), each improving on its input and the Rician one
removing the bias that plain filtering leaves in dark regions."""

from __future__ import annotations

import numpy as np
import pytest

from medgan.tasks.baselines import bm3d_denoise, bm4d_rician, psnr_ssim

pytest.importorskip("bm3d")


def _phantom(size: int = 48) -> np.ndarray:
    y, x = np.mgrid[:size, :size] / size
    img = 20 + 160 * (((x - 0.5) ** 2 + (y - 0.5) ** 2) < 0.12)  # a disc on a dark field
    img = img + 40 * (((x - 0.45) ** 2 + (y - 0.4) ** 2) < 0.02)
    return img[None].astype(np.float32)


def test_bm3d_improves_on_its_gaussian_noisy_input():
    clean = _phantom()
    noisy = clean + np.random.default_rng(0).normal(0, 15, clean.shape).astype(np.float32)
    before = psnr_ssim(noisy, clean, 255.0)[0]
    after = psnr_ssim(bm3d_denoise(noisy, 1.0, 15.0), clean, 255.0)[0]
    assert after > before + 4, (before, after)


def test_bias_corrected_bm4d_removes_the_rician_floor():
    from medgan.tasks.heldout import add_noise

    clean = _phantom()
    noisy = add_noise({"x": clean[0]}, 15.0)["x"][None]
    out = bm4d_rician(noisy, 1.0, 15.0)
    dark = clean[0] < 30  # signal 20: Rician magnitude mean ~1.3x higher
    assert psnr_ssim(out, clean, 255.0)[0] > psnr_ssim(noisy, clean, 255.0)[0] + 4
    assert abs(float(out[0][dark].mean()) - 20.0) < 4.0  # the bias is corrected
    assert float(noisy[0][dark].mean()) - 20.0 > 4.0  # ... which was there to correct
