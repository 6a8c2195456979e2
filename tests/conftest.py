from __future__ import annotations

import numpy as np
import pytest
import torch

import medgan
from medgan.data import CTPhantomSlices, Volume

# Two cores: keep each test process to a predictable thread count.
torch.set_num_threads(min(2, torch.get_num_threads()))

# Hypothesis profiles of the fuzz suite (tests/test_fuzz.py): "ci" by default (a few hundred
# examples in all); `pytest tests/test_fuzz.py --hypothesis-profile thorough` runs 20x more.
try:
    from hypothesis import HealthCheck, settings
except ImportError:  # pragma: no cover - hypothesis is in the test extra
    pass
else:
    settings.register_profile(
        "ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    settings.register_profile(
        "thorough", max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck)
    )
    settings.load_profile("ci")


# ------------------------------------------------------------------ shared tiny setups
# The smallest models and trainers the suite trains: one definition, so a change to the
# trainer's signature or the models' defaults is one edit here.


@pytest.fixture
def tiny_gan():
    """``tiny_gan(seed=0, **kw) -> (generator, discriminator)``: the 16-pixel DCGAN pair
    (4 base channels, latent size 8), seeded; ``kw`` goes to both builders (for instance
    ``num_classes=2``)."""

    def build(seed: int = 0, **kw):
        medgan.seed_everything(seed)
        g = medgan.models.build(
            "dcgan_generator", image_size=16, base_channels=4, latent_dim=8, **kw
        )
        d = medgan.models.build("dcgan_discriminator", image_size=16, base_channels=4, **kw)
        return g, d

    return build


@pytest.fixture
def tiny_trainer(tiny_gan):
    """``tiny_trainer(seed=0, callbacks=(), data=None, loss=None, **cfg) -> Trainer``: the
    ``tiny_gan`` pair on 40 CT phantoms of 16 px (5 batches of 8 an epoch), 12 steps of 2 D
    updates, non-saturating loss with R1 0.5, on the CPU; ``cfg`` overrides TrainConfig
    fields."""

    def build(seed=0, callbacks=(), data=None, loss=None, **cfg):
        g, d = tiny_gan(seed)
        config = medgan.TrainConfig(
            **{"steps": 12, "batch_size": 8, "device": "cpu", "n_critic": 2, **cfg}
        )
        data = data if data is not None else CTPhantomSlices(n=40, size=16)
        loss = loss or medgan.losses.NonSaturating(r1_weight=0.5)
        return medgan.Trainer(g, d, data, loss=loss, config=config, callbacks=callbacks)

    return build


@pytest.fixture
def tmp_run_dir(tmp_path):
    """A run folder (``out_dir``) that does not exist yet, in this test's temporary folder."""
    return tmp_path / "run"


@pytest.fixture
def nan_loss():
    """``nan_loss(on_call=None)``: a non-saturating loss whose D loss turns NaN on the
    ``on_call``-th D update (1-based; with n_critic 2, call 9 is step 5's first), or on
    every update when ``on_call`` is None."""

    def build(on_call: int | None = None) -> medgan.losses.NonSaturating:
        calls = 0

        class NanLoss(medgan.losses.NonSaturating):
            def d_loss(self, r, f):
                nonlocal calls
                calls += 1
                out = super().d_loss(r, f)
                return out * float("nan") if on_call in (None, calls) else out

        return NanLoss()

    return build


@pytest.fixture(scope="session")
def enhance_checkpoint(tmp_path_factory):
    """A folder with ``c.pt``, a paired U-Net/PatchGAN checkpoint after one step (what
    ``medgan enhance --checkpoint`` reads), and ``in.nii.gz``, a (3, 40, 36) volume of
    uniform noise in [0, 255]."""
    from medgan.batches import Paired
    from medgan.data import save_nifti

    g = medgan.models.build("unet_generator", base_channels=4, depth=2, norm="none")
    d = medgan.models.build("patchgan_discriminator", base_channels=4, n_layers=2)
    x = torch.rand(8, 1, 32, 32) * 2 - 1
    tr = medgan.Trainer(
        g,
        d,
        torch.utils.data.TensorDataset(x, x),
        adapter=Paired(),
        config=medgan.TrainConfig(steps=1, batch_size=4, device="cpu"),
    ).fit()
    folder = tmp_path_factory.mktemp("enhance")
    tr.save(folder / "c.pt")
    vol = Volume(np.random.default_rng(0).uniform(0, 255, (3, 40, 36)), np.eye(4))
    save_nifti(vol, folder / "in.nii.gz")
    return folder


@pytest.fixture(scope="session")
def t1():
    """The embedded MNI152 T1 template as a Volume (2 mm, RAS+)."""
    from medgan.data import embedded

    return embedded("mni152_t1")


@pytest.fixture
def random_denoiser():
    """``make(seed=0)``: a small NoiseLevelDenoiser (8 channels, depth 3) in eval mode whose
    residual branch is not zero (as after training), its weights drawn from ``seed``."""

    def make(seed: int = 0) -> torch.nn.Module:
        torch.manual_seed(seed)
        m = medgan.models.build("noise_level_denoiser", base_channels=8, depth=3)
        torch.nn.init.normal_(m.net.out.weight, std=0.3)
        return m.eval()

    return make
