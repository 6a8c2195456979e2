"""Datasets over real volumes: slices, patches, pairs, PNG folders, caching, embedded data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from pydicom.data import get_testdata_file

import medgan
from medgan.data import (
    PairedSliceDataset,
    PatchDataset,
    PNGFolder,
    SliceDataset,
    embedded,
    load,
    save_png,
)
from medgan.errors import DataError

CT5N = Path(get_testdata_file("CT_small.dcm")).parent / "dicomdirtests" / "98892001" / "CT5N"


def test_embedded_real_mri_and_labels():
    t1, lab = embedded("mni152_t1"), embedded("mni152_tissue")
    assert t1.array.shape == lab.array.shape == (98, 116, 94)
    assert t1.spacing == (2.0, 2.0, 2.0) and t1.orientation == "RAS"
    np.testing.assert_allclose(t1.affine, lab.affine)
    assert set(np.unique(lab.array)) == {0.0, 1.0, 2.0}
    # white matter is brighter than grey matter on T1
    assert t1.array[lab.array == 2].mean() > t1.array[lab.array == 1].mean() + 20
    ct = embedded("ct_small")
    assert ct.meta["unit"] == "HU" and ct.array.shape == (1, 128, 128)
    with pytest.raises(DataError, match="available"):
        embedded("nope")


def test_slice_dataset_axes_foreground_and_range():
    t1 = embedded("mni152_t1")
    all_axial = SliceDataset(t1, "axial")
    assert len(all_axial) == 94  # RAS: axial = axis 2
    brain = SliceDataset(t1, "axial", min_foreground=0.2, size=64)
    assert 0 < len(brain) < 94
    x = brain[0]
    assert x.shape == (1, 64, 64) and x.dtype == torch.float32
    assert -1 <= x.min() and x.max() <= 1
    assert len(SliceDataset(t1, "sagittal")) == 98 and len(SliceDataset(t1, 1)) == 116


def test_slice_dataset_from_dicom_folder_in_hu_window():
    ds = SliceDataset([CT5N], axis=0, window="soft_tissue")
    vol = load(CT5N)
    w = medgan.data.IntensityWindow.ct("soft_tissue")
    np.testing.assert_allclose(ds[2][0].numpy(), w.to_unit(vol.array[2]), atol=1e-6)


def test_memory_mapped_cache_decodes_once(tmp_path, monkeypatch):
    SliceDataset([CT5N], axis=0, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.npy"))) == 2
    import medgan.data.datasets as mod

    def fail(*a, **k):
        raise AssertionError("decoded DICOM again")

    monkeypatch.setattr(mod, "load", fail)
    ds = SliceDataset([CT5N], axis=0, cache_dir=tmp_path)  # second run: from the cache only
    assert isinstance(ds.volumes[0].array, np.memmap) and len(ds) == 5


def test_patches_random_grid_label():
    t1, lab = embedded("mni152_t1"), embedded("mni152_tissue")
    rnd = PatchDataset([t1], 16, "random", samples_per_volume=4, seed=3)
    assert len(rnd) == 4 and rnd[1].shape == (1, 16, 16, 16)
    assert torch.equal(rnd[1], PatchDataset([t1], 16, "random", 4, seed=3)[1])  # reproducible
    grid = PatchDataset([t1], 32, "grid")
    covered = np.zeros(t1.spatial_shape, bool)
    for i in range(len(grid)):
        _, (a, b, c) = grid.corner(i)
        covered[a : a + 32, b : b + 32, c : c + 32] = True
    assert covered.all()
    lp = PatchDataset([t1], 16, "label", samples_per_volume=40, labels=[lab], label_fraction=1.0)
    fg = [float((lp[i][1] > 0).float().mean()) for i in range(40)]
    assert min(fg) > 0  # every patch centred on tissue


def test_paired_image_label_and_misaligned_refused():
    t1, lab = embedded("mni152_t1"), embedded("mni152_tissue")
    pairs = PairedSliceDataset([t1], [lab], target_is_label=True, min_foreground=0.2)
    img, y = pairs[5]
    assert img.shape[1:] == y.shape and y.dtype == torch.int64
    shifted = lab.with_array(lab.array, affine=lab.affine + np.diag([0, 0, 0, 0]) + np.eye(4) * 0)
    shifted.affine[0, 3] += 5.0
    with pytest.raises(DataError, match="not aligned"):
        PairedSliceDataset([t1], [shifted])


def test_png_folder(tmp_path):
    for i in range(3):
        save_png(np.linspace(-1, 1, 64).reshape(8, 8) * (i + 1) / 3, tmp_path / f"im{i}.png")
    ds = PNGFolder(tmp_path, size=16)
    assert len(ds) == 3 and ds[2].shape == (1, 16, 16)
    assert ds[2].min() == pytest.approx(-1, abs=0.01) and ds[2].max() == pytest.approx(1, abs=0.01)
    with pytest.raises(DataError, match="no .png"):
        PNGFolder(tmp_path / "nothing")


def test_slices_train_a_gan_for_two_steps(tiny_gan):
    ds = SliceDataset(embedded("mni152_t1"), "axial", min_foreground=0.2, size=16)
    g, d = tiny_gan()
    before = [p.detach().clone() for p in g.parameters()]
    medgan.Trainer(g, d, ds, config=medgan.TrainConfig(steps=2, batch_size=8, device="cpu")).fit()
    assert any(not torch.equal(a, b) for a, b in zip(before, g.parameters()))
