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
``callbacks``, ``sampling`` (load a generator, draw samples) and ``pretrained`` (export a
generator as a pretrained folder, ONNX or TorchScript).
"""

from __future__ import annotations

from medgan import (
    augment,
    callbacks,
    data,
    losses,
    metrics,
    models,
    pretrained,
    recipes,
    sampling,
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

__version__ = "0.1.0"

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
    "losses",
    "metrics",
    "models",
    "pretrained",
    "recipes",
    "sampling",
    "seed_everything",
    "tasks",
]
