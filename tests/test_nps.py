"""The noise power spectrum against its definition: Parseval, white noise, a known filter."""

import numpy as np
import pytest
from scipy import ndimage

from medgan.metrics.nps import (
    cut_rois,
    mean_frequency,
    noise_power_spectrum,
    nps_shape_distance,
    radial_nps,
    uniform_rois,
)


def test_parseval_the_nps_integrates_to_the_roi_variance():
    rois = np.random.default_rng(0).normal(0, 7.0, (5, 32, 32))
    dx = 0.7
    nps = noise_power_spectrum(rois, dx)
    df = 1 / (32 * dx)
    assert nps.sum() * df**2 == pytest.approx(rois.var(axis=(1, 2)).mean(), rel=1e-12)


def test_white_noise_is_flat_at_sigma_squared_dx_squared():
    sigma, dx = 10.0, 0.5
    rois = np.random.default_rng(1).normal(0, sigma, (400, 32, 32))
    f, r = radial_nps(noise_power_spectrum(rois, dx), dx)
    assert f[-1] == pytest.approx(1 / (2 * dx))
    # flat within sampling error away from DC (DC is removed by detrending)
    assert np.allclose(r[1:], sigma**2 * dx**2, rtol=0.1)
    assert r[0] < 0.1 * sigma**2 * dx**2


def test_filtered_noise_follows_the_filter_transfer_function():
    """Circularly filtered white noise: NPS = sigma^2 dx^2 |K(f)|^2 with K the DFT of the
    wrapped kernel (what scipy.ndimage applies with mode='wrap')."""
    rng = np.random.default_rng(2)
    m, sigma = 32, 5.0
    noise = rng.normal(0, sigma, (600, m, m))
    smooth = ndimage.gaussian_filter(noise, (0, 1.2, 1.2), mode="wrap")
    delta = np.zeros((m, m))
    delta[0, 0] = 1
    kernel = ndimage.gaussian_filter(delta, 1.2, mode="wrap")
    expected = sigma**2 * np.abs(np.fft.fft2(kernel)) ** 2
    got = noise_power_spectrum(smooth)
    far = np.ones((m, m), bool)
    far[0, 0] = False  # the mean is removed per ROI
    assert np.allclose(got[far], expected[far], rtol=0.2, atol=1e-3 * expected.max())
    f, white = radial_nps(noise_power_spectrum(noise))
    _, blotchy = radial_nps(got)
    assert mean_frequency(f, blotchy) < 0.6 * mean_frequency(f, white)
    assert nps_shape_distance(white, 3 * white) == pytest.approx(0.0, abs=1e-12)
    assert 0.3 < nps_shape_distance(white, blotchy) <= 1.0


def test_uniform_rois_keep_only_constant_regions():
    ref = np.zeros((2, 16, 16))
    ref[0, :8, :8] = 5.0
    ref[1, 3, 12] = 1.0
    corners = uniform_rois(ref, 8)
    assert corners.tolist() == [
        [0, 0, 0],
        [0, 0, 8],
        [0, 8, 0],
        [0, 8, 8],
        [1, 0, 0],
        [1, 8, 0],
        [1, 8, 8],
    ]
    assert uniform_rois(ref, 8, value_range=(1, 9)).tolist() == [[0, 0, 0]]
    assert len(uniform_rois(ref, 8, stride=4)) == 9 + 5
    rois = cut_rois(ref + np.arange(16.0), corners, 8)
    assert rois.shape == (7, 8, 8) and rois[0, 0, 0] == 5.0
    with pytest.raises(ValueError, match=r"size \+ 2 \* margin"):
        uniform_rois(ref, 32)
    with pytest.raises(ValueError, match="different rings"):
        nps_shape_distance(np.ones(3), np.ones(4))


def test_uniform_rois_keep_a_margin_from_edges():
    ref = np.zeros((1, 20, 20))
    ref[0, :, 14:] = 9.0  # an edge at column 14
    plain = uniform_rois(ref, 6, stride=2)
    kept = uniform_rois(ref, 6, stride=2, margin=2)
    assert {tuple(c) for c in kept} <= {tuple(c) for c in plain}
    assert all(c + 6 + 2 <= 14 for _, _, c in kept if ref[0, 0, c] == 0)
    assert not any(c + 6 == 14 for _, _, c in kept)  # ROIs touching the edge are dropped
    with pytest.raises(ValueError, match="no ROI corners"):
        cut_rois(ref, uniform_rois(ref, 6, value_range=(100, 200)), 6)
    with pytest.raises(ValueError, match="stride"):
        uniform_rois(ref, 6, stride=0)
