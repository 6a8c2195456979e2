"""medgan: generative adversarial networks for medical images.

Quick start (the measured-best defaults)::

    import medgan
    data = medgan.data.CTPhantomSlices(n=1024, size=64)
    trainer = medgan.recipes.unconditional(data, image_size=64, out_dir="runs/demo",
                                           max_minutes=5)
    trainer.fit(progress=True)

Every part can be chosen by hand: ``medgan.Trainer(G, D, data, loss=..., config=...)``.

Subpackages, all imported (and every model, loss and dataset registered) by ``import medgan``:
``data``, ``models``, ``losses``, ``metrics``, ``tasks``, ``augment``, ``recipes``,
``callbacks``, ``generate`` (load a generator, draw samples) and ``pretrained`` (export a
generator as a pretrained folder, ONNX or TorchScript). ``medgan.sampling`` is a deprecated
alias of ``medgan.generate``.

They are imported eagerly because it costs little (``python -X importtime``, 2 busy CPU
cores): ``import medgan`` takes about 0.3 s after ``import torch`` (1.1 s), most of it
scipy.ndimage for ``medgan.data``; ``metrics``, ``tasks``, ``augment`` and ``recipes``
together add about 0.08 s, which lazy imports would save.
"""

from __future__ import annotations

import importlib
from typing import Any

from medgan import (
    augment,
    callbacks,
    data,
    generate,
    losses,
    metrics,
    models,
    pretrained,
    recipes,
    tasks,
)
from medgan.config import TrainConfig
from medgan.errors import (
    CheckpointError,
    ConfigError,
    DataError,
    MedganError,
    TrainingDivergedError,
)
from medgan.trainer import Trainer
from medgan.utils import seed_everything
from medgan.version import __version__ as __version__

__all__ = [
    "CheckpointError",
    "ConfigError",
    "DataError",
    "MedganError",
    "TrainConfig",
    "Trainer",
    "TrainingDivergedError",
    "augment",
    "callbacks",
    "data",
    "generate",
    "losses",
    "metrics",
    "models",
    "pretrained",
    "recipes",
    "seed_everything",
    "tasks",
]


def __getattr__(name: str) -> Any:
    """``medgan.sampling``, the deprecated alias of ``medgan.generate``, imported (with its
    DeprecationWarning) only when it is used."""
    if name == "sampling":
        return importlib.import_module("medgan.sampling")
    raise AttributeError(f"module 'medgan' has no attribute {name!r}")
