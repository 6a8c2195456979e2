"""U-Net, PatchGAN, pix2pix loss and DiffAugment: shapes in 2D/3D, paired training that
lowers the reconstruction error, differentiable and resumable augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import medgan
from medgan.augment import AugmentedDiscriminator, DiffAugment
from medgan.batches import Paired, Unpaired
from medgan.data import CTPhantomSlices, IntensityWindow, UnpairedDataset, Volume
from medgan.errors import ConfigError, DataError


@pytest.mark.parametrize("dims", [2, 3])
def test_unet_and_patchgan_shapes(dims):
    size = 32 if dims == 2 else 24
    g = medgan.models.build("unet_generator", spatial_dims=dims, base_channels=4, depth=2)
    d = medgan.models.build(
        "patchgan_discriminator", spatial_dims=dims, base_channels=4, n_layers=2
    )
    x = torch.rand(2, 1, *([size] * dims)) * 2 - 1
    y = g(x)
    assert y.shape == x.shape and y.abs().max() <= 1
    assert d(y, x).dim() == 2 and d(y, x).shape[0] == 2
    with pytest.raises(ValueError, match="divisible by 4"):
        g(torch.zeros(1, 1, *([size + 2] * dims)))
    with pytest.raises(ValueError, match="sides >= 12"):
        d(torch.zeros(1, 1, *([8] * dims)), torch.zeros(1, 1, *([8] * dims)))


def test_multiscale_concatenates_scales():
    d = medgan.models.build(
        "multiscale_patchgan_discriminator", num_scales=2, base_channels=4, n_layers=2
    )
    x = torch.rand(2, 1, 48, 48)
    single = d.discs[0](x, x).shape[1]
    assert d(x, x).shape[1] > single


def test_pix2pix_refuses_an_unknown_adversarial_loss():
    # that paired training lowers the reconstruction error: tests/test_tasks.py
    with pytest.raises(ConfigError, match="unknown loss"):
        medgan.losses.build_loss("pix2pix", adversarial="nope")


def test_diffaugment_differentiable_joint_and_resumable():
    aug = DiffAugment(seed=1)
    x = (torch.rand(4, 1, 16, 16) * 2 - 1).requires_grad_(True)
    y = aug(x)
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.equal(DiffAugment(p=0.0)(x), x)
    vol = torch.rand(2, 1, 8, 8, 8)
    assert DiffAugment()(vol).shape == vol.shape

    seen = {}

    class Spy(torch.nn.Module):
        def forward(self, a, b):
            seen["a"], seen["b"] = a, b
            return a.flatten(1).mean(1)

    img = torch.rand(3, 1, 16, 16)
    AugmentedDiscriminator(Spy(), DiffAugment(policy="translation,cutout", seed=3))(
        img, img.clone()
    )
    assert torch.equal(seen["a"], seen["b"])  # one transform for the pair

    a, b = DiffAugment(seed=5), DiffAugment(seed=9)
    a(x)
    b.load_state_dict(a.state_dict())  # the random state is in the state dict
    assert torch.equal(a(x), b(x))
    with pytest.raises(ConfigError, match="policy"):
        DiffAugment(policy="rotate")


def test_trainer_with_augmented_discriminator_3d():
    g = medgan.models.build(
        "dcgan_generator", image_size=16, base_channels=2, latent_dim=8, spatial_dims=3
    )
    d = medgan.models.build("dcgan_discriminator", image_size=16, base_channels=2, spatial_dims=3)
    vols = torch.rand(8, 1, 16, 16, 16) * 2 - 1
    aug = DiffAugment()
    unused = aug.rng.get_state()
    tr = medgan.Trainer(
        g,
        AugmentedDiscriminator(d, aug),
        vols,
        config=medgan.TrainConfig(steps=2, batch_size=4, device="cpu"),
    )
    before = [p.detach().clone() for p in g.parameters()]
    tr.fit()
    assert not torch.equal(aug.rng.get_state(), unused)  # D saw augmented volumes
    assert any(not torch.equal(a, b) for a, b in zip(before, tr.generator.parameters()))


def test_residual_unet_adds_a_correction_to_its_input():
    g = medgan.models.build("unet_generator", base_channels=4, depth=2, residual=True)
    torch.nn.init.zeros_(g.out.weight)
    torch.nn.init.zeros_(g.out.bias)
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    assert torch.equal(g(x), x)  # zero correction -> identity
    # extra input channels (a mask) are context: the correction applies to the first ones
    g2 = medgan.models.build(
        "unet_generator", in_channels=2, out_channels=1, base_channels=4, depth=2, residual=True
    )
    torch.nn.init.zeros_(g2.out.weight)
    torch.nn.init.zeros_(g2.out.bias)
    x2 = torch.rand(2, 2, 16, 16) * 2 - 1
    assert torch.equal(g2(x2), x2[:, :1])
    with pytest.raises(ConfigError, match="residual"):
        medgan.models.build("unet_generator", in_channels=1, out_channels=2, residual=True)


def _unpaired_phantoms(n: int = 16, size: int = 32):
    """Domain A: CT phantoms; domain B: other phantoms with inverted contrast."""
    a = CTPhantomSlices(n=n, size=size, seed=0)
    b = torch.stack([-CTPhantomSlices(n=n, size=size, seed=1)[i] for i in range(n)])
    return UnpairedDataset(a, b, seed=0)


def test_cycle_models_layout_and_loss_terms_by_hand():
    torch.manual_seed(0)
    g = medgan.models.build("cycle_generator", base_channels=4, depth=2)
    d = medgan.models.build("cycle_discriminator", base_channels=4, n_layers=2)
    a, b = torch.rand(2, 1, 32, 32) * 2 - 1, torch.rand(2, 1, 32, 32) * 2 - 1
    fake = g(a, b)
    torch.testing.assert_close(fake, torch.cat([g.ba(b), g.ab(a)], 1))
    logits = d(torch.cat([a, b], 1))
    torch.testing.assert_close(
        logits, torch.cat([d.a(a).flatten(1), d.b(b).flatten(1)], 1)
    )  # both unconditional
    loss = medgan.losses.build_loss("cycle_gan", cycle_weight=10.0, identity_weight=5.0)
    total, logs = loss.generator_objective(d, torch.cat([a, b], 1), fake, None, g_net=g)
    l1 = lambda x, y: (x - y).abs().mean()  # noqa: E731
    cycle = 0.5 * (l1(g.ba(g.ab(a)), a) + l1(g.ab(g.ba(b)), b))
    identity = 0.5 * (l1(g.ba(a), a) + l1(g.ab(b), b))
    adv = 0.5 * (d(fake) - 1).pow(2).mean()  # least squares by default (Zhu et al. 2017)
    torch.testing.assert_close(logs["cycle"], cycle.detach())
    torch.testing.assert_close(logs["identity"], identity.detach())
    torch.testing.assert_close(total, adv + 10 * cycle + 5 * identity)
    with pytest.raises(ConfigError, match="cycle_generator"):
        loss.generator_objective(d, torch.cat([a, b], 1), fake, None, g_net=None)
    g3 = medgan.models.build("cycle_generator", channels_b=2, base_channels=4, depth=2)
    d3 = medgan.models.build("cycle_discriminator", channels_b=2, base_channels=4, n_layers=2)
    b2 = torch.rand(2, 2, 32, 32) * 2 - 1
    with pytest.raises(ConfigError, match="identity_weight=0"):
        loss.generator_objective(d3, torch.cat([a, b2], 1), g3(a, b2), None, g_net=g3)


def test_cycle_gan_trains_resumes_and_translates(tmp_path):
    from medgan.generate import load_generator
    from medgan.tasks import translate

    def make(steps):
        medgan.seed_everything(0)
        return medgan.Trainer(
            medgan.models.build("cycle_generator", base_channels=8, depth=2),
            medgan.models.build("cycle_discriminator", base_channels=8, n_layers=2),
            _unpaired_phantoms(),
            adapter=Unpaired(),
            loss=medgan.losses.build_loss("cycle_gan"),
            config=medgan.TrainConfig(steps=steps, batch_size=4, device="cpu", lr_g=1e-3),
        )

    tr = make(50)
    data = _unpaired_phantoms()
    a = torch.stack([data[i][0] for i in range(8)])
    b = torch.stack([data[i][1] for i in range(8)])

    def cycle_error():
        with torch.no_grad():
            g = tr.generator
            return float((g.ba(g.ab(a)) - a).abs().mean() + (g.ab(g.ba(b)) - b).abs().mean())

    before = cycle_error()
    tr.fit()
    after = cycle_error()
    assert after < 0.7 * before
    ckpt = tr.save(tmp_path / "c.pt")
    # exact resume: 50 + 4 steps == 54 steps straight
    straight = make(54)
    straight.fit()
    resumed = make(54).resume(ckpt)
    resumed.fit()
    for p, q in zip(straight.generator.parameters(), resumed.generator.parameters(), strict=True):
        assert torch.equal(p, q)
    g = load_generator(ckpt)
    assert type(g).__name__ == "CycleGenerator"
    vol = Volume(np.random.default_rng(0).uniform(-1000, 1000, (3, 40, 24)), np.diag([2, 1, 1, 1]))
    out = translate(vol, g.ab, IntensityWindow(-1000, 1000), axis=0)
    assert out.array.shape == vol.array.shape and np.array_equal(out.affine, vol.affine)


def test_unpaired_batches_and_dataset_errors():
    ds = _unpaired_phantoms(n=4)
    a, b = ds[1]
    assert a.shape == b.shape == (1, 32, 32)
    with pytest.raises(ValueError, match="match in size"):
        Unpaired()((torch.zeros(2, 1, 8, 8), torch.zeros(2, 1, 8, 16)), None)
    with pytest.raises(DataError, match="non-empty"):
        UnpairedDataset([], [torch.zeros(1, 4, 4)])


def test_recipes_build_the_documented_setups():
    from medgan.tasks import cyclegan_trainer, pix2pix_trainer

    x = torch.rand(4, 2, 32, 32) * 2 - 1
    tr = pix2pix_trainer(
        torch.utils.data.TensorDataset(x, x[:, :1]),
        3,
        in_channels=2,
        residual=True,
        lr_g=1e-3,
        batch_size=2,
    )
    assert tr.generator.medgan_spec.kwargs["residual"] is True
    assert tr.discriminator.cond_channels == 2 and tr.loss.l1_weight == 100.0
    assert (tr.config.steps, tr.config.lr_g, tr.config.lr_d) == (3, 1e-3, 2e-4)
    assert isinstance(tr.adapter, Paired)
    before = [p.detach().clone() for p in tr.generator.parameters()]
    tr.fit()
    assert any(not torch.equal(a, b) for a, b in zip(before, tr.generator.parameters()))
    same = cyclegan_trainer(_unpaired_phantoms(n=4), 1, batch_size=2)
    other = cyclegan_trainer(UnpairedDataset(x[:, :1], x), 1, channels_b=2, batch_size=2)
    assert same.loss.identity_weight == 5.0 and other.loss.identity_weight == 0.0
    other.fit()
    assert isinstance(other.adapter, Unpaired) and other.generator.channels_b == 2


def test_pix2pix_perceptual_term_on_domain_features():
    from medgan.metrics.domain import DomainEncoderFeatures, perceptual_distance

    enc = DomainEncoderFeatures().net
    y = CTPhantomSlices(n=2, size=48, seed=0)
    real = torch.stack([y[0], y[1]])
    assert float(perceptual_distance(enc, real, real)) == 0.0
    fake = (real + 0.3 * torch.randn_like(real)).clamp(-1, 1).requires_grad_(True)
    # by hand: the 4 stages are consecutive slices of 6 layers of the encoder body
    x_maps, y_maps, a, b = [], [], fake, real
    for i in range(4):
        a, b = enc.body[6 * i : 6 * i + 6](a), enc.body[6 * i : 6 * i + 6](b)
        x_maps.append(a)
        y_maps.append(b)
    hand = sum((p - q).abs().mean() for p, q in zip(x_maps, y_maps, strict=True))
    torch.testing.assert_close(perceptual_distance(enc, fake, real), hand)
    loss = medgan.losses.build_loss("pix2pix", perceptual_weight=2.0)
    d = medgan.models.build("patchgan_discriminator", base_channels=4, n_layers=2)
    total, logs = loss.generator_objective(d, real, fake, real)
    torch.testing.assert_close(logs["perceptual"], hand.detach())
    total.backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss._encoder.parameters())  # the encoder stays frozen


def test_pix2pix_adversarial_weight_scales_the_term_and_zero_skips_d():
    """G's objective is adv_weight * L_adv + l1_weight * L1; at 0 D is not run at all."""
    torch.manual_seed(0)
    d = medgan.models.build("patchgan_discriminator", base_channels=4, n_layers=2)
    src, real = torch.rand(2, 2, 1, 24, 24) * 2 - 1
    fake = (torch.rand(2, 1, 24, 24) * 2 - 1).requires_grad_(True)
    logits = d(fake, src).float()
    adv = torch.nn.functional.softplus(-logits).mean()  # non-saturating g_loss
    l1 = (fake - real).abs().mean()
    for w in (1.0, 0.25):
        loss = medgan.losses.build_loss("pix2pix", l1_weight=10.0, adv_weight=w)
        total, logs = loss.generator_objective(d, real, fake, src)
        torch.testing.assert_close(total, w * adv + 10.0 * l1)
        torch.testing.assert_close(logs["g_adv"], adv.detach())

    class Refuses(torch.nn.Module):
        def forward(self, *args):
            raise AssertionError("D must not run when adv_weight is 0")

    only_l1 = medgan.losses.build_loss("pix2pix", l1_weight=10.0, adv_weight=0.0)
    total, logs = only_l1.generator_objective(Refuses(), real, fake, src)
    torch.testing.assert_close(total, 10.0 * l1)
    assert set(logs) == {"l1"}
    with pytest.raises(ConfigError, match="adv_weight"):
        medgan.losses.build_loss("pix2pix", adv_weight=-1.0)
