"""Rebuild a generator from a checkpoint and draw samples from it."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from medgan import checkpoint as ckpt_io
from medgan.errors import CheckpointError
from medgan.registry import MODELS


def load_generator(path: str | Path, ema: bool = True, device: str = "cpu") -> nn.Module:
    """The generator of a checkpoint (its EMA weights when present and ``ema``), in eval mode."""
    state = ckpt_io.load(path, device)
    spec = state["generator"].get("spec")
    if spec is None:
        raise CheckpointError(
            f"{path}: the generator was not built with medgan.models.build, so the checkpoint "
            "cannot rebuild it; build the same module yourself and load "
            "state['generator']['state'] into it"
        )
    g = MODELS.build(spec["name"], **spec["kwargs"])
    weights = state["ema"] if ema and state.get("ema") is not None else state["generator"]["state"]
    try:
        g.load_state_dict(weights)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit {spec['name']}: {e}") from e
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
