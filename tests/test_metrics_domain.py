"""The shipped domain encoder: loads offline, separates real from corrupted images."""

from __future__ import annotations

import warnings

import pytest
import torch

from medgan.data import CTPhantomSlices, SliceDataset, embedded
from medgan.metrics import FID, KID, DensityCoverage, PrecisionRecall, SliceFeatures25D
from medgan.metrics.domain import DomainEncoderFeatures


@pytest.fixture(scope="module")
def encoder():
    return DomainEncoderFeatures()


def _fid(enc, real, fake):
    m = FID(enc)
    m.update(real, real=True)
    m.update(fake, real=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # N < d is expected here
        return m.compute()


@pytest.mark.parametrize("source", ["mri", "ct"])
def test_fid_grows_monotonically_with_noise(encoder, source):
    if source == "mri":
        ds = SliceDataset(embedded("mni152_t1"), "axial", min_foreground=0.1, size=64)
        x = torch.stack([ds[i] for i in range(len(ds))])
    else:
        ct = CTPhantomSlices(n=120, size=64, seed=5)
        x = torch.stack([ct[i] for i in range(len(ct))])
    real, held_out = x[::2], x[1::2]  # disjoint images
    g = torch.Generator().manual_seed(0)
    levels = [0.0, 0.1, 0.2, 0.4, 0.8]
    fids = [
        _fid(encoder, real, (held_out + s * torch.randn(held_out.shape, generator=g)).clamp(-1, 1))
        for s in levels
    ]
    assert all(a < b for a, b in zip(fids, fids[1:])), fids
    assert encoder.dim == 128 and len(encoder.weights_sha256) == 64


def test_other_scores_run_on_domain_features_and_25d(encoder):
    ct = CTPhantomSlices(n=40, size=64, seed=2)
    x = torch.stack([ct[i] for i in range(40)])
    noisy = (x + 0.5 * torch.randn_like(x)).clamp(-1, 1)
    for metric in (
        KID(encoder, subsets=5, subset_size=20),
        PrecisionRecall(encoder),
        DensityCoverage(encoder),
    ):
        metric.update(x[:20], real=True)
        metric.update(noisy[20:], real=False)
        out = metric.compute()
        assert all(v == v for v in out.values())  # no NaN
    clean, corrupted = PrecisionRecall(encoder), PrecisionRecall(encoder)
    for m, fake in ((clean, x[20:]), (corrupted, noisy[20:])):
        m.update(x[:20], real=True)
        m.update(fake, real=False)
    assert clean.compute()["precision"] > corrupted.compute()["precision"]
    vols = torch.rand(2, 1, 16, 24, 20) * 2 - 1
    assert SliceFeatures25D(encoder, size=64)(vols).shape == (2, 3 * 128)


def test_score_25d_averages_three_views(encoder):
    import warnings

    from medgan.metrics import FID, score_25d, slices_along

    t1 = torch.from_numpy(embedded("mni152_t1").array[:, :96, :88].copy() / 127.5 - 1)
    real = t1[None, None, ::2, ::2, ::2].float()  # (1, 1, 49, 48, 44)
    noisy = (real + 0.5 * torch.randn_like(real)).clamp(-1, 1)
    assert slices_along(real, 3).shape == (48, 1, 49, 44)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        same = score_25d(lambda: FID(encoder), real, real)
        worse = score_25d(lambda: FID(encoder), real, noisy)
    assert set(worse) == {"axial", "coronal", "sagittal", "mean"}
    assert worse["mean"] == pytest.approx(
        (worse["axial"] + worse["coronal"] + worse["sagittal"]) / 3
    )
    assert abs(same["mean"]) < 1e-3 * worse["mean"]


def test_fid_as_trainer_evaluation_hook(encoder, tiny_gan):
    import warnings

    import medgan
    from medgan.callbacks import Evaluate
    from medgan.metrics import FID

    ct = CTPhantomSlices(n=64, size=16, seed=0)
    real = torch.stack([ct[i] for i in range(64)])

    def evaluate(trainer):
        fid = FID(encoder)
        fid.update(real, real=True)
        with torch.no_grad():
            fid.update(trainer.ema(trainer.sample_noise(64)), real=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return {"fid_domain": fid.compute()}

    g, d = tiny_gan()
    ev = Evaluate(evaluate, every=2)
    medgan.Trainer(
        g, d, ct, config=medgan.TrainConfig(steps=4, batch_size=16, device="cpu"), callbacks=[ev]
    ).fit()
    assert [h["step"] for h in ev.history] == [2, 4] and all(
        h["fid_domain"] > 0 for h in ev.history
    )
