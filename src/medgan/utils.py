"""Small helpers with no better home."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (CPU and CUDA) global generators with ``seed`` (numpy
    gets ``seed % 2**32``), e.g. before building models so their initial weights are
    reproducible."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002 (seeding the legacy global is the point)
    torch.manual_seed(seed)


def process_cpu_seconds() -> float:
    """User + system CPU seconds of this process, all threads (getrusage): the clock of
    equal-compute comparisons, insensitive to other processes on the machine."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def sha256_of(path: str | Path) -> str:
    """The SHA-256 of the bytes of the file at ``path`` as 64 hex digits (read in 1 MiB
    chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
