"""SegAN's multi-scale L1 game (Xue et al. 2018; medgan.tasks.segmentation): the critic's
features, the loss against its formula, the critic's update raising the distance it is
asked to maximise, and a short training through the Trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import medgan
from medgan.errors import ConfigError
from medgan.losses import build_loss
from medgan.models import build
from medgan.tasks import LabelsToOneHot, SegANCritic, multiscale_l1, segment
from medgan.tasks.segmentation import soft_dice_loss


def _batch(seed: int = 0, n: int = 4, k: int = 3, side: int = 16):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(n, 1, side, side, generator=g) * 2 - 1
    labels = torch.randint(0, k, (n, side, side), generator=g)
    onehot = torch.nn.functional.one_hot(labels, k).movedim(-1, 1).float()
    probs = torch.softmax(torch.randn(n, k, side, side, generator=g), 1)
    return image, onehot, probs


def test_critic_features_start_with_the_masked_image_and_halve_per_layer():
    torch.manual_seed(0)
    critic = SegANCritic(num_classes=3, base_channels=4, n_layers=3)
    image, onehot, _ = _batch()
    feats = critic(onehot, image)
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2]
    assert [f.shape[1] for f in feats] == [3, 4, 8, 16]
    for k in range(3):  # x o S: class k's map times the image in [0, 1]
        torch.testing.assert_close(feats[0][:, k], onehot[:, k] * (image[:, 0] + 1) / 2)
    assert all(
        hasattr(m, "parametrizations") for m in critic.modules() if isinstance(m, torch.nn.Conv2d)
    )


def test_multiscale_l1_matches_its_formula():
    g = torch.Generator().manual_seed(1)
    a = [torch.randn(2, 3, 8, 8, generator=g), torch.randn(2, 5, 4, 4, generator=g)]
    b = [torch.randn(2, 3, 8, 8, generator=g), torch.randn(2, 5, 4, 4, generator=g)]
    want = np.mean([np.abs(x.numpy() - y.numpy()).mean() for x, y in zip(a, b)])
    assert float(multiscale_l1(a, b)) == pytest.approx(want, rel=1e-6)
    assert float(multiscale_l1(a, a)) == 0.0


def test_segan_objectives_the_critic_ascends_and_the_segmenter_descends():
    torch.manual_seed(0)
    # eval mode: spectral norm keeps its power-iteration vector, so passes are repeatable
    critic = SegANCritic(num_classes=3, base_channels=8, n_layers=2).eval()
    loss = build_loss("segan", adv_weight=2.0)
    image, onehot, probs = _batch()
    d_loss, logs = loss.discriminator_objective(critic, onehot, probs, image)
    with torch.no_grad():
        before = float(multiscale_l1(critic(onehot, image), critic(probs, image)))
    assert float(d_loss.detach()) == pytest.approx(-before, rel=1e-6)
    assert float(logs["segan_mae"]) == pytest.approx(before, rel=1e-6)
    opt = torch.optim.SGD(critic.parameters(), lr=0.05)
    for _ in range(3):
        opt.zero_grad()
        loss.discriminator_objective(critic, onehot, probs, image)[0].backward()
        opt.step()
    with torch.no_grad():
        after = float(multiscale_l1(critic(onehot, image), critic(probs, image)))
    assert after > before  # the critic maximises the distance

    logits = torch.log(probs).requires_grad_(True)
    g_loss, g_logs = loss.generator_objective(critic, onehot, logits.softmax(1), image)
    dice = soft_dice_loss(probs, onehot)
    ce = -(onehot * probs.log()).sum(1).mean()
    with torch.no_grad():
        mae = multiscale_l1(critic(probs, image), critic(onehot, image))
    assert float(g_loss.detach()) == pytest.approx(float(dice + ce + 2.0 * mae), rel=1e-5)
    assert float(g_logs["g_adv"]) == pytest.approx(float(mae), rel=1e-5)
    g_loss.backward()
    assert logits.grad is not None and float(logits.grad.abs().sum()) > 0
    plain = build_loss("segan", adv_weight=0.0).generator_objective(critic, onehot, probs, image)
    assert float(plain[0]) == pytest.approx(float(dice + ce), rel=1e-5)
    with pytest.raises(ConfigError, match="adv_weight"):
        build_loss("segan", adv_weight=-1.0)


def test_segan_trains_through_the_trainer_and_refuses_what_does_not_apply():
    medgan.seed_everything(0)
    image, onehot, _ = _batch(n=16, side=32)
    labels = onehot.argmax(1)
    seg = build("unet_segmenter", num_classes=3, base_channels=4, depth=2, norm="batch")
    critic = build("segan_critic", num_classes=3, base_channels=4, n_layers=2)
    before = [p.detach().clone() for p in (*seg.parameters(), *critic.parameters())]
    tr = medgan.Trainer(
        seg,
        critic,
        torch.utils.data.TensorDataset(image, labels),
        adapter=LabelsToOneHot(3),
        loss=build_loss("segan"),
        config=medgan.TrainConfig(steps=3, batch_size=4, device="cpu", ema_halflife_kimg=None),
    ).fit()
    assert tr.step == 3
    after = [p.detach() for p in (*seg.parameters(), *critic.parameters())]
    n_seg = len(list(seg.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(before[:n_seg], after[:n_seg]))
    assert any(not torch.equal(a, b) for a, b in zip(before[n_seg:], after[n_seg:]))
    vol = medgan.data.Volume(image[:2, 0].numpy() * 127.5 + 127.5, np.eye(4))
    out = segment(vol, seg, medgan.data.IntensityWindow(0.0, 255.0), axis=0)
    assert out.array.shape == (2, 32, 32) and set(np.unique(out.array)) <= {0.0, 1.0, 2.0}
    for bad in ({"r1_weight": 1.0}, {"gp_weight": 10.0}, {"reg_every": 4}):
        with pytest.raises(ConfigError, match="no R1/R2"):
            build_loss("segan", **bad)
    patchgan = build("patchgan_discriminator", in_channels=3, cond_channels=1, n_layers=2)
    with pytest.raises(TypeError, match="list of feature maps"):
        build_loss("segan").discriminator_objective(patchgan, onehot, onehot, image)


@pytest.mark.parametrize("spacing", [(1.0, 2.0), (1.0, 1.5, 2.0)])
def test_surface_distances_match_monai(spacing):
    monai_metrics = pytest.importorskip("monai.metrics")
    from scipy import ndimage

    from medgan.metrics import surface_distances

    rng = np.random.default_rng(len(spacing))
    shape = (40, 36) if len(spacing) == 2 else (20, 24, 18)

    def blobs() -> np.ndarray:
        a = ndimage.gaussian_filter(rng.random(shape), 2)
        lab = np.zeros(shape, np.int64)
        lab[a > np.percentile(a, 60)] = 1
        lab[a > np.percentile(a, 85)] = 2
        return lab

    def onehot(lab: np.ndarray) -> torch.Tensor:
        return torch.nn.functional.one_hot(torch.from_numpy(lab), 3).movedim(-1, 0)[None].float()

    for _ in range(2):
        p, t = blobs(), blobs()
        hd, asd = surface_distances(p, t, 3, spacing)
        want_hd = monai_metrics.compute_hausdorff_distance(
            onehot(p), onehot(t), include_background=False, percentile=95, spacing=spacing
        )
        want_asd = monai_metrics.compute_average_surface_distance(
            onehot(p), onehot(t), include_background=False, symmetric=True, spacing=spacing
        )
        np.testing.assert_allclose(hd.numpy(), want_hd[0].double().numpy(), rtol=1e-5)
        np.testing.assert_allclose(asd.numpy(), want_asd[0].double().numpy(), rtol=1e-5)
        assert (hd > 0).all() and (asd <= hd).all()


def test_surface_distances_of_equal_missing_and_absent_classes():
    from medgan.metrics import surface_distances

    p = np.zeros((20, 20), np.int64)
    p[5:15, 5:15] = 1
    p[8:12, 8:12] = 2
    spacing = np.array([1.0, 2.0])  # an array works as well as a tuple
    shape = p.shape
    same = surface_distances(p, p, 3, spacing)
    assert same[0].tolist() == [0.0, 0.0] and same[1].tolist() == [0.0, 0.0]
    empty = np.zeros(shape, np.int64)
    hd, asd = surface_distances(empty, p, 3, spacing)
    assert torch.isinf(hd).all() and torch.isinf(asd).all()
    hd, _ = surface_distances(empty, empty, 3, spacing)
    assert torch.isnan(hd).all()
