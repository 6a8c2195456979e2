"""Parity with the reference implementations: pytorch-fid (network, features, FID),
torch-fidelity (KID, IS, precision/recall), scipy (matrix square root)."""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_fid  # noqa: F401  (reference implementations: the test extra installs them)
import scipy.linalg
import torch
import torch_fidelity  # noqa: F401

from medgan import metrics
from medgan.data import SliceDataset, embedded
from medgan.metrics.frechet import FeatureStats, frechet_distance
from medgan.metrics.inception import random_weights
from medgan.utils import sha256_of


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Randomly initialised FID-Inception weights (activations kept O(1))."""
    path = tmp_path_factory.mktemp("w") / "random_inception.pth"
    torch.save(random_weights(0), path)
    return path


@pytest.fixture(scope="module")
def reference_net(weights):
    import pytorch_fid.inception as pfi

    orig = pfi.load_state_dict_from_url
    pfi.load_state_dict_from_url = lambda *a, **k: torch.load(weights, weights_only=True)
    try:
        return pfi.InceptionV3([3]).eval()  # resize_input=True, normalize_input=True
    finally:
        pfi.load_state_dict_from_url = orig


def real_images(n, size):
    ds = SliceDataset(embedded("mni152_t1"), "axial", min_foreground=0.1, size=size)
    return torch.stack([ds[i % len(ds)] for i in range(n)])


def test_features_match_pytorch_fid_with_default_resize(weights, reference_net):
    x = real_images(6, 64)  # [-1, 1], grey
    ours = metrics.InceptionV3Features(weights)
    assert not ours.published  # random weights are flagged
    with torch.no_grad():
        theirs = reference_net(((x + 1) / 2).expand(-1, 3, -1, -1))[0].flatten(1)
    mine = ours(x)
    assert mine.shape == (6, 2048) and mine.abs().max() > 1e-3
    torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # 2100 Inception passes: about 35 s on 2 cores
def test_fid_matches_pytorch_fid_when_n_exceeds_d(weights):
    """2100 images at 75x75 without resizing (both sides), so N > 2048 and both FIDs are
    well-posed; pytorch-fid's statistics (np.mean, np.cov) and its Fréchet formula."""
    import pytorch_fid.inception as pfi
    from pytorch_fid.fid_score import calculate_frechet_distance

    orig = pfi.load_state_dict_from_url
    pfi.load_state_dict_from_url = lambda *a, **k: torch.load(weights, weights_only=True)
    try:
        ref = pfi.InceptionV3([3], resize_input=False).eval()
    finally:
        pfi.load_state_dict_from_url = orig
    g = torch.Generator().manual_seed(0)
    base = real_images(60, 75)
    real = (
        base[torch.randint(0, 60, (2100,), generator=g)]
        + 0.05 * torch.randn(2100, 1, 75, 75, generator=g)
    ).clamp(-1, 1)
    fake = (
        base[torch.randint(0, 60, (2100,), generator=g)]
        + 0.3 * torch.randn(2100, 1, 75, 75, generator=g)
    ).clamp(-1, 1)
    ours = metrics.InceptionV3Features(weights, resize="none")
    fid = metrics.FID(ours, batch_size=100)
    fid.update(real, real=True)
    fid.update(fake, real=False)
    value = fid.compute()

    def ref_feats(x):
        with torch.no_grad():
            return torch.cat(
                [
                    ref(((x[i : i + 100] + 1) / 2).expand(-1, 3, -1, -1))[0].flatten(1)
                    for i in range(0, len(x), 100)
                ]
            ).numpy()

    a, b = ref_feats(real), ref_feats(fake)
    expected = calculate_frechet_distance(
        a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False)
    )
    assert value == pytest.approx(expected, rel=1e-6)
    assert fid.provenance()["weights_sha256"] == sha256_of(weights)


@pytest.mark.parametrize(
    "n, d",
    [(100, 64), pytest.param(2500, 2048, marks=pytest.mark.slow)],  # 2048: sqrtm takes ~15 s
)
def test_frechet_matches_scipy_sqrtm_and_handles_rank_deficiency(n, d):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d))
    y = rng.normal(size=(n, d)) @ (np.eye(d) + 0.01 * rng.normal(size=(d, d))) + 0.1
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    m1, m2 = x.mean(0), y.mean(0)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    expected = (m1 - m2) @ (m1 - m2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(expected, rel=1e-6)
    # N < d: singular covariances stay finite and real
    small = np.cov(x[:50], rowvar=False)
    v = frechet_distance(x[:50].mean(0), small, m2, s2)
    assert np.isfinite(v) and isinstance(v, float)
    assert frechet_distance(m1, s1, m1, s1) == pytest.approx(0.0, abs=1e-6 * np.trace(s1))


def test_streaming_stats_equal_numpy_and_merge_and_npz(tmp_path):
    rng = np.random.default_rng(1)
    f = rng.normal(size=(500, 16))
    a, b = FeatureStats(), FeatureStats()
    a.update(torch.from_numpy(f[:200]))
    b.update(f[200:])
    a.merge(b)
    np.testing.assert_allclose(a.mu, f.mean(0), rtol=1e-12)
    np.testing.assert_allclose(a.sigma, np.cov(f, rowvar=False), rtol=1e-9, atol=1e-12)
    a.save(tmp_path / "s.npz")
    with np.load(tmp_path / "s.npz") as z:  # pytorch-fid's .npz layout
        np.testing.assert_allclose(z["mu"], a.mu)
        np.testing.assert_allclose(z["sigma"], a.sigma)
    c = FeatureStats.load(tmp_path / "s.npz")
    assert frechet_distance(c.mu, c.sigma, a.mu, a.sigma) == pytest.approx(0, abs=1e-9)


def _feature_sets(n=300, d=64):
    g = torch.Generator().manual_seed(3)
    return torch.randn(n, d, generator=g, dtype=torch.float64) + 0.2, torch.randn(
        n + 20, d, generator=g, dtype=torch.float64
    )


def test_kid_matches_torch_fidelity():
    from torch_fidelity.metric_kid import kid_features_to_metric

    fake, real = _feature_sets()
    ref = kid_features_to_metric(
        fake, real, kid_subsets=20, kid_subset_size=100, rng_seed=7, verbose=False
    )
    ours = metrics.kid(fake.numpy(), real.numpy(), subsets=20, subset_size=100, seed=7)
    assert ours["kid_mean"] == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-9)
    assert ours["kid_std"] == pytest.approx(ref["kernel_inception_distance_std"], rel=1e-9)
    with pytest.warns(UserWarning, match="clipped"):
        metrics.kid(fake.numpy()[:50], real.numpy(), subsets=2, subset_size=100)


def test_inception_score_matches_torch_fidelity():
    from torch_fidelity.metric_isc import isc_features_to_metric

    logits = torch.randn(500, 1008, generator=torch.Generator().manual_seed(4)) * 3
    ref = isc_features_to_metric(logits, splits=10, shuffle=True, rng_seed=2020)
    ours = metrics.inception_score(logits.numpy(), splits=10, seed=2020)
    assert ours["is_mean"] == pytest.approx(ref["inception_score_mean"], rel=1e-6)
    assert ours["is_std"] == pytest.approx(ref["inception_score_std"], rel=1e-5)


def test_precision_recall_match_torch_fidelity_and_density_coverage_by_hand():
    from torch_fidelity.metric_prc import prc_features_to_metric

    fake, real = _feature_sets(200, 16)
    ref = prc_features_to_metric(
        fake.float(),
        real.float(),
        prc_neighborhood=3,
        prc_batch_size=10000,
        save_cpu_ram=False,
        verbose=False,
    )
    ours = metrics.precision_recall(fake.numpy(), real.numpy(), k=3)
    assert ours["precision"] == pytest.approx(ref["precision"], abs=1e-9)
    assert ours["recall"] == pytest.approx(ref["recall"], abs=1e-9)
    # density/coverage on a hand-made case: reals on a line, k=1
    real = np.array([[0.0], [1.0], [2.0], [3.0]])  # NND_1 = 1 for every real
    fake = np.array([[0.5], [10.0]])  # inside the balls of reals 0 and 1; far away
    dc = metrics.density_coverage(fake, real, k=1)
    assert dc == {"density": pytest.approx(2 / 2), "coverage": pytest.approx(2 / 4)}


def test_fid_infinity_removes_the_small_sample_bias():
    from medgan.metrics import fid_infinity

    rng = np.random.default_rng(5)
    real = FeatureStats()
    real.update(rng.normal(size=(20000, 32)))
    fake = rng.normal(size=(400, 32))  # same distribution: the true FID is 0
    full = FeatureStats()
    full.update(fake)
    biased = frechet_distance(full.mu, full.sigma, real.mu, real.sigma)
    value, points = fid_infinity(fake, real)
    assert len(points) >= 5 and all(m <= 400 for m, _ in points)
    assert abs(value) < 0.25 * biased  # the 1/N extrapolation removes most of the bias
