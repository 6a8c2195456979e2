"""A whole training run described in one JSON file, for ``medgan train --config FILE``.

Example::

    {
      "generator":     {"name": "dcgan_generator",     "kwargs": {"image_size": 64}},
      "discriminator": {"name": "dcgan_discriminator", "kwargs": {"image_size": 64}},
      "loss":          {"name": "non_saturating", "kwargs": {"r1_weight": 0.1}},
      "data":          {"name": "ct_phantoms", "kwargs": {"n": 2048, "size": 64}},
      "train":         {"steps": 2000, "batch_size": 64},
      "out_dir": "runs/phantoms",
      "checkpoint_every": 500, "sample_every": 250, "log_every": 10,
      "resume": "auto"
    }

``resume``: "auto" continues from ``out_dir/checkpoints/last.pt`` when it exists, a path
continues from that file, null starts fresh.

Without ``generator`` and ``discriminator`` the run uses :func:`medgan.recipes.unconditional`
(the measured-best networks, loss, augmentation and settings for the data); ``loss``
kwargs and every ``train`` field given then override the recipe's choice::

    {"data": {"name": "mni152_slices", "kwargs": {"size": 64}},
     "train": {"steps": 2000, "max_minutes": 10}, "out_dir": "runs/mri"}
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medgan import callbacks as cb
from medgan.config import (
    TrainConfig,
    check_field_types,
    check_fields,
    check_kwargs,
    check_output_folder,
)
from medgan.errors import ConfigError
from medgan.registry import DATASETS, LOSSES, MODELS, Registry, Spec


@dataclass(frozen=True)
class ExperimentConfig:
    """One training run (see the module docstring for the JSON form).

    Args:
        data: the registered data set and its keyword arguments.
        generator, discriminator: registered networks, both or neither (then the recipe
            :func:`medgan.recipes.unconditional` chooses them).
        loss: a registered loss; default non-saturating (with named models) or the
            recipe's "relativistic" (whose kwargs may be given).
        train: the :class:`~medgan.config.TrainConfig`.
        train_given: the ``train`` fields the file set (the recipe keeps its own values
            for the others).
        out_dir: folder of checkpoints, sample grids, the metric log and the loss plot.
        checkpoint_every, sample_every, log_every: intervals in steps (>= 1).
        keep_last: checkpoints kept (>= 1).
        resume: "auto" (``out_dir/checkpoints/last.pt`` when it exists), a checkpoint
            path, or None (start fresh).
    """

    data: Spec
    generator: Spec | None = None
    discriminator: Spec | None = None
    loss: Spec | None = None
    train: TrainConfig = field(default_factory=TrainConfig)
    #: the ``train`` fields the file set (the recipe keeps its own values for the others)
    train_given: tuple[str, ...] = ()
    out_dir: str = "runs/medgan"
    checkpoint_every: int = 500
    sample_every: int = 500
    log_every: int = 10
    keep_last: int = 3
    resume: str | None = "auto"

    def __post_init__(self) -> None:
        check_field_types(self)
        for name in ("checkpoint_every", "sample_every", "log_every", "keep_last"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"ExperimentConfig.{name} must be an integer >= 1, got {getattr(self, name)}"
                )
        if not self.out_dir:
            raise ConfigError("ExperimentConfig.out_dir must name a folder, got ''")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExperimentConfig:
        check_fields(cls, d)
        if "data" not in d:
            raise ConfigError("the experiment config needs a 'data' entry")
        if (d.get("generator") is None) != (d.get("discriminator") is None):
            raise ConfigError(
                "name both 'generator' and 'discriminator', or neither (then the recipe "
                "medgan.recipes.unconditional chooses them)"
            )
        kw = dict(d)
        for key in ("generator", "discriminator", "data", "loss"):
            if kw.get(key) is not None:
                kwargs = kw[key].get("kwargs") if isinstance(kw[key], dict) else None
                if kwargs is not None and not isinstance(kwargs, dict):
                    raise ConfigError(
                        f"{key}.kwargs must be an object {{name: value, ...}}, got {kwargs!r}"
                    )
                kw[key] = Spec.from_dict(kw[key], key)
        if "train" in kw:
            kw["train"] = TrainConfig.from_dict(kw["train"])
            kw["train_given"] = tuple(d["train"])
        return cls(**kw)

    @classmethod
    def from_json(cls, path: str | Path) -> ExperimentConfig:
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path} is not valid JSON: {e}") from None
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for key in ("generator", "discriminator", "data", "loss"):
            d[key] = d[key].to_dict() if d[key] is not None else None
        train = self.train.to_dict()
        given = self.train_given if self.generator is None else tuple(train)
        d["train"] = {k: train[k] for k in given}
        del d["train_given"]
        return d


def build_trainer(cfg: ExperimentConfig):  # -> Trainer
    """Models, loss, data and the standard callbacks for ``cfg``; resumes as it says."""
    from medgan.trainer import Trainer

    check_output_folder(cfg.out_dir, "out_dir")
    data = _build(DATASETS, cfg.data, "data")
    if cfg.generator is None:
        from medgan.recipes import unconditional

        if cfg.loss is not None and cfg.loss.name != "relativistic":
            raise ConfigError(
                f"loss {cfg.loss.name!r} needs named models: the recipe trains with the "
                "'relativistic' loss (give its kwargs), or name 'generator' and 'discriminator'"
            )
        if cfg.loss is not None:
            check_kwargs(LOSSES.get("relativistic"), cfg.loss.kwargs, "loss 'relativistic'")
        train = cfg.train.to_dict()
        trainer = unconditional(
            data,
            out_dir=cfg.out_dir,
            checkpoint_every=cfg.checkpoint_every,
            sample_every=cfg.sample_every,
            log_every=cfg.log_every,
            keep_last=cfg.keep_last,
            loss=dict(cfg.loss.kwargs) if cfg.loss is not None else None,
            **{k: train[k] for k in cfg.train_given},
        )
    else:
        g = _build(MODELS, cfg.generator, "generator")
        d = _build(MODELS, cfg.discriminator, "discriminator")
        loss = _build(LOSSES, cfg.loss or Spec("non_saturating"), "loss")
        callbacks = cb.standard_callbacks(
            cfg.out_dir, cfg.checkpoint_every, cfg.sample_every, cfg.log_every, cfg.keep_last
        )
        trainer = Trainer(g, d, data, loss=loss, config=cfg.train, callbacks=callbacks)
    last = Path(cfg.out_dir) / "checkpoints" / "last.pt"
    if cfg.resume == "auto" and last.exists():
        trainer.resume(last)
    elif cfg.resume not in (None, "auto"):
        trainer.resume(cfg.resume)
    return trainer


def _build(registry: Registry, spec: Spec, what: str) -> Any:
    """``registry.build`` after checking the kwargs' types against the builder's signature,
    so that ``"size": "16"`` is refused by name, not deep inside the builder."""
    check_kwargs(registry.get(spec.name), spec.kwargs, f"{what} {spec.name!r}")
    return registry.build(spec.name, **spec.kwargs)
