"""Where and how a run executes: the torch device (and the ``torchrun`` process group), the
networks' memory layout, the optimiser's kernels, and the wall-clock budget. The training
loop (:mod:`medgan.trainer`) calls these once at construction or once a step."""

from __future__ import annotations

import torch
from torch import nn

from medgan import distributed as ddp
from medgan.errors import ConfigError


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """The torch device ``name`` means: "auto" is CUDA when available, else the CPU; a bare
    "cuda" is this process's GPU ``cuda:{local_rank}``. Raises ConfigError without CUDA.

    Args:
        name: "auto", "cpu", "cuda" or "cuda:N" (``TrainConfig.device``); "cuda:N" is
            used as given.
        local_rank: this process's index among the processes of its node (``torchrun``'s
            ``LOCAL_RANK``; 0 without torchrun): the GPU a bare "cuda" means.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"device={name!r} but CUDA is not available; use 'cpu' or 'auto'")
        if name == "cuda":
            name = f"cuda:{local_rank}"
    return torch.device(name)


def setup_device(name: str) -> tuple[ddp.DistInfo, torch.device]:
    """Join the process group ``torchrun`` describes (if any) and resolve the device
    ``name`` ("auto", "cpu", "cuda", "cuda:1", ...) for this process."""
    cuda = name.startswith("cuda") or (name == "auto" and torch.cuda.is_available())
    dist = ddp.init_from_env("cuda" if cuda else "cpu")
    return dist, resolve_device(name, dist.local_rank)


def channels_last(net: nn.Module) -> None:
    """Convolution weights in channels-last order (2D) or channels-last-3d (3D), in place;
    other parameters (e.g. a 4D learned constant of a 3D generator) keep their layout.

    Args:
        net: the network whose ``Conv2d``/``Conv3d`` (and transposed) submodules are
            converted.
    """
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            m.to(memory_format=torch.channels_last)
        elif isinstance(m, nn.Conv3d | nn.ConvTranspose3d):
            m.to(memory_format=torch.channels_last_3d)


def adam(
    net: nn.Module, lr: float, betas: tuple[float, float], device: torch.device
) -> torch.optim.Adam:
    """Adam with the multi-tensor (foreach) kernels, fused into one kernel on CUDA (the
    arithmetic is Adam's either way; note that a loaded optimiser state keeps the flags it
    was saved with).

    Args:
        net: the network whose parameters the optimiser updates.
        lr: the learning rate (> 0).
        betas: Adam's ``(beta1, beta2)``, each in [0, 1).
        device: the device the parameters are on; CUDA selects the fused kernel.
    """
    fused = device.type == "cuda"
    return torch.optim.Adam(
        net.parameters(), lr=lr, betas=betas, foreach=not fused, fused=fused or None
    )


class Deadline:
    """``max_minutes`` of wall-clock time from construction; under torchrun every rank
    stops at the same step (rank 0's clock decides, checked with one broadcast a step).

    Args:
        minutes: the budget in minutes of wall-clock (monotonic) time; None = no limit
            (:meth:`passed` is always False).
        distributed: whether this process is one of a ``torchrun`` process group: then
            :meth:`passed` broadcasts rank 0's answer (every rank must call it, at the
            same steps).
        device: where the broadcast flag lives (the process's training device: CUDA
            for NCCL).
    """

    def __init__(self, minutes: float | None, distributed: bool, device: torch.device) -> None:
        import time

        self._clock = time.monotonic
        self.end = None if minutes is None else self._clock() + 60.0 * minutes
        self.distributed, self.device = distributed, device

    def passed(self) -> bool:
        """True once the budget is spent (False without one); the same on every rank."""
        if self.end is None:
            return False
        late = self._clock() >= self.end
        if self.distributed:
            import torch.distributed as dist

            flag = torch.tensor(float(late), device=self.device)
            dist.broadcast(flag, 0)
            late = bool(flag)
        return late
