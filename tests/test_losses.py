"""Every loss against its formula on hand-chosen logits, including |logit| = 100."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import jensenshannon

from medgan import losses
from medgan.errors import ConfigError


def sig(x):
    return 1 / (1 + math.exp(-x))


REAL = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)
FAKE = torch.tensor([-3.0, 0.0, 1.5], dtype=torch.float64)


def mean(f, xs):
    return sum(f(float(x)) for x in xs) / len(xs)


def test_minimax_is_goodfellow_value_function():
    loss = losses.Minimax()
    v = mean(lambda r: math.log(sig(r)), REAL) + mean(lambda f: math.log(1 - sig(f)), FAKE)
    assert loss.value(REAL, FAKE).item() == pytest.approx(v, rel=1e-12)
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(-v, rel=1e-12)
    assert loss.g_loss(FAKE).item() == pytest.approx(mean(lambda f: math.log(1 - sig(f)), FAKE))


def test_non_saturating_generator_loss():
    loss = losses.NonSaturating()
    assert loss.g_loss(FAKE).item() == pytest.approx(mean(lambda f: -math.log(sig(f)), FAKE))
    assert loss.d_loss(REAL, FAKE).item() == pytest.approx(
        losses.Minimax().d_loss(REAL, FAKE).item()
    )


def test_wasserstein_hinge_least_squares_formulas():
    r, f = REAL.numpy(), FAKE.numpy()
    w = losses.Wasserstein()
    assert w.d_loss(REAL, FAKE).item() == pytest.approx(f.mean() - r.mean())
    assert w.g_loss(FAKE).item() == pytest.approx(-f.mean())
    h = losses.Hinge()
    assert h.d_loss(REAL, FAKE).item() == pytest.approx(
        np.maximum(0, 1 - r).mean() + np.maximum(0, 1 + f).mean()
    )
    assert h.g_loss(FAKE).item() == pytest.approx(-f.mean())
    ls = losses.LeastSquares()
    assert ls.d_loss(REAL, FAKE).item() == pytest.approx(
        0.5 * ((r - 1) ** 2).mean() + 0.5 * (f**2).mean()
    )
    assert ls.g_loss(FAKE).item() == pytest.approx(0.5 * ((f - 1) ** 2).mean())


@pytest.mark.parametrize(
    "name", ["minimax", "non_saturating", "wasserstein", "hinge", "least_squares"]
)
def test_extreme_logits_stay_finite(name):
    loss = losses.build_loss(name)
    big = torch.tensor([100.0, -100.0, 1e4, -1e4], requires_grad=True)
    for value in (
        loss.d_loss(big, -big),
        loss.d_loss(-big, big),
        loss.g_loss(big),
        loss.g_loss(-big),
    ):
        assert torch.isfinite(value)
        (g,) = torch.autograd.grad(value, big)
        assert torch.isfinite(g).all()


def test_saturating_losses_at_logit_100_equal_their_limits():
    # log sigmoid(-100) = -100 (to 1e-40), softplus form gets it exactly
    x = torch.tensor([100.0], dtype=torch.float64)
    assert losses.Minimax().d_loss(-x, x).item() == pytest.approx(200.0, rel=1e-12)
    assert losses.NonSaturating().g_loss(-x).item() == pytest.approx(100.0, rel=1e-12)
    assert losses.Minimax().g_loss(x).item() == pytest.approx(-100.0, rel=1e-12)


def test_optimal_discriminator_value_is_minus_log4_when_pg_equals_pdata():
    # D*(x) = p_data / (p_data + p_g) = 1/2  <=>  logit 0 everywhere.
    z = torch.zeros(1000, dtype=torch.float64)
    assert losses.Minimax().value(z, z).item() == pytest.approx(-math.log(4), rel=1e-12)


def test_value_at_optimal_discriminator_is_minus_log4_plus_2_jsd():
    # Goodfellow et al. 2014, Theorem 1: C(G) = -log 4 + 2 JSD(p_data || p_g), on a
    # discrete space where expectations are exact weighted sums over 10 equally likely draws.
    p_data = np.array([0.5, 0.3, 0.2])
    p_g = np.array([0.2, 0.2, 0.6])
    logit = torch.tensor(np.log(p_data / p_g))  # logit of D* = p_d / (p_d + p_g)
    real = torch.cat([logit[k].repeat(int(round(10 * p))) for k, p in enumerate(p_data)])
    fake = torch.cat([logit[k].repeat(int(round(10 * p))) for k, p in enumerate(p_g)])
    jsd = jensenshannon(p_data, p_g) ** 2  # scipy returns the square root, natural log
    v = losses.Minimax().value(real, fake).item()
    assert v == pytest.approx(-math.log(4) + 2 * jsd, rel=1e-12)


def test_penalties_match_hand_gradients():
    # D(x) = sum(w * x): grad = w everywhere, so R1 = R2 = ||w||^2 and GP = (||w|| - 1)^2.
    w = torch.tensor([3.0, 4.0])

    class Linear(torch.nn.Module):
        def forward(self, x):
            return (x * w).sum(1)

    d = Linear()
    x = torch.randn(5, 2)
    assert losses.r1_penalty(d, x).item() == pytest.approx(25.0)
    assert losses.r2_penalty(d, x).item() == pytest.approx(25.0)
    assert losses.gradient_penalty(d, x, torch.randn(5, 2)).item() == pytest.approx(16.0)


def test_registry_and_validation():
    assert {"minimax", "non_saturating", "wasserstein", "hinge", "least_squares"} <= set(
        losses.LOSSES.available()
    )
    with pytest.raises(ConfigError, match="Available"):
        losses.build_loss("nonsaturating")
    with pytest.raises(ConfigError, match="r1_weight"):
        losses.Hinge(r1_weight=-1)
    assert losses.Wasserstein().gp_weight == 10.0


def test_objective_adds_weighted_penalty():
    torch.manual_seed(0)
    d = torch.nn.Sequential(
        torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1), torch.nn.Flatten(0)
    )
    real, fake = torch.randn(16, 2), torch.randn(16, 2)
    base, _ = losses.NonSaturating().discriminator_objective(d, real, fake)
    total, logs = losses.NonSaturating(r1_weight=2.0).discriminator_objective(d, real, fake)
    assert total.item() == pytest.approx(base.item() + logs["r1"].item(), rel=1e-6)


@pytest.mark.parametrize("name", ["pix2pix", "cycle_gan", "segmentation"])
def test_task_losses_keep_the_adversarial_losss_penalties(name):
    """Issue #11: with adversarial="wasserstein" the task loss trained with gp_weight 0."""
    import medgan.tasks  # noqa: F401  (registers "segmentation")

    loss = losses.build_loss(name, adversarial="wasserstein")
    assert loss.gp_weight == 10.0 and loss.r1_weight == 0.0
    d = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 1))
    real, fake = torch.randn(4, 1, 4, 4), torch.randn(4, 1, 4, 4)
    _, logs = loss.discriminator_objective(d, real, fake)
    assert "gp" in logs and float(logs["gp"]) > 0
    assert losses.build_loss(name, adversarial="wasserstein", gp_weight=0.0).gp_weight == 0.0
    assert losses.build_loss(name, adversarial="hinge", r1_weight=2.0).r1_weight == 2.0
    assert losses.build_loss(name).gp_weight == 0.0  # non-saturating: no penalty by default
