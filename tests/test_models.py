"""Model registry and the image contract: shapes, [-1, 1] output, logits, 2D and 3D."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medgan import models
from medgan.errors import ConfigError
from medgan.registry import MODELS, spec_of


def test_registry_lists_and_refuses():
    assert {
        "dcgan_generator",
        "dcgan_discriminator",
        "resnet_generator",
        "resnet_discriminator",
        "mlp_generator",
        "mlp_discriminator",
    } <= set(models.available())
    with pytest.raises(ConfigError) as e:
        models.build("dcgan_gen")
    assert "dcgan_generator" in str(e.value) and "Available" in str(e.value)
    with pytest.raises(ConfigError, match="already registered"):

        @models.register("dcgan_generator")
        class Other(nn.Module):
            pass

    with pytest.raises(ConfigError, match="bad keyword"):
        models.build("dcgan_generator", imagesize=64)
    with pytest.raises(ConfigError, match="JSON"):
        models.build("dcgan_generator", image_size=torch.tensor(64))


def test_user_module_registers_in_one_line_and_records_spec():
    @models.register("test_tiny_gen")
    class TinyGen(nn.Module):
        def __init__(self, latent_dim: int = 4):
            super().__init__()
            self.latent_dim = latent_dim
            self.fc = nn.Linear(latent_dim, 16)

        def forward(self, z):
            return torch.tanh(self.fc(z)).view(-1, 1, 4, 4)

    try:
        g = models.build("test_tiny_gen", latent_dim=3)
        assert spec_of(g).name == "test_tiny_gen" and spec_of(g).kwargs == {"latent_dim": 3}
        assert g(torch.randn(2, 3)).shape == (2, 1, 4, 4)
    finally:
        MODELS.unregister("test_tiny_gen")


@pytest.mark.parametrize("family", ["dcgan", "resnet"])
@pytest.mark.parametrize("size", [16, 32, 64])
def test_2d_shapes_range_and_logits(family, size):
    g = models.build(f"{family}_generator", image_size=size, base_channels=8, latent_dim=16)
    d = models.build(f"{family}_discriminator", image_size=size, base_channels=8)
    x = g(torch.randn(3, 16))
    assert x.shape == (3, 1, size, size) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    assert d(x).shape == (3,)


@pytest.mark.parametrize("size", [128, 256])
def test_large_sizes_build(size):
    g = models.build("dcgan_generator", image_size=size, base_channels=4, latent_dim=8)
    d = models.build("dcgan_discriminator", image_size=size, base_channels=4)
    assert d(g(torch.randn(1, 8))).shape == (1,)


@pytest.mark.parametrize("family", ["dcgan", "resnet"])
def test_3d_same_class(family):
    g = models.build(
        f"{family}_generator",
        image_size=16,
        base_channels=4,
        latent_dim=8,
        spatial_dims=3,
        out_channels=2,
    )
    d = models.build(
        f"{family}_discriminator", image_size=16, base_channels=4, spatial_dims=3, in_channels=2
    )
    x = g(torch.randn(2, 8))
    assert x.shape == (2, 2, 16, 16, 16)
    assert d(x).shape == (2,)


@pytest.mark.parametrize("family", ["dcgan", "resnet", "mlp"])
def test_class_conditional_projection(family):
    kw = {} if family == "mlp" else {"image_size": 16, "base_channels": 4}
    g = models.build(f"{family}_generator", num_classes=3, latent_dim=8, **kw)
    d = models.build(f"{family}_discriminator", num_classes=3, **kw)
    z, y = torch.randn(4, 8), torch.tensor([0, 1, 2, 1])
    x = g(z, y)
    out = d(x, y)
    assert out.shape == (4,)
    # the label changes the logit through the projection term
    assert not torch.allclose(out, d(x, torch.tensor([2, 2, 0, 0])))
    with pytest.raises(ValueError, match="labels"):
        d(x)


def test_bad_sizes_and_dims():
    with pytest.raises(ConfigError, match="power of two"):
        models.build("dcgan_generator", image_size=48)
    with pytest.raises(ConfigError, match="power of two"):
        models.build("resnet_discriminator", image_size=512)
    with pytest.raises(ConfigError, match="spatial_dims"):
        models.build("dcgan_generator", spatial_dims=1)


def test_resnet_discriminator_is_spectrally_normalised():
    d = models.build("resnet_discriminator", image_size=16, base_channels=4)
    names = [n for n, _ in d.named_parameters()]
    assert any("parametrizations.weight.original" in n for n in names)
