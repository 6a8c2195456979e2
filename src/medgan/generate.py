"""Make images with a trained generator: rebuild it from a checkpoint or a pretrained folder
(:func:`load_generator`) and draw samples from it (:func:`generate`).

Not to be confused with :mod:`medgan.data.sampling`, which orders the training data.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from medgan import pretrained
from medgan.errors import CheckpointError, ConfigError


def load_generator(
    path: str | os.PathLike, ema: bool = True, device: str | torch.device = "cpu"
) -> nn.Module:
    """The generator of a training checkpoint file or of a pretrained folder, on ``device``,
    in eval mode.

    Args:
        path: a checkpoint written by :meth:`medgan.Trainer.save` (its EMA weights are
            used when present and ``ema``; see :func:`medgan.pretrained.checkpoint_generator`),
            or a folder written by :func:`medgan.pretrained.save_pretrained` (see
            :func:`medgan.pretrained.from_pretrained`).
        ema: for checkpoints, prefer the EMA weights. A pretrained folder holds one set of
            weights; ``ema=False`` is refused for a folder exported from EMA weights.
        device: where the returned module lives.

    Refused with a :class:`~medgan.errors.CheckpointError` naming the file: a damaged file,
    a spec whose model does not match the stored weights (checked on the meta device
    before any allocation, see :func:`medgan.checkpoint.build_model`), a model above the
    ``MEDGAN_MAX_BYTES`` limit, and weights with NaN/inf values.
    """
    if Path(path).is_dir():
        exported = pretrained.read_config(path).get("source", {}).get("weights")
        if not ema and exported == "ema":
            raise ConfigError(
                f"{path} is a pretrained folder exported from EMA weights; it holds no raw "
                "generator weights: drop --no-ema (ema=False), or export the checkpoint "
                "again with --no-ema"
            )
        return pretrained.from_pretrained(path, device)
    return pretrained.checkpoint_generator(path, ema=ema, device=device)[0]


@torch.no_grad()
def generate(
    generator: nn.Module,
    n: int,
    seed: int = 0,
    labels: Tensor | None = None,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
) -> Tensor:
    """``n`` samples ``(n, C, *spatial)`` float32 in [-1, 1], on the CPU.

    Args:
        generator: a noise-to-image generator with a ``latent_dim`` attribute (and
            ``num_classes`` when class-conditional), in the mode it should run in (the
            loaders return it in eval mode).
        n: number of samples.
        seed: seeds the noise z ``(n, latent_dim)``: equal seeds give equal samples.
        labels: class labels ``(n,)`` int64 for class-conditional generators (default:
            cycling through the classes, ``arange(n) % num_classes``).
        batch_size: samples per forward pass (bounds the memory used).
        device: where the noise is drawn and the generator runs (it must live there).

    Raises:
        CheckpointError: the generator takes images, not noise.
    """
    latent_dim = getattr(generator, "latent_dim", None)
    if latent_dim is None:
        raise CheckpointError("this generator takes no noise (image-to-image); use it on images")
    num_classes = getattr(generator, "num_classes", 0)
    if num_classes and labels is None:
        labels = torch.arange(n) % num_classes
    g = torch.Generator(device).manual_seed(seed)
    out = []
    for start in range(0, n, batch_size):
        k = min(batch_size, n - start)
        z = torch.randn(k, latent_dim, generator=g, device=device)
        args = (z, labels[start : start + k].to(device)) if num_classes else (z,)
        out.append(generator(*args).float().cpu())
    return torch.cat(out)


def save_samples(images: Tensor, folder: str | os.PathLike, prefix: str = "sample") -> list[Path]:
    """Write samples as files ``<prefix>_00000.png`` ... (2D) or ``<prefix>_00000.nii.gz``
    ... (3D) in ``folder`` (created if missing); returns their paths.

    Args:
        images: ``(N, C, H, W)`` (8-bit grey or RGB PNGs, [-1, 1] -> 0..255) or
            ``(N, C, D, H, W)`` (float32 NIfTI volumes of the values in [-1, 1], through
            :func:`medgan.data.save_nifti`: one channel as a 3D image, more as a 4th axis).
            A generator knows no voxel size or position, so volumes get the identity
            affine (1 mm voxels at the origin) and the unit "[-1,1]" in the header; map the
            values back to physical units with the training data's
            :class:`~medgan.data.IntensityWindow` (``from_unit``).
        folder: the output folder.
        prefix: the file name before the index.
    """
    from medgan.data import Volume, save_nifti
    from medgan.images import save_pngs

    if images.dim() != 5:
        return save_pngs(images, folder, prefix)
    paths = []
    for i, x in enumerate(images.float().cpu().numpy()):
        vol = Volume(x[0] if x.shape[0] == 1 else x, np.eye(4), {"unit": "[-1,1]"})
        paths.append(save_nifti(vol, Path(folder) / f"{prefix}_{i:05d}.nii.gz"))
    return paths
