"""The modern recipe: R3GAN-style networks, the relativistic pairing loss with R1 + R2,
adaptive augmentation, the one-call recipe, the throughput features of the trainer, and
the sliced Wasserstein distance (checked against scipy's 1D Wasserstein distance)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from scipy.stats import wasserstein_distance

import medgan
from medgan import losses
from medgan.augment import AugmentedDiscriminator, DiffAugment
from medgan.errors import ConfigError
from medgan.metrics.swd import laplacian_pyramid, sliced_wasserstein, sliced_wasserstein_1d
from medgan.models.modern import Resample

# --------------------------------------------------------------------------- networks


@pytest.mark.parametrize("size,dims", [(16, 2), (32, 2), (64, 2), (16, 3)])
def test_modern_pair_shapes_and_fixup_identity(size, dims):
    kw = dict(image_size=size, spatial_dims=dims, base_channels=4, max_channels=16)
    g = medgan.models.build("modern_generator", latent_dim=8, **kw)
    d = medgan.models.build("modern_discriminator", **kw)
    x = g(torch.randn(3, 8))
    assert x.shape == (3, 1, *([size] * dims))
    assert x.abs().max() <= 1
    assert d(x).shape == (3,)
    # fix-up: the last layer of every residual branch starts at zero -> identity blocks
    blocks = [m for m in g.modules() if type(m).__name__ == "ResidualBlock"]
    assert blocks
    h = torch.randn(2, blocks[0].expand.in_channels, *([4] * dims))
    assert torch.equal(blocks[0](h), h)
    # no normalisation layers anywhere
    norms = (
        torch.nn.BatchNorm2d,
        torch.nn.BatchNorm3d,
        torch.nn.InstanceNorm2d,
        torch.nn.GroupNorm,
    )
    assert not any(isinstance(m, norms) for m in [*g.modules(), *d.modules()])


def test_modern_conditional_and_bad_arguments():
    g = medgan.models.build("modern_generator", image_size=16, base_channels=4, num_classes=3)
    d = medgan.models.build("modern_discriminator", image_size=16, base_channels=4, num_classes=3)
    y = torch.tensor([0, 2])
    assert d(g(torch.randn(2, 64), y), y).shape == (2,)
    with pytest.raises(ValueError, match="labels"):
        d(torch.zeros(2, 1, 16, 16))
    with pytest.raises(ConfigError, match="power of two"):
        medgan.models.build("modern_generator", image_size=48)
    with pytest.raises(ConfigError, match="expansion"):
        medgan.models.build("modern_discriminator", expansion=0)


@pytest.mark.parametrize("dims", [2, 3])
def test_resample_is_a_normalised_low_pass(dims):
    const = torch.full((1, 2, *([8] * dims)), 3.0)
    inner = (0, 0) + (slice(2, -2),) * dims
    assert torch.allclose(Resample(dims, "up")(const)[inner], torch.tensor(3.0))
    assert torch.allclose(
        Resample(dims, "down")(const)[(0, 0) + (slice(1, None),) * dims], torch.tensor(3.0)
    )
    # a Nyquist checkerboard is removed by the [1, 2, 1] filter before decimation
    grid = torch.stack(torch.meshgrid(*[torch.arange(8)] * dims, indexing="ij")).sum(0)
    checker = ((-1.0) ** grid)[None, None]
    assert Resample(dims, "down")(checker)[(0, 0) + (slice(1, None),) * dims].abs().max() < 1e-6


# --------------------------------------------------------------------------- the loss


def test_relativistic_loss_matches_its_formula():
    real = torch.tensor([1.5, -0.3, 2.0, 0.1], dtype=torch.float64)
    fake = torch.tensor([0.2, 0.4, -1.0, 3.0], dtype=torch.float64)
    rp = losses.build_loss("relativistic")

    def f(t):  # -log sigmoid(-t), by hand
        return -math.log(1 / (1 + math.exp(t)))

    want_d = sum(f(fk - r) for r, fk in zip(real.tolist(), fake.tolist())) / 4
    want_g = sum(f(r - fk) for r, fk in zip(real.tolist(), fake.tolist())) / 4
    assert rp.d_loss(real, fake).item() == pytest.approx(want_d, rel=1e-12)
    assert rp.g_loss(fake, real).item() == pytest.approx(want_g, rel=1e-12)
    # only differences matter: D + c is the same discriminator
    assert rp.d_loss(real + 7, fake + 7).item() == pytest.approx(want_d, rel=1e-12)
    # finite for huge logit gaps
    big = torch.tensor([1e4])
    assert torch.isfinite(rp.d_loss(big, -big)) and torch.isfinite(rp.g_loss(-big, big))
    with pytest.raises(ConfigError, match="real batch"):
        rp.g_loss(fake)
    assert rp.r1_weight > 0 and rp.r2_weight > 0  # R1 and R2 by default (Huang et al. 2024)


def _tiny_d():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(8, 4),
        torch.nn.Tanh(),
        torch.nn.Linear(4, 1),
        torch.nn.Flatten(0),
    )


def test_penalties_from_the_shared_pass_equal_the_separate_penalties():
    d = _tiny_d()
    real, fake = torch.randn(5, 2, 4), torch.randn(5, 2, 4)
    loss = losses.build_loss("relativistic", r1_weight=2.0, r2_weight=3.0)
    total, logs = loss.discriminator_objective(d, real, fake)
    r1, r2 = losses.r1_penalty(d, real), losses.r2_penalty(d, fake)
    want = loss.d_loss(d(real), d(fake)) + 0.5 * 2.0 * r1 + 0.5 * 3.0 * r2
    assert total.item() == pytest.approx(want.item(), rel=1e-6)
    assert logs["r1"].item() == pytest.approx(r1.item(), rel=1e-6)
    assert logs["r2"].item() == pytest.approx(r2.item(), rel=1e-6)
    # the penalty's graph reaches D's parameters (double backward)
    total.backward()
    assert all(p.grad is not None for p in d.parameters())


def test_lazy_regularisation_weights_and_skips():
    d = _tiny_d()
    real, fake = torch.randn(5, 2, 4), torch.randn(5, 2, 4)
    lazy = losses.build_loss("relativistic", r1_weight=2.0, r2_weight=0.0, reg_every=4)
    adv = lazy.d_loss(d(real), d(fake))
    on, logs = lazy.discriminator_objective(d, real, fake, regularize=True)
    assert on.item() == pytest.approx(
        (adv + 0.5 * 2.0 * 4 * losses.r1_penalty(d, real)).item(), rel=1e-6
    )
    off, logs_off = lazy.discriminator_objective(d, real, fake, regularize=False)
    assert off.item() == pytest.approx(adv.item(), rel=1e-6) and "r1" not in logs_off
    with pytest.raises(ConfigError, match="reg_every"):
        losses.build_loss("hinge", reg_every=0)


def test_overfit_signal_of_each_loss():
    real, fake = torch.tensor([1.0, 2.0, -1.0, 3.0]), torch.tensor([0.0, 5.0, -2.0, 1.0])
    assert losses.NonSaturating().overfit_signal(real, fake).item() == pytest.approx(0.5)
    # relativistic: sign of the pairs' differences (+1, -1, +1, +1)
    assert losses.build_loss("relativistic").overfit_signal(real, fake).item() == pytest.approx(0.5)
    # a task loss reports what its adversarial term reports
    p2p = losses.build_loss("pix2pix", adversarial="relativistic")
    assert p2p.needs_real_logits and p2p.overfit_signal(real, fake).item() == pytest.approx(0.5)


# --------------------------------------------------------------------------- ADA


def test_adaptive_augmentation_moves_p_towards_the_target():
    aug = DiffAugment(p=0.5)
    for _ in range(4):
        aug.accumulate(torch.tensor(0.9))  # D overfits: r_t > 0.6
    aug.adapt(target=0.6, step_size=0.1)
    assert aug.p.item() == pytest.approx(0.6)
    aug.accumulate(torch.tensor(0.1))
    aug.adapt(target=0.6, step_size=0.25)
    assert aug.p.item() == pytest.approx(0.35)
    aug.adapt(target=0.6, step_size=0.25)  # no measurement since the last step: p stays
    assert aug.p.item() == pytest.approx(0.35)
    for _ in range(10):
        aug.accumulate(torch.tensor(-1.0))
        aug.adapt(0.6, 0.25)
    assert aug.p.item() == 0.0  # clipped to [0, 1]
    state = aug.state_dict()
    assert {"p", "ada_stats"} <= set(state)


def test_diffaugment_translation_and_cutout_are_exact():
    x = torch.arange(16.0).view(1, 1, 4, 4) / 16
    shifted = DiffAugment("translation", p=1.0, translation_ratio=0.25, seed=3)(x)
    # a shift by at most 1 pixel: every output pixel is an input pixel or the fill value -1
    values = set(x.flatten().tolist()) | {-1.0}
    assert set(shifted.flatten().tolist()) <= values
    cut = DiffAugment("cutout", p=1.0, cutout_ratio=0.5, seed=1)(torch.zeros(3, 1, 8, 8, 8))
    assert ((cut == -1).flatten(1).sum(1) == 4**3).all()  # one 4^3 box per volume
    assert torch.equal(DiffAugment("cutout", p=0.0)(x), x)


def test_ada_in_training_logs_p_and_resumes_bit_exactly(tmp_path):
    data = torch.rand(16, 1, 16, 16) * 2 - 1

    def make(out):
        return medgan.recipes.unconditional(
            data,
            16,
            seed=3,
            steps=7,
            device="cpu",
            batch_size=4,
            out_dir=out,
            checkpoint_every=3,
            sample_every=100,
            augment=True,
        )

    # the checkpoint at step 3 falls inside an ADA interval (4) and between lazy
    # penalties (every 4th update): both running states must travel with it
    full = make(tmp_path / "a").fit()
    part = make(tmp_path / "b").fit(3)
    aug = part.discriminator.augment
    assert aug.ada_stats[1].item() == 3  # three signals accumulated, not yet applied
    resumed = make(tmp_path / "c").resume(tmp_path / "b" / "checkpoints" / "last.pt").fit()
    assert part.step == 3 and resumed.step == 7
    for a, b in zip(full.generator.state_dict().values(), resumed.generator.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(
        full.discriminator.state_dict().values(), resumed.discriminator.state_dict().values()
    ):
        assert torch.equal(a, b)
    rows = medgan.callbacks.read_metric_log(tmp_path / "a" / "metrics.csv")
    assert "aug_p" in rows[-1] and 0 <= rows[-1]["aug_p"] <= 1
    assert (tmp_path / "a" / "samples" / "real_vs_generated.png").exists()


# --------------------------------------------------------------------------- recipe/trainer


def test_recipe_reads_shapes_from_the_data_and_refuses_mismatches():
    tr = medgan.recipes.unconditional(torch.rand(8, 1, 16, 16, 16) * 2 - 1, steps=1, device="cpu")
    assert tr.generator.spatial_dims == 3 and tr.config.batch_size == 8
    assert isinstance(tr.discriminator, AugmentedDiscriminator)  # small data: ADA on
    assert isinstance(tr.loss, losses.Relativistic)
    with pytest.raises(ConfigError, match="image_size=32"):
        medgan.recipes.unconditional(torch.rand(8, 1, 16, 16), 32)
    with pytest.raises(ConfigError, match="unknown override"):
        medgan.recipes.unconditional(torch.rand(8, 1, 16, 16), nonsense=1)
    pts = medgan.recipes.unconditional(torch.randn(300, 2), steps=1, device="cpu")
    assert type(pts.generator).__name__ == "MLPGenerator" and pts.config.batch_size == 256


def test_recipe_seeds_its_weights_without_touching_the_callers_random_state(monkeypatch):
    def refuse(*_):
        raise AssertionError("the recipe reseeded the CUDA generators")

    data = torch.rand(8, 1, 16, 16) * 2 - 1
    torch.manual_seed(123)
    monkeypatch.setattr(torch.cuda, "manual_seed_all", refuse)
    monkeypatch.setattr(torch.cuda, "manual_seed", refuse)
    before = torch.get_rng_state()
    a = medgan.recipes.unconditional(data, seed=5, device="cpu")
    assert torch.equal(torch.get_rng_state(), before)
    b = medgan.recipes.unconditional(data, seed=5, device="cpu")
    c = medgan.recipes.unconditional(data, seed=6, device="cpu")
    for (k, x), y in zip(
        a.generator.state_dict().items(), b.generator.state_dict().values(), strict=True
    ):
        assert torch.equal(x, y), k
    assert any(
        not torch.equal(x, z)
        for x, z in zip(a.generator.parameters(), c.generator.parameters(), strict=True)
    )


def test_max_minutes_stops_cleanly_and_checkpoints(tmp_path):
    tr = medgan.recipes.unconditional(
        torch.rand(8, 1, 16, 16) * 2 - 1,
        steps=10**6,
        max_minutes=1e-4,
        device="cpu",
        out_dir=tmp_path,
        batch_size=4,
    )
    tr.fit()
    assert 1 <= tr.step < 10**6
    assert (tmp_path / "checkpoints" / f"step_{tr.step:08d}.pt").exists()
    with pytest.raises(ConfigError, match="max_minutes"):
        medgan.TrainConfig(max_minutes=0)


def test_persistent_loader_walks_epochs_in_the_sampler_order():
    data = torch.arange(10.0).view(10, 1)
    g = medgan.models.build("mlp_generator", latent_dim=1, data_dim=1, hidden=4, depth=1)
    d = medgan.models.build("mlp_discriminator", data_dim=1, hidden=4, depth=1)
    tr = medgan.Trainer(g, d, data, config=medgan.TrainConfig(batch_size=4, device="cpu"))
    seen = [tr.next_inputs().real.flatten().tolist() for _ in range(5)]
    # 2 full batches per epoch (the tail of 2 is dropped), epochs reshuffled
    for e in range(2):
        tr.sampler.set_position(e, 0)
        order = [float(i) for i in tr.sampler]
        assert seen[2 * e] == order[:4] and seen[2 * e + 1] == order[4:8]
    assert (tr.epoch, tr.batch_in_epoch) == (2, 1)


def test_nan_is_caught_between_batched_checks():
    g = medgan.models.build("mlp_generator", hidden=8, depth=1)
    d = medgan.models.build("mlp_discriminator", hidden=8, depth=1)
    tr = medgan.Trainer(
        g,
        d,
        torch.randn(64, 2),
        config=medgan.TrainConfig(batch_size=8, device="cpu", check_finite_every=4),
    )
    tr.fit(1)
    with torch.no_grad():
        next(g.parameters()).fill_(float("nan"))  # poisons every later step
    with pytest.raises(medgan.TrainingDivergedError, match="step 4"):
        tr.fit(10)
    # a NaN after the last multiple is still caught at the end of fit
    tr2 = medgan.Trainer(
        g,
        d,
        torch.randn(64, 2),
        config=medgan.TrainConfig(batch_size=8, device="cpu", check_finite_every=4),
    )
    with pytest.raises(medgan.TrainingDivergedError, match="step 3"):
        tr2.fit(3)


def test_compile_is_refused_with_penalties():
    g = medgan.models.build("mlp_generator", hidden=8, depth=1)
    d = medgan.models.build("mlp_discriminator", hidden=8, depth=1)
    with pytest.raises(ConfigError, match="double backward"):
        medgan.Trainer(
            g,
            d,
            torch.randn(64, 2),
            loss=losses.build_loss("relativistic"),
            config=medgan.TrainConfig(batch_size=8, device="cpu", compile=True),
        )


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_checkpoint_resumes_with_cpu_random_states(tmp_path):
    data = torch.rand(16, 1, 16, 16) * 2 - 1
    tr = medgan.recipes.unconditional(data, seed=1, steps=2, device="cuda", batch_size=4)
    tr.fit()
    tr.save(tmp_path / "c.pt")
    again = medgan.recipes.unconditional(data, seed=1, steps=4, device="cuda", batch_size=4)
    again.resume(tmp_path / "c.pt").fit()
    straight = medgan.recipes.unconditional(data, seed=1, steps=4, device="cuda", batch_size=4)
    straight.fit()
    # the resumed run continues the straight one (up to GPU kernels' nondeterminism)
    for a, b in zip(again.generator.parameters(), straight.generator.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


# --------------------------------------------------------------------------- SWD


def test_sliced_wasserstein_1d_matches_scipy():
    rng = torch.Generator().manual_seed(0)
    a, b = torch.randn(200, 5, generator=rng), torch.randn(200, 5, generator=rng) * 2 + 1
    ours = sliced_wasserstein_1d(a, b, 16, torch.Generator().manual_seed(7))
    dirs = torch.randn(5, 16, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    dirs /= dirs.norm(dim=0, keepdim=True)
    want = (
        sum(
            wasserstein_distance(
                (a.double() @ dirs[:, j]).numpy(), (b.double() @ dirs[:, j]).numpy()
            )
            for j in range(16)
        )
        / 16
    )
    assert ours == pytest.approx(want, rel=1e-9)


def test_swd_is_small_for_one_distribution_and_grows_with_blur():
    rng = torch.Generator().manual_seed(0)
    x = torch.rand(64, 1, 32, 32, generator=rng) * 2 - 1
    y = torch.rand(64, 1, 32, 32, generator=rng) * 2 - 1
    blurred = F.avg_pool2d(F.pad(y, (1, 1, 1, 1), mode="reflect"), 3, 1)
    same, other = sliced_wasserstein(x, y), sliced_wasserstein(x, blurred)
    # blur removes the finest band: the 32x32 level sees it most
    assert other["swd"] > 2 * same["swd"] and other["swd_32"] > 4 * same["swd_32"]
    assert set(sliced_wasserstein(x, y)) == {"swd", "swd_32", "swd_16"}
    levels = laplacian_pyramid(x)
    assert [lv.shape[-1] for lv in levels] == [32, 16]


def test_gpu_check_script_runs_its_code_paths_on_the_cpu(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parents[1] / "benchmarks" / "gpu_check.py"
    args = ["--allow-cpu", "--steps", "13", "--size", "16", "--images", "16", "--batch", "4"]
    subprocess.run([sys.executable, str(script), *args, "--out", str(tmp_path)], check=True)
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    assert result["resume_bit_exact"] is True
    assert [r["amp"] for r in result["amp"]] == ["off", "bf16"]
    assert all(r["finite"] for r in result["amp"])
    assert math.isfinite(result["fid_cpu"]) and result["fid_cpu"] >= 0
