"""U-Net, PatchGAN, pix2pix loss and DiffAugment: shapes in 2D/3D, paired training that
lowers the reconstruction error, differentiable and resumable augmentation."""

from __future__ import annotations

import pytest
import torch

import medgan
from medgan.augment import AugmentedDiscriminator, DiffAugment
from medgan.batches import Paired
from medgan.data import CTPhantomSlices
from medgan.errors import ConfigError


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


def test_pix2pix_denoising_lowers_l1():
    ct = CTPhantomSlices(n=32, size=32, seed=0)
    clean = torch.stack([ct[i] for i in range(32)])
    noisy = (
        clean + 0.2 * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    ).clamp(-1, 1)
    data = torch.utils.data.TensorDataset(noisy, clean)
    medgan.seed_everything(0)
    g = medgan.models.build("unet_generator", base_channels=8, depth=2)
    d = medgan.models.build("patchgan_discriminator", base_channels=8, n_layers=2)
    tr = medgan.Trainer(
        g,
        d,
        data,
        adapter=Paired(),
        loss=medgan.losses.build_loss("pix2pix", l1_weight=50.0),
        config=medgan.TrainConfig(steps=40, batch_size=8, device="cpu", lr_g=1e-3),
    )
    with torch.no_grad():
        before = (g(noisy) - clean).abs().mean()
    tr.fit()
    with torch.no_grad():
        after = (tr.generator.eval()(noisy) - clean).abs().mean()
    assert after < 0.5 * before
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
    tr = medgan.Trainer(
        g,
        AugmentedDiscriminator(d, DiffAugment()),
        vols,
        config=medgan.TrainConfig(steps=2, batch_size=4, device="cpu"),
    )
    tr.fit()
    assert tr.step == 2


def test_residual_unet_adds_a_correction_to_its_input():
    g = medgan.models.build("unet_generator", base_channels=4, depth=2, residual=True)
    torch.nn.init.zeros_(g.out.weight)
    torch.nn.init.zeros_(g.out.bias)
    x = torch.rand(2, 1, 16, 16) * 2 - 1
    assert torch.equal(g(x), x)  # zero correction -> identity
    with pytest.raises(ConfigError, match="residual"):
        medgan.models.build("unet_generator", in_channels=2, out_channels=1, residual=True)
