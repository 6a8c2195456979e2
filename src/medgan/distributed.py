"""Data-parallel training helpers: started under ``torchrun``, every rank runs the same
loop on its shard of the data and gradients are averaged with one all-reduce per update.

We average gradients by hand rather than wrapping models in DistributedDataParallel,
because gradient penalties (R1, WGAN-GP) need double backward, which DDP does not
support. StyleGAN3 (``training_loop.py``) does the same: one flattened all-reduce of all
gradients per update; StyleGAN2-ADA wraps its networks in DDP instead.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a distributed run: ``rank`` in ``[0, world_size)``, the
    number of processes ``world_size``, and ``local_rank`` (its index on this machine, which
    picks the GPU). The defaults describe a single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """True on rank 0, the one process that writes files and logs."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """True when more than one process trains (``world_size > 1``)."""
        return self.world_size > 1


def init_from_env(device_type: str) -> DistInfo:
    """Join the process group ``torchrun`` describes in the environment (no-op alone):
    NCCL when ``device_type`` is "cuda", else gloo. Returns this process's place."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Make every rank's ``module`` hold rank ``src``'s parameters and buffers (in place)."""
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.data, src)


def average_gradients(module: nn.Module, world_size: int) -> None:
    """All-reduce the gradients of ``module`` in one flat buffer and divide by
    ``world_size`` (the number of processes), in place."""
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset : offset + n].view_as(g))
        offset += n


def sum_across_ranks(t: torch.Tensor) -> torch.Tensor:
    """All-reduce ``t`` in place (sum) when a process group is running; returns ``t``."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t)
    return t
