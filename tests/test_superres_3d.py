"""The 3D slice-thickness model: identity at factor 1 in 3D, the 3D patches, the volume
path of ``superres`` (an untrained model is exactly linear slab resampling; cubes agree
with the whole volume), its refusals, and a short 3D training run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medgan.data import IntensityWindow, Volume
from medgan.errors import ConfigError
from medgan.models import build
from medgan.tasks import (
    ThickSlicePatches,
    enhance,
    resample_slabs,
    superres,
    superres_trainer,
    thick_slices,
    thick_volume,
)

WINDOW = IntensityWindow(0.0, 255.0)


def _model(seed: int = 0, trained: bool = True) -> torch.nn.Module:
    torch.manual_seed(seed)
    m = build("thickness_sr", base_channels=4, depth=2, spatial_dims=3)
    if trained:  # a residual branch that is not zero, as after training
        torch.nn.init.normal_(m.net.out.weight, std=0.3)
    return m.eval()


def _smooth_volume(shape=(24, 20, 32), seed=0) -> Volume:
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    arr = ndimage.gaussian_filter(rng.uniform(0, 255, shape), 2.0) * 4 - 380
    return Volume(np.clip(arr, 0, 255).astype(np.float32), np.eye(4))


def test_3d_model_is_the_identity_at_factor_one_and_checks_its_input():
    m = _model()
    x = torch.rand(2, 1, 8, 8, 8) * 2 - 1
    assert torch.equal(m(torch.cat([x, torch.zeros_like(x)], 1)), x)
    y = m(torch.cat([x, torch.ones_like(x)], 1))
    assert y.shape == x.shape and (y - x).abs().mean() > 1e-3
    with pytest.raises(ValueError, match=r"\(N, 2, D, H, W\)"):
        m(torch.zeros(1, 2, 8, 8))


def test_thick_slice_patches_are_windows_of_the_thick_volume():
    vol = _smooth_volume().array
    data = ThickSlicePatches(vol, WINDOW, patch=(8, 8, 16), max_factor=4, n=12, seed=3)
    assert len(data) == 12
    thick = {f: WINDOW.to_unit(thick_slices(vol, f, axis=2)) for f in (2, 3, 4)}
    thick[1] = WINDOW.to_unit(vol)
    clean = WINDOW.to_unit(vol)
    for i in range(12):
        (src, tgt), again = data[i], data[i]
        f = i % 4 + 1
        assert torch.equal(src, again[0]) and torch.equal(tgt, again[1])  # reproducible
        assert src.shape == (2, 8, 8, 16) and tgt.shape == (1, 8, 8, 16)
        assert torch.all(src[1] == f - 1)
        # the pair is one window of (thick, clean), up to in-plane flips, at the same place
        found = False
        for fx in (False, True):
            for fy in (False, True):
                s, t = src[0].numpy(), tgt[0].numpy()
                s = s[::-1] if fx else s
                t = t[::-1] if fx else t
                s = s[:, ::-1] if fy else s
                t = t[:, ::-1] if fy else t
                for x0 in range(vol.shape[0] - 7):
                    for y0 in range(vol.shape[1] - 7):
                        for z0 in range(vol.shape[2] - 15):
                            box = np.s_[x0 : x0 + 8, y0 : y0 + 8, z0 : z0 + 16]
                            if np.array_equal(t, clean[box]) and np.array_equal(s, thick[f][box]):
                                found = True
        assert found, i
    assert not torch.equal(data[0][1], ThickSlicePatches(vol, WINDOW, (8, 8, 16), 4, 12, 4)[0][1])
    with pytest.raises(ConfigError, match="patch"):
        ThickSlicePatches(vol, WINDOW, patch=(8, 8, 64))
    with pytest.raises(ConfigError, match="max_factor"):
        ThickSlicePatches(vol, WINDOW, patch=(8, 8, 4), max_factor=5)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_untrained_3d_model_gives_exactly_the_linear_slab_resampling(axis):
    vol = _smooth_volume((20, 18, 32) if axis == 2 else (32, 20, 16) if axis == 0 else (20, 32, 16))
    thick = thick_volume(vol, 4, axis=axis)
    out = superres(thick, _model(trained=False), WINDOW, axis=axis)
    linear = resample_slabs(thick, 4, axis=axis)
    np.testing.assert_allclose(out.array, np.clip(linear.array, 0, 255), atol=1e-4)
    np.testing.assert_allclose(out.affine, linear.affine)
    assert out.meta["superres"]["views"] is None
    assert out.meta["superres"]["spatial_dims"] == 3 and out.meta["superres"]["factor"] == 4


@pytest.mark.parametrize("axis", [0, 2])
def test_3d_volume_path_cubes_agree_with_the_whole_volume(axis):
    vol = _smooth_volume((24, 20, 32) if axis == 2 else (32, 20, 24))
    thick = thick_volume(vol, 4, axis=axis)
    m = _model()
    whole = enhance(thick, m, WINDOW, axis=axis)
    if axis == 0:  # the same as the slice axis last, on the transposed volume
        moved = Volume(np.moveaxis(thick.array, 0, 2).copy(), np.diag([1.0, 1.0, 4.0, 1.0]))
        np.testing.assert_allclose(
            np.moveaxis(enhance(moved, m, WINDOW, axis=2).array, 2, 0), whole.array, atol=1e-3
        )
    cubes = enhance(thick, m, WINDOW, axis=axis, tile=16, overlap=8)
    assert whole.array.shape == vol.array.shape
    diff = np.abs(cubes.array - whole.array) / 255.0
    change = np.abs(whole.array - resample_slabs(thick, 4, axis=axis).array) / 255.0
    assert diff.max() < 0.01 and diff.max() < 0.25 * change.max(), (diff.max(), change.max())
    assert np.array_equal(enhance(vol, m, WINDOW, axis=axis).array, vol.array)  # factor 1
    with pytest.raises(ConfigError, match="3D one sees the whole volume"):
        superres(thick, m, WINDOW, axis=axis, views=[1])
    with pytest.raises(ConfigError, match="multiple of 4"):
        superres(thick, m, WINDOW, axis=axis, tile=10)


def test_superres_trainer_trains_the_3d_model_and_the_cli_restores_with_it(tmp_path, capsys):
    from medgan.cli import main
    from medgan.data import load, save_nifti

    vol = _smooth_volume((24, 20, 32)).array
    data = ThickSlicePatches(vol, WINDOW, patch=(8, 8, 16), n=16)
    tr = superres_trainer(
        data, 2, base_channels=4, depth=2, d_layers=1, spatial_dims=3, batch_size=4
    )
    before = [p.detach().clone() for p in tr.generator.parameters()]
    tr.fit()
    assert tr.ema.spatial_dims == 3 and tr.ema.factor_range == (1, 4)
    assert any(
        not torch.equal(a, b) for a, b in zip(before, tr.generator.parameters(), strict=True)
    )
    ckpt = tr.save(tmp_path / "sr3d.pt")
    fine = Volume(vol, np.diag([2.0, 2.0, 2.0, 1.0]))
    src = save_nifti(thick_volume(fine, 4, axis=2), tmp_path / "thick.nii.gz")
    out = tmp_path / "out.nii.gz"
    args = ["enhance", str(src), str(out), "--checkpoint", str(ckpt), "--window", "0,255"]
    assert main([*args, "--axis", "2"]) == 0
    assert "factor 4 along axis 2 (from the geometry)" in capsys.readouterr().out
    restored = load(out)
    assert restored.array.shape == vol.shape
    np.testing.assert_allclose(restored.affine, fine.affine, atol=1e-4)
    direct = enhance(load(src), tr.ema, WINDOW, axis=2).array
    np.testing.assert_allclose(restored.array, direct, atol=1e-3)


def test_2d_trainers_record_the_specs_of_earlier_checkpoints():
    """Resuming compares the saved specs exactly: 2D trainers must not add ``spatial_dims``
    (which earlier checkpoints lack), and ``adv_weight`` reaches the loss."""
    from medgan.registry import spec_of
    from medgan.tasks import ThickSlicePairs, pix2pix_trainer

    planes = np.random.default_rng(0).uniform(0, 255, (2, 16, 16)).astype(np.float32)
    tr = superres_trainer(ThickSlicePairs(planes, WINDOW), 1, adv_weight=0.0, batch_size=2)
    assert "spatial_dims" not in spec_of(tr.generator).kwargs
    assert "spatial_dims" not in spec_of(tr.discriminator).kwargs
    assert tr.loss.adv_weight == 0.0
    pairs = [(torch.zeros(1, 16, 16), torch.zeros(1, 16, 16))] * 2
    assert spec_of(pix2pix_trainer(pairs, 1, batch_size=2).discriminator).kwargs == {
        "in_channels": 1,
        "cond_channels": 1,
        "base_channels": 16,
        "n_layers": 2,
    }
