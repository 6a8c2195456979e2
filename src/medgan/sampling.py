"""Rebuild a generator from a checkpoint and draw samples from it."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from medgan import checkpoint as ckpt_io
from medgan.errors import CheckpointError


def load_generator(path: str | Path, ema: bool = True, device: str = "cpu") -> nn.Module:
    """The generator of a checkpoint (its EMA weights when present and ``ema``), in eval mode.

    Refused with a :class:`~medgan.errors.CheckpointError` naming the file: a damaged file,
    a spec whose model does not match the stored weights (checked on the meta device
    before any allocation, see :func:`medgan.checkpoint.build_model`), a model above the
    ``MEDGAN_MAX_BYTES`` limit, and weights with NaN/inf values.
    """
    state = ckpt_io.load(path, device)
    entry = state.get("generator")
    if not isinstance(entry, dict) or not isinstance(entry.get("state"), dict):
        raise CheckpointError(f"{path}: the checkpoint holds no generator weights")
    spec = entry.get("spec")
    if spec is None:
        raise CheckpointError(
            f"{path}: the generator was not built with medgan.models.build, so the checkpoint "
            "cannot rebuild it; build the same module yourself and load "
            "state['generator']['state'] into it"
        )
    use_ema = ema and state.get("ema") is not None
    weights = state["ema"] if use_ema else entry["state"]
    what = "EMA generator" if use_ema else "generator"
    ckpt_io.check_finite(weights, path, what)
    g = ckpt_io.build_model(spec, weights, path, what)
    return g.to(device).eval()


@torch.no_grad()
def generate(
    generator: nn.Module,
    n: int,
    seed: int = 0,
    labels: Tensor | None = None,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
) -> Tensor:
    """``n`` samples ``(n, C, *spatial)`` in [-1, 1] from noise seeded by ``seed``.

    Class-conditional generators get ``labels`` (default: cycling through the classes).
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
