"""medgan: generative adversarial networks for medical images.

Quick start::

    import medgan
    g = medgan.models.build("dcgan_generator", image_size=64)
    d = medgan.models.build("dcgan_discriminator", image_size=64)
    data = medgan.data.CTPhantomSlices(n=1024, size=64)
    trainer = medgan.Trainer(g, d, data, loss=medgan.losses.NonSaturating(),
                             config=medgan.TrainConfig(steps=500),
                             callbacks=medgan.callbacks.standard_callbacks("runs/demo"))
    trainer.fit(progress=True)
"""

from __future__ import annotations

from medgan import callbacks, data, losses, models
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
    "callbacks",
    "data",
    "losses",
    "models",
    "seed_everything",
]
