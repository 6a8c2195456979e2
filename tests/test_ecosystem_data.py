"""Data in any form (MONAI, torchio, IterableDataset, a user's DataLoader) and
discriminators that return lists (MONAI's PatchDiscriminator), each trained 3 steps."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, default_collate

import medgan
from medgan import losses
from medgan.batches import NoiseToImage, Paired, unpack
from medgan.checks import check_first_batch
from medgan.errors import ConfigError

monai = pytest.importorskip("monai")
tio = pytest.importorskip("torchio")

from monai.data import CacheDataset, MetaTensor  # noqa: E402
from monai.data import Dataset as MonaiDataset  # noqa: E402
from monai.networks.nets import PatchDiscriminator, UNet  # noqa: E402
from monai.transforms import (  # noqa: E402
    Compose,
    EnsureChannelFirstd,
    RandSpatialCropSamplesd,
    ScaleIntensityd,
)


def models_3d(seed: int = 0):
    medgan.seed_everything(seed)
    kw = {"image_size": 16, "base_channels": 2, "spatial_dims": 3}
    g = medgan.models.build("dcgan_generator", latent_dim=8, **kw)
    d = medgan.models.build("dcgan_discriminator", **kw)
    return g, d


def config(**kw) -> medgan.TrainConfig:
    return medgan.TrainConfig(**{"steps": 3, "batch_size": 4, "device": "cpu", **kw})


def trained(tr: medgan.Trainer, steps: int = 3) -> medgan.Trainer:
    before = [p.detach().clone() for p in tr.generator.parameters()]
    tr.fit(steps)
    assert any(not torch.equal(a, p) for a, p in zip(before, tr.generator.parameters()))
    return tr


def state(tr: medgan.Trainer) -> dict[str, torch.Tensor]:
    sd = {f"g.{k}": v for k, v in tr.generator.state_dict().items()}
    return sd | {f"d.{k}": v for k, v in tr.discriminator.state_dict().items()}


def assert_same(a: medgan.Trainer, b: medgan.Trainer) -> None:
    sa, sb = state(a), state(b)
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    assert (a.epoch, a.batch_in_epoch) == (b.epoch, b.batch_in_epoch)


def monai_items(n: int = 8, size: int = 16) -> list[dict]:
    rng = np.random.default_rng(0)
    return [
        {"image": rng.random((size, size), dtype=np.float32) * 300.0, "label": i % 2}
        for i in range(n)
    ]


MONAI_PREP = [
    EnsureChannelFirstd("image", channel_dim="no_channel"),
    ScaleIntensityd("image", minv=-1.0, maxv=1.0),
]


# --------------------------------------------------------------------------- MONAI data


@pytest.mark.parametrize("kind", ["Dataset", "CacheDataset"])
def test_monai_datasets_of_dicts_train(kind, tiny_gan):
    t = Compose(MONAI_PREP)
    ds = (
        MonaiDataset(monai_items(), t)
        if kind == "Dataset"
        else CacheDataset(monai_items(), t, progress=False, num_workers=0)
    )
    assert isinstance(ds[0]["image"], MetaTensor)
    g, d = tiny_gan()
    tr = medgan.Trainer(g, d, ds, config=config())
    x = tr.next_inputs()
    assert type(x.real) is torch.Tensor  # the metadata dropped: a plain tensor
    assert x.real.shape == (4, 1, 16, 16) and x.real.dtype == torch.float32
    assert -1.0 <= float(x.real.min()) and float(x.real.max()) <= 1.0
    trained(medgan.Trainer(*tiny_gan(), ds, config=config()))


def test_monai_conditional_dicts_use_the_label_key():
    items = [{"img": it["image"], "cls": it["label"]} for it in monai_items()]
    t = Compose(
        [
            EnsureChannelFirstd("img", channel_dim="no_channel"),
            ScaleIntensityd("img", minv=-1.0, maxv=1.0),
        ]
    )
    medgan.seed_everything(0)
    g = medgan.models.build("dcgan_generator", image_size=16, base_channels=4, num_classes=2)
    d = medgan.models.build("dcgan_discriminator", image_size=16, base_channels=4, num_classes=2)
    tr = medgan.Trainer(
        g,
        d,
        MonaiDataset(items, t),
        config=config(),
        adapter=NoiseToImage(conditional=True, image_key="img", label_key="cls"),
    )
    x = tr.next_inputs()
    assert x.cond.dtype == torch.long and set(x.cond.tolist()) <= {0, 1}
    trained(tr)


def test_monai_num_samples_crops_are_flattened_into_the_batch(tiny_gan):
    t = Compose(
        [
            *MONAI_PREP,
            RandSpatialCropSamplesd("image", roi_size=(16, 16), num_samples=2, random_size=False),
        ]
    )
    ds = MonaiDataset(monai_items(size=24), t)
    assert isinstance(ds[0], list) and len(ds[0]) == 2  # each item: a list of dicts
    tr = medgan.Trainer(*tiny_gan(), ds, config=config())
    x = tr.next_inputs()
    assert x.real.shape == (8, 1, 16, 16)  # 4 items x 2 crops
    assert x.g_args[0].shape == (8, 8)  # one noise vector per image
    trained(medgan.Trainer(*tiny_gan(), ds, config=config()))


# --------------------------------------------------------------------------- torchio


def subjects(n: int = 4, shape=(1, 16, 16, 16), key: str = "t1") -> list:
    gen = torch.Generator().manual_seed(0)
    return [
        tio.Subject(**{key: tio.ScalarImage(tensor=torch.rand(shape, generator=gen) * 2 - 1)})
        for _ in range(n)
    ]


def test_torchio_subjects_dataset_trains_with_an_image_key():
    ds = tio.SubjectsDataset(subjects())
    tr = medgan.Trainer(
        *models_3d(), ds, config=config(batch_size=2), adapter=NoiseToImage(image_key="t1")
    )
    assert tr.next_inputs().real.shape == (2, 1, 16, 16, 16)
    trained(
        medgan.Trainer(
            *models_3d(), ds, config=config(batch_size=2), adapter=NoiseToImage(image_key="t1")
        )
    )


def test_torchio_queue_of_patches_in_a_dataloader_trains():
    queue = tio.Queue(
        tio.SubjectsDataset(subjects(shape=(1, 20, 20, 20))),
        max_length=8,
        samples_per_volume=2,
        sampler=tio.UniformSampler(patch_size=16),
        num_workers=0,
    )
    loader = DataLoader(queue, batch_size=2, num_workers=0)  # as torchio prescribes
    tr = medgan.Trainer(
        *models_3d(), loader, config=config(batch_size=2), adapter=NoiseToImage(image_key="t1")
    )
    assert tr.stream.loader is loader and not tr.stream.exact
    assert tr.next_inputs().real.shape == (2, 1, 16, 16, 16)
    trained(
        medgan.Trainer(
            *models_3d(), loader, config=config(batch_size=2), adapter=NoiseToImage(image_key="t1")
        )
    )


def test_torchio_2d_images_name_their_trailing_axis(tiny_gan):
    ds = tio.SubjectsDataset(subjects(shape=(1, 16, 16, 1), key="image"))
    with pytest.raises(ConfigError, match="trailing axis of size 1.*torchio"):
        medgan.Trainer(*tiny_gan(), ds, config=config(batch_size=2)).fit()


# --------------------------------------------------------------------------- streams


class Shuffled(IterableDataset):
    """Items of a tensor in an order drawn from torch's global RNG at every pass."""

    def __init__(self, data: torch.Tensor) -> None:
        self.data, self.reads = data, 0

    def __iter__(self):
        for i in torch.randperm(len(self.data)).tolist():
            self.reads += 1
            yield self.data[i]


def images(n: int = 12) -> torch.Tensor:
    return torch.rand(n, 1, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_iterable_dataset_trains_in_passes(tiny_gan):
    ds = Shuffled(images(12))  # 3 full batches of 4 per pass
    tr = trained(medgan.Trainer(*tiny_gan(), ds, config=config()), steps=4)
    assert (tr.epoch, tr.batch_in_epoch) == (1, 1)
    assert tr.dataset is ds and tr.sampler is None


def test_peeking_the_first_batch_consumes_nothing(tiny_gan):
    ds = Shuffled(images(12))
    tr = medgan.Trainer(*tiny_gan(), ds, config=config())
    peeked = tr.stream.peek()
    check_first_batch(tr)
    assert (tr.epoch, tr.batch_in_epoch) == (0, 0)
    x = tr.next_inputs()
    assert torch.equal(x.real, peeked) and (tr.epoch, tr.batch_in_epoch) == (0, 1)
    assert ds.reads == 4  # one batch read, none skipped or thrown away


def test_too_short_a_stream_is_refused(tiny_gan):
    tr = medgan.Trainer(*tiny_gan(), Shuffled(images(3)), config=config())
    with pytest.raises(ConfigError, match="no batch in a whole pass"):
        tr.fit()


def resume_run(tmp_path, tiny_gan, make_data, steps=5, at=2, **cfg):
    straight = medgan.Trainer(*tiny_gan(), make_data(), config=config(**cfg)).fit(steps)
    first = medgan.Trainer(*tiny_gan(), make_data(), config=config(**cfg)).fit(at)
    first.save(tmp_path / "c.pt")
    resumed = medgan.Trainer(*tiny_gan(seed=7), make_data(), config=config(**cfg))
    resumed.resume(tmp_path / "c.pt").fit(steps)
    return straight, resumed


def test_iterable_dataset_resume_replays_the_pass_and_continues_exactly(tmp_path, caplog, tiny_gan):
    # 3 batches per pass; the checkpoint at step 2 is in the middle of pass 0, and
    # steps 4-5 are in pass 1: the replay must restore the pass's order and the next
    # pass must start from the saved run's random state
    with caplog.at_level(logging.INFO, logger="medgan.data.stream"):
        straight, resumed = resume_run(tmp_path, tiny_gan, lambda: Shuffled(images(12)))
    assert_same(straight, resumed)
    assert (resumed.epoch, resumed.batch_in_epoch) == (1, 2)
    assert "re-reading 2 batches" in caplog.text
    assert "resumed run restarts the current pass" in caplog.text


def test_a_rollback_on_a_stream_continues_with_the_following_batch(tiny_gan):
    # what on_nan="rollback" does: reload weights, keep the position and random states
    medgan.seed_everything(3)
    straight = medgan.Trainer(*tiny_gan(), Shuffled(images(12)), config=config())
    want = [straight.next_inputs().real for _ in range(3)]
    medgan.seed_everything(3)
    tr = medgan.Trainer(*tiny_gan(), Shuffled(images(12)), config=config())
    got = [tr.next_inputs().real for _ in range(2)]
    tr.load_state(tr.state_dict(), restore_rng=False)
    got.append(tr.next_inputs().real)
    for a, b in zip(want, got, strict=True):
        assert torch.equal(a, b)


def test_user_dataloader_uses_its_collate_fn_and_resumes_exactly(tmp_path, tiny_gan):
    calls = []

    def collate(items):  # the user's own batch form: a dict under their own key
        calls.append(len(items))
        return {"scan": torch.stack(items)}

    def make():
        return DataLoader(list(images(12)), batch_size=4, shuffle=True, collate_fn=collate)

    tr = medgan.Trainer(
        *tiny_gan(), make(), config=config(), adapter=NoiseToImage(image_key="scan")
    )
    trained(tr)
    assert calls and set(calls) == {4}
    # exact resume with the user's shuffling sampler (drawn from torch's global RNG)
    a = medgan.Trainer(*tiny_gan(), make(), config=config(), adapter=NoiseToImage(image_key="scan"))
    a.fit(5)
    b = medgan.Trainer(*tiny_gan(), make(), config=config(), adapter=NoiseToImage(image_key="scan"))
    b.fit(2).save(tmp_path / "c.pt")
    c = medgan.Trainer(
        *tiny_gan(seed=7), make(), config=config(), adapter=NoiseToImage(image_key="scan")
    )
    c.resume(tmp_path / "c.pt").fit(5)
    assert_same(a, c)


def test_map_style_resume_stays_exact_with_the_peek(tmp_path, tiny_gan):
    straight, resumed = resume_run(tmp_path, tiny_gan, lambda: images(12))
    assert_same(straight, resumed)


def test_distributed_sampler_is_told_the_pass(tiny_gan):
    from torch.utils.data import DistributedSampler

    data = list(images(8))
    sampler = DistributedSampler(data, num_replicas=1, rank=0, shuffle=True, seed=0)
    loader = DataLoader(data, batch_size=4, sampler=sampler)
    tr = medgan.Trainer(*tiny_gan(), loader, config=config())
    for _ in range(3):
        tr.next_inputs()
    assert sampler.epoch == 1  # the third batch is the first of pass 1


# --------------------------------------------------------------------------- batch forms


def test_batch_forms_read_alike():
    x, y = torch.rand(2, 1, 4, 4), torch.tensor([0, 1])
    meta = MetaTensor(x)
    for batch in (
        (x, y),
        [x, y],
        {"image": x, "label": y},
        {"image": meta, "label": y},
        {"image": {"data": x, "affine": torch.eye(4)}, "label": y},  # torchio, collated
    ):
        a, b = unpack(batch)
        assert type(a) is torch.Tensor and torch.equal(a, x) and torch.equal(b, y)
    a, b = unpack([{"image": x[:1], "label": y[:1]}, {"image": x[1:], "label": y[1:]}])
    assert torch.equal(a, x) and torch.equal(b, y)
    a, b = unpack(x.double())
    assert a.dtype == torch.float32 and b is None


def test_batches_of_another_form_name_what_was_found(tiny_gan):
    with pytest.raises(ConfigError, match=r"got a set.*|a batch must be a tensor") as e:
        unpack({1, 2})
    assert "got a set" in str(e.value) and "torchio" in str(e.value)
    with pytest.raises(ConfigError, match=r"keys \['ct', 'mr'\] but no 'image'.*image_key"):
        unpack({"ct": torch.zeros(1), "mr": torch.zeros(1)})
    with pytest.raises(ConfigError, match=r"batch\['image'\] should hold the images.*str"):
        unpack({"image": "scan.nii"})
    loader = DataLoader(list(images(8)), batch_size=4, collate_fn=lambda items: "nope")
    with pytest.raises(ConfigError, match="got a str"):
        medgan.Trainer(*tiny_gan(), loader, config=config()).fit()


def test_training_data_of_another_kind_is_refused(tiny_gan):
    with pytest.raises(ConfigError, match="generator.*IterableDataset"):
        medgan.Trainer(*tiny_gan(), (x for x in images(8)), config=config())


# --------------------------------------------------------------------------- list outputs


def patch_d(in_channels: int = 1) -> PatchDiscriminator:
    torch.manual_seed(0)
    return PatchDiscriminator(
        spatial_dims=2, num_layers_d=2, channels=4, in_channels=in_channels, out_channels=1
    )


def test_list_output_is_read_as_its_last_element_in_losses_and_penalties():
    d = patch_d().eval()
    real, fake = images(4), images(8)[4:]
    out = d(real)
    assert isinstance(out, list) and out[-1].shape == (4, 1, 2, 2)
    loss = losses.NonSaturating(r1_weight=2.0, r2_weight=2.0)
    total, logs = loss.discriminator_objective(d, real, fake)
    # by hand, on the last element only
    xr = real.clone().requires_grad_(True)
    xf = fake.clone().requires_grad_(True)
    lr_, lf = d(xr)[-1], d(xf)[-1]
    adv = loss.d_loss(lr_, lf)
    (gr,) = torch.autograd.grad(lr_.sum(), xr)
    (gf,) = torch.autograd.grad(lf.sum(), xf)
    r1, r2 = gr.flatten(1).pow(2).sum(1).mean(), gf.flatten(1).pow(2).sum(1).mean()
    torch.testing.assert_close(logs["d_adv"], adv.detach())
    torch.testing.assert_close(logs["r1"], r1)
    torch.testing.assert_close(logs["r2"], r2)
    torch.testing.assert_close(total.detach(), (adv + r1 + r2).detach())
    # the separate float32 pass (under autocast) reads D the same way
    torch.testing.assert_close(losses.r1_penalty(d, real), r1)
    gp = losses.gradient_penalty(d, real, fake, rng=torch.Generator().manual_seed(0))
    assert torch.isfinite(gp)
    g_total, _ = loss.generator_objective(d, None, fake)
    torch.testing.assert_close(g_total, loss.g_loss(d(fake)[-1]))


def test_a_discriminator_without_logits_is_refused():
    class Bad(nn.Module):
        def forward(self, x):
            return {"logits": x}

    with pytest.raises(ConfigError, match="Bad returned dict"):
        losses.NonSaturating().generator_objective(Bad(), None, torch.zeros(1, 1))


@pytest.mark.parametrize("loss", [losses.Relativistic(), losses.Wasserstein(), losses.Hinge()])
def test_monai_patch_discriminator_trains_as_d(loss, tiny_gan):
    g, _ = tiny_gan()
    trained(medgan.Trainer(g, patch_d(), images(12), loss=loss, config=config()))


class ConcatSource(nn.Module):
    """pix2pix's conditional D over a one-input network: D(x, source) = net(cat[x, source])."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, source: torch.Tensor):
        return self.net(torch.cat([x, source], 1))


def pix2pix_trainer(items: list[dict]) -> medgan.Trainer:
    torch.manual_seed(0)
    g = nn.Sequential(
        UNet(spatial_dims=2, in_channels=1, out_channels=1, channels=(4, 8), strides=(2,)),
        nn.Tanh(),
    )
    return medgan.Trainer(
        g,
        ConcatSource(patch_d(in_channels=2)),
        items,  # a list of dicts is a map-style data set
        loss=losses.Pix2Pix(r1_weight=0.1),
        config=config(),
        adapter=Paired(source_key="ct", target_key="mr"),
    )


def test_monai_unet_and_patch_discriminator_train_pix2pix_on_dicts():
    items = [{"ct": s, "mr": -s} for s in images(8)]  # a toy paired translation
    x = pix2pix_trainer(items).next_inputs()
    assert torch.equal(x.real, -x.g_args[0])
    trained(pix2pix_trainer(items))


def test_default_collate_keeps_list_items_for_the_adapter():
    # a DataLoader with default_collate turns items that are lists of dicts into a list
    # of batched dicts; the adapter joins them (MONAI's own list_data_collate flattens first)
    items = [[{"image": torch.zeros(1, 4, 4)}, {"image": torch.ones(1, 4, 4)}]] * 3
    real, _ = unpack(default_collate(items))
    assert real.shape == (6, 1, 4, 4) and real[:3].sum() == 0 and real[3:].min() == 1


class TorchJitter(torch.utils.data.Dataset):
    """Map-style items with noise drawn from torch's global RNG when they are read."""

    def __init__(self) -> None:
        self.data = images(12)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> torch.Tensor:
        return (self.data[i] + 0.1 * torch.rand(self.data[i].shape)).clamp(-1, 1)


def test_map_style_items_drawing_torch_randomness_resume_exactly(tmp_path, tiny_gan):
    # read in this process (num_workers=0): the checkpoint's torch state is theirs too
    # (MONAI transforms keep their own RandomState, which no checkpoint restores: docs/guide.md)
    straight, resumed = resume_run(tmp_path, tiny_gan, TorchJitter)
    assert_same(straight, resumed)
