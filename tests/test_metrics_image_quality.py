"""PSNR/SSIM/MS-SSIM against scikit-image and an independent scipy computation, on real
images; Dice/IoU against hand counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from medgan.data import SliceDataset, embedded
from medgan.metrics.image_quality import MS_SSIM_WEIGHTS, dice, iou, ms_ssim, psnr, ssim


@pytest.fixture(scope="module")
def pair():
    ds = SliceDataset(embedded("mni152_t1"), "axial", min_foreground=0.2)
    x = torch.stack([ds[5], ds[20]])
    g = torch.Generator().manual_seed(0)
    y = (x + 0.08 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    return x.double(), y.double()


def test_psnr_and_ssim_match_skimage_2d(pair):
    x, y = pair
    ref_ssim = np.mean(
        [
            structural_similarity(
                a[0].numpy(),
                b[0].numpy(),
                data_range=2.0,
                gaussian_weights=True,
                sigma=1.5,
                use_sample_covariance=False,
            )
            for a, b in zip(x, y)
        ]
    )
    assert ssim(x, y, 2.0).item() == pytest.approx(ref_ssim, abs=1e-10)
    ref_psnr = np.mean(
        [peak_signal_noise_ratio(a.numpy(), b.numpy(), data_range=2.0) for a, b in zip(x, y)]
    )
    assert psnr(x, y, 2.0).item() == pytest.approx(ref_psnr, abs=1e-10)
    assert ssim(x, x, 2.0).item() == pytest.approx(1.0)


def test_ssim_3d_matches_skimage():
    vol = embedded("mni152_t1")
    a = torch.from_numpy(vol.array[20:60, 30:70, 30:60].copy() / 127.5 - 1).double()
    b = a + 0.05 * torch.randn(
        a.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    ref = structural_similarity(
        a.numpy(),
        b.numpy(),
        data_range=2.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    assert ssim(a[None, None], b[None, None], 2.0).item() == pytest.approx(ref, abs=1e-10)


def _ms_ssim_reference(a: np.ndarray, b: np.ndarray, L: float) -> float:
    """Wang et al. 2003 with scipy filters (independent of the torch implementation)."""
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    vals = []
    for i, _ in enumerate(MS_SSIM_WEIGHTS):
        f = lambda z: ndimage.gaussian_filter(z, 1.5, truncate=3.5)  # noqa: E731 (11 taps)
        mx, my = f(a), f(b)
        sxx, syy, sxy = f(a * a) - mx**2, f(b * b) - my**2, f(a * b) - mx * my
        cs = (2 * sxy + c2) / (sxx + syy + c2)
        s = cs * (2 * mx * my + c1) / (mx**2 + my**2 + c1)
        crop = (slice(5, -5),) * a.ndim
        vals.append(max(0.0, float((s if i == len(MS_SSIM_WEIGHTS) - 1 else cs)[crop].mean())))
        a = a.reshape(a.shape[0] // 2, 2, a.shape[1] // 2, 2).mean((1, 3))
        b = b.reshape(b.shape[0] // 2, 2, b.shape[1] // 2, 2).mean((1, 3))
    return float(np.prod(np.array(vals) ** np.array(MS_SSIM_WEIGHTS)))


def test_ms_ssim_matches_independent_reference(pair):
    x, y = (torch.nn.functional.interpolate(t, size=(192, 192), mode="bilinear") for t in pair)
    ref = np.mean([_ms_ssim_reference(a[0].numpy(), b[0].numpy(), 2.0) for a, b in zip(x, y)])
    assert ms_ssim(x, y, 2.0).item() == pytest.approx(ref, abs=1e-9)
    with pytest.raises(ValueError, match="sides >= 176"):
        ms_ssim(pair[0][:, :, :100, :100], pair[1][:, :, :100, :100], 2.0)


def test_dice_iou_by_hand():
    pred = torch.tensor([[0, 1, 1, 2], [2, 2, 0, 0]])
    target = torch.tensor([[0, 1, 0, 2], [2, 0, 0, 1]])
    # class 1: |A|=2, |B|=2, inter=1 -> dice 0.5, iou 1/3; class 2: |A|=3, |B|=2, inter=2 -> 0.8, 2/3
    np.testing.assert_allclose(dice(pred, target, 3).numpy(), [0.5, 0.8])
    np.testing.assert_allclose(iou(pred, target, 3).numpy(), [1 / 3, 2 / 3])
    assert torch.isnan(dice(pred, target, 4)[-1])
