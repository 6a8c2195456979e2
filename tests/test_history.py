"""CycleGAN's training details: the history of generated images (Shrivastava et al. 2017,
Zhu et al. 2017; its exact resume is in test_trainer), the constant-then-decay learning rate and the
resize-convolution up-sampling of the U-Net (no checkerboard)."""

from __future__ import annotations

import pytest
import torch

import medgan
from medgan.errors import ConfigError
from medgan.history import FakeHistory
from medgan.models.unet import _up


def _batch(start: int, n: int = 4) -> torch.Tensor:
    """Images whose every pixel is their serial number: easy to tell apart."""
    return torch.arange(start, start + n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 2, 2)


def test_history_fills_then_swaps_half_with_earlier_images():
    hist, rng = FakeHistory(8), torch.Generator().manual_seed(0)
    # while filling: every image is stored and used as it is
    for start in (0, 4):
        assert torch.equal(hist.query(_batch(start), rng), _batch(start))
    assert hist.count == 8
    assert sorted(hist.images[:, 0, 0, 0].tolist()) == list(range(8))
    swapped = total = 0
    for start in range(8, 8 + 4 * 200, 4):
        new = _batch(start)
        out = hist.query(new, rng)
        ids = out[:, 0, 0, 0]
        kept = ids == new[:, 0, 0, 0]
        swapped += int((~kept).sum())
        total += len(ids)
        # a swapped-in image is an earlier one (of an earlier batch, or of an earlier item
        # of this one, as in Zhu et al.'s sequential rule), no longer in the history
        assert (ids[~kept] < new[~kept, 0, 0, 0]).all()
        stored = set(hist.images[:, 0, 0, 0].tolist())
        assert not stored & set(ids[~kept].tolist())
        # every new image that went into the history is there (unless a later item of
        # the batch took it out again)
        assert set(new[~kept, 0, 0, 0].tolist()) - set(ids.tolist()) <= stored
    assert 0.42 < swapped / total < 0.58  # about half (800 draws)


def _zhu_pool(size: int, batches: list[torch.Tensor], seed: int) -> list[torch.Tensor]:
    """Zhu et al.'s ImagePool rule written out item by item, with the same draws as
    FakeHistory (per batch: N uniforms, then N slot indices, from one generator)."""
    rng, pool, outs = torch.Generator().manual_seed(seed), [], []
    for batch in batches:
        n = len(batch)
        swap = (torch.rand(n, generator=rng) < 0.5).tolist()
        slot = torch.randint(0, size, (n,), generator=rng).tolist()
        out = []
        for i, image in enumerate(batch):
            if len(pool) < size:
                pool.append(image.clone())
                out.append(image)
            elif swap[i]:
                out.append(pool[slot[i]].clone())
                pool[slot[i]] = image.clone()
            else:
                out.append(image)
        outs.append(torch.stack(out))
    return outs


@pytest.mark.parametrize("size,batch", [(6, 4), (3, 10), (50, 8)])
def test_history_matches_zhus_rule(size, batch):
    """Against the reference, including a history that fills part-way through a batch and
    a batch larger than the history."""
    batches = [_batch(k * batch, batch) for k in range(40)]
    hist, rng = FakeHistory(size), torch.Generator().manual_seed(3)
    for got, want in zip(
        (hist.query(b, rng) for b in batches), _zhu_pool(size, batches, 3), strict=True
    ):
        assert torch.equal(got, want)


def test_history_refuses_bad_size_and_shape():
    for bad in (0, -3, 2.5, "a", True):
        with pytest.raises(ConfigError, match="integer size >= 1"):
            FakeHistory(bad)
    hist = FakeHistory(2)
    hist.query(_batch(0, 2), torch.Generator())
    with pytest.raises(ConfigError, match="holds images of shape"):
        hist.query(torch.zeros(2, 3, 2, 2), torch.Generator())
    with pytest.raises(ConfigError, match="TrainConfig.fake_history"):
        medgan.TrainConfig(fake_history=-1)


@pytest.mark.parametrize("warmup", [0, 2])
def test_half_then_decay_schedule_reaches_the_optimiser(tiny_trainer, warmup):
    """The learning rate each step's updates used: constant for the first half of the
    steps (after any warm-up), then linear to 0 (read from the optimiser during fit)."""
    seen = []

    class Record:
        def on_step_end(self, trainer, logs):
            seen.append(trainer.opt_g.param_groups[0]["lr"])  # the rate of the next step

    tr = tiny_trainer(
        lr_schedule="half_then_decay", steps=10, warmup_steps=warmup, callbacks=[Record()]
    )
    base = tr.config.lr_g
    first = tr.opt_g.param_groups[0]["lr"]
    tr.fit()
    used = [first, *seen[:-1]]  # the rate in force at steps 0..9
    want = [min(1.0, (s + 1) / warmup) if warmup else 1.0 for s in range(10)]
    want = [w * min(1.0, (10 - s) / 5) for s, w in enumerate(want)]
    assert used == pytest.approx([base * w for w in want])


def test_history_is_refused_with_a_conditioned_discriminator():
    pairs = torch.utils.data.TensorDataset(torch.zeros(8, 1, 32, 32), torch.zeros(8, 1, 32, 32))
    tr = medgan.tasks.pix2pix_trainer(
        pairs, 1, base_channels=4, depth=2, batch_size=4, device="cpu", fake_history=4
    )
    with pytest.raises(ConfigError, match="needs an unconditioned discriminator"):
        tr.fit()


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_resize_upsampling_has_no_checkerboard(spatial_dims):
    """A constant input: the transposed 4x4 stride-2 convolution's output varies with the
    pixel's parity (its kernels overlap unevenly: checkerboard), the resize-convolution's
    output is constant away from the border, for any weights."""
    torch.manual_seed(0)
    x = torch.ones((1, 4) + (8,) * spatial_dims)
    inner = (slice(None), slice(None)) + (slice(2, -2),) * spatial_dims
    resize = _up(spatial_dims, 4, 3, "resize")(x)[inner]
    assert resize.shape[2:] == (12,) * spatial_dims
    assert torch.allclose(resize, resize.flatten(2)[..., :1].view((1, 3) + (1,) * spatial_dims))
    transpose = _up(spatial_dims, 4, 3, "transpose")(x)[inner]
    spread = transpose.flatten(2).amax(-1) - transpose.flatten(2).amin(-1)
    assert (spread > 1e-3).all()


def test_cyclegan_trainer_uses_the_papers_details():
    data = medgan.data.UnpairedDataset(torch.zeros(8, 1, 16, 16), torch.zeros(8, 1, 16, 16))
    tr = medgan.tasks.cyclegan_trainer(data, 4, depth=2, device="cpu")
    assert tr.config.fake_history == 50 and tr.config.lr_schedule == "half_then_decay"
    ups = [m for m in tr.generator.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert not ups
    with pytest.raises(ConfigError, match="upsample must be"):
        medgan.models.build("unet_generator", upsample="bilinear")
