"""A whole training run described in one JSON file, for ``medgan train --config FILE``.

Every job has the same fields (``docs/experiments.md`` has the schema per job; one file
per job in ``examples/configs/``)::

    {
      "data":          {"name": "mni152_t1_to_tissue", "kwargs": {"size": 64}},
      "adapter":       "paired",
      "generator":     {"name": "unet_generator", "kwargs": {"out_channels": 2}},
      "discriminator": {"name": "patchgan_discriminator", "kwargs": {"in_channels": 2}},
      "loss":          {"name": "pix2pix", "kwargs": {"l1_weight": 100}},
      "augment":       null,
      "evaluate":      {"every": 250, "metric": "psnr", "n": 64},
      "tracker":       "tensorboard",
      "train":         {"steps": 2000, "batch_size": 8},
      "out_dir": "runs/pix2pix",
      "checkpoint_every": 500, "sample_every": 250, "log_every": 10,
      "resume": "auto"
    }

- ``adapter`` (:data:`ADAPTERS`): how a batch reaches G and D, i.e. the job:
  ``noise_to_image`` (default; class-conditional when G has ``num_classes``),
  ``conditional``, ``paired`` (pix2pix), ``unpaired`` (CycleGAN), ``labels_to_one_hot``
  (segmentation; kwargs ``num_classes``).
- ``loss``: a registered loss with its task weights (``pix2pix``: ``l1_weight``...,
  ``cycle_gan``: ``cycle_weight``, ``identity_weight``; ``segmentation``: ``adv_weight``,
  ``dice_weight``, ``ce_weight``); default non-saturating.
- ``augment`` (:class:`AugmentConfig`): DiffAugment on D's inputs, adaptive (ADA) by
  default; ``true`` for the defaults, ``false``/null for none.
- ``evaluate`` (:class:`EvaluateConfig`): a metric of :mod:`medgan.evaluation` every
  ``every`` steps, written to ``out_dir/eval.jsonl`` and to the tracker.
- ``tracker``: "none", "tensorboard" or "mlflow", or ``{"name": ..., "kwargs": {...}}``
  (:mod:`medgan.trackers`).
- ``resume``: "auto" continues from ``out_dir/checkpoints/last.pt`` when it exists, a path
  continues from that file, null starts fresh.

Without ``generator`` and ``discriminator`` the run uses :func:`medgan.recipes.unconditional`
(the measured-best networks, loss, augmentation and settings for noise-to-image
generation); ``loss`` kwargs, ``augment`` true/false and every ``train`` field given then
override the recipe's choice::

    {"data": {"name": "mni152_slices", "kwargs": {"size": 64}},
     "train": {"steps": 2000, "max_minutes": 10}, "out_dir": "runs/mri"}

:func:`apply_overrides` changes values by dotted path (``medgan train --set
train.steps=2000 --set loss.kwargs.r1_weight=1``).
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medgan import callbacks as cb
from medgan.augment import POLICIES
from medgan.batches import BatchAdapter, NoiseToImage, Paired, Unpaired
from medgan.config import (
    TrainConfig,
    check_field_types,
    check_fields,
    check_kwargs,
    check_output_folder,
    check_seed,
)
from medgan.errors import ConfigError
from medgan.registry import DATASETS, LOSSES, MODELS, Registry, Spec

# ------------------------------------------------------------------------------ adapters

#: batch adapters by name: the ``adapter`` entry of an experiment file
ADAPTERS = Registry("adapter")


@ADAPTERS.register("noise_to_image")
def _noise_to_image(**kwargs: Any) -> NoiseToImage:
    """Unconditional GANs: G(z), D(x) (kwargs: the dict-batch keys of NoiseToImage)."""
    return NoiseToImage(False, **kwargs)


@ADAPTERS.register("conditional")
def _conditional(**kwargs: Any) -> NoiseToImage:
    """Class-conditional GANs: G(z, y), D(x, y) on ``(image, label)`` items."""
    return NoiseToImage(True, **kwargs)


ADAPTERS.register("paired")(Paired)
ADAPTERS.register("unpaired")(Unpaired)


@ADAPTERS.register("labels_to_one_hot")
def _labels_to_one_hot(num_classes: int) -> BatchAdapter:
    """Segmentation: ``(image, label map)`` items; G(image), D(one-hot map, image)."""
    from medgan.tasks.segmentation import LabelsToOneHot

    return LabelsToOneHot(num_classes)


#: adapters that feed noise to the generator (the others feed it images)
NOISE_ADAPTERS = ("noise_to_image", "conditional")
#: the adapter each task loss needs (it compares G's output with the item's second part)
TASK_LOSSES = {"pix2pix": "paired", "cycle_gan": "unpaired", "segmentation": "labels_to_one_hot"}
#: what each adapter reads from a data item, for messages
ITEMS = {
    "conditional": "(image, class label)",
    "paired": "(source, target)",
    "unpaired": "(domain A image, domain B image)",
    "labels_to_one_hot": "(image, label map)",
}
#: fields whose values are registry specs ``{"name": ..., "kwargs": {...}}``
SPEC_FIELDS = ("data", "adapter", "generator", "discriminator", "loss", "tracker")


# ------------------------------------------------------------------------- sub-configs


@dataclass(frozen=True)
class AugmentConfig:
    """DiffAugment (Zhao et al. 2020) on the discriminator's inputs, optionally adaptive
    (ADA, Karras et al. 2020; :class:`~medgan.callbacks.AdaptiveAugmentation`).

    Args:
        policy: transforms, a subset of ``intensity``, ``translation``, ``cutout`` (a list
            or a comma-separated string).
        p: probability of each transform per sample, in [0, 1]; with ``adaptive`` the
            starting value (ADA starts at 0).
        adaptive: move ``p`` to hold D's overfitting signal r_t at ``target``.
        target: the r_t to hold (0.6 in the paper), in [0, 1].
        interval: steps between adjustments of ``p`` (>= 1; 4 in the paper).
        speed_kimg: thousands of images over which ``p`` can go from 0 to 1 (> 0; 500 in
            the paper for GPU-length runs, the recipe uses 20 for CPU-length runs).
        translation_ratio: largest shift as a fraction of each side, in (0, 1].
        cutout_ratio: side of the cut-out box as a fraction of each side, in (0, 1].
    """

    policy: tuple[str, ...] | str = POLICIES
    p: float = 0.0
    adaptive: bool = True
    target: float = 0.6
    interval: int = 4
    speed_kimg: float = 500.0
    translation_ratio: float = 0.125
    cutout_ratio: float = 0.5

    def __post_init__(self) -> None:
        check_field_types(self)
        policy = self.policy.split(",") if isinstance(self.policy, str) else self.policy
        object.__setattr__(self, "policy", tuple(p.strip() for p in policy if p.strip()))
        unknown = sorted(set(self.policy) - set(POLICIES))
        if unknown:
            raise ConfigError(f"AugmentConfig.policy: unknown {unknown}; known: {POLICIES}")
        for name in ("p", "target"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(
                    f"AugmentConfig.{name} must be in [0, 1], got {getattr(self, name)}"
                )
        for name in ("translation_ratio", "cutout_ratio"):
            if not 0 < getattr(self, name) <= 1:
                raise ConfigError(
                    f"AugmentConfig.{name} must be in (0, 1], got {getattr(self, name)}"
                )
        if self.interval < 1:
            raise ConfigError(
                f"AugmentConfig.interval must be an integer >= 1, got {self.interval}"
            )
        if not self.speed_kimg > 0:
            raise ConfigError(f"AugmentConfig.speed_kimg must be > 0, got {self.speed_kimg}")
        if not self.adaptive and self.p == 0:
            raise ConfigError(
                "AugmentConfig.p is 0 and adaptive is false: nothing would be augmented; "
                "set p > 0, adaptive true, or augment null"
            )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AugmentConfig:
        """The config of a JSON object ``d``; ConfigError for a non-dict or an unknown key
        (listing the known ones) and for any value ``__post_init__`` refuses."""
        check_fields(cls, d)
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, ``policy`` as a list (``from_dict(to_dict())`` gives the same
        config)."""
        return dataclasses.asdict(self) | {"policy": list(self.policy)}


@dataclass(frozen=True)
class EvaluateConfig:
    """A metric of :mod:`medgan.evaluation` every ``every`` steps and at the end.

    Args:
        every: interval in steps (>= 1).
        metric: a registered metric that fits the adapter (``swd``/``domain_fid`` for
            generation, ``psnr``/``ssim``/``l1`` for paired, ``dice`` for segmentation);
            None picks ``swd``, ``psnr`` or ``dice`` by adapter.
        n: items evaluated (>= 1; a seeded random choice of the evaluation data).
        seed: seeds the choice and the noise (the training RNGs are not touched).
        data: a held-out data set ``{"name": ..., "kwargs": {...}}``; None evaluates on
            the training data.
    """

    every: int = 1000
    metric: str | None = None
    n: int = 64
    seed: int = 0
    data: Spec | None = None

    def __post_init__(self) -> None:
        check_field_types(self)
        for name in ("every", "n"):
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"EvaluateConfig.{name} must be an integer >= 1, got {getattr(self, name)}"
                )
        check_seed(self.seed, "EvaluateConfig.seed")
        if self.metric is not None:
            from medgan.evaluation import METRICS

            try:
                METRICS.get(self.metric)
            except ConfigError as e:
                raise ConfigError(f"EvaluateConfig.metric: {e}") from None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EvaluateConfig:
        """The config of a JSON object ``d`` (``data`` as a name or ``{"name": ...,
        "kwargs": {...}}``); ConfigError for an unknown key or a refused value."""
        check_fields(cls, d)
        kw = dict(d)
        if kw.get("data") is not None:
            kw["data"] = _spec(kw["data"], "evaluate.data")
        return cls(**kw)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, ``data`` as ``{"name": ..., "kwargs": {...}}`` or None
        (``from_dict(to_dict())`` gives the same config)."""
        d = dataclasses.asdict(self)
        d["data"] = self.data.to_dict() if self.data is not None else None
        return d


# ---------------------------------------------------------------------- the experiment


@dataclass(frozen=True)
class ExperimentConfig:
    """One training run (see the module docstring for the JSON form).

    Args:
        data: the registered data set and its keyword arguments.
        adapter: a name in :data:`ADAPTERS` (the job) with kwargs; None: noise-to-image,
            class-conditional when the generator has ``num_classes > 0``.
        generator, discriminator: registered networks, both or neither (then the recipe
            :func:`medgan.recipes.unconditional` chooses them: noise-to-image only).
        loss: a registered loss with its task weights; default non-saturating (with named
            models) or the recipe's "relativistic" (whose kwargs may be given).
        augment: an :class:`AugmentConfig`; True: its defaults (the recipe: force its
            ADA on); False or None: none (the recipe: None keeps its own choice).
        evaluate: an :class:`EvaluateConfig`, or None.
        tracker: "tensorboard" or "mlflow" (:mod:`medgan.trackers`) with kwargs, or None.
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
    adapter: Spec | None = None
    generator: Spec | None = None
    discriminator: Spec | None = None
    loss: Spec | None = None
    augment: AugmentConfig | bool | None = None
    evaluate: EvaluateConfig | None = None
    tracker: Spec | None = None
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
        if self.adapter is not None:
            _check_signature(ADAPTERS, self.adapter, "adapter")
        if self.tracker is not None:
            from medgan.trackers import check_tracker

            check_tracker(self.tracker)
        job = self.job
        if self.loss is not None and TASK_LOSSES.get(self.loss.name, job) != job:
            raise ConfigError(
                f"loss {self.loss.name!r} compares G's output with the second part of each "
                f'item: it needs "adapter": {TASK_LOSSES[self.loss.name]!r}, this '
                f"experiment's adapter is {job!r}"
            )
        if self.evaluate is not None and self.evaluate.metric is not None:
            from medgan.evaluation import METRICS, metrics_for

            if job not in METRICS.get(self.evaluate.metric).adapters:
                raise ConfigError(
                    f"evaluate.metric {self.evaluate.metric!r} does not fit adapter {job!r}; "
                    f"metrics for it: {', '.join(metrics_for(job))}"
                )
        if self.generator is None:
            self._check_recipe()

    def _check_recipe(self) -> None:
        if self.job != "noise_to_image":
            raise ConfigError(
                f"adapter {self.job!r} needs named models: give 'generator' and "
                "'discriminator' (without them the recipe medgan.recipes.unconditional "
                "trains noise-to-image GANs only)"
            )
        if isinstance(self.augment, AugmentConfig):
            raise ConfigError(
                "augment: the recipe (no 'generator'/'discriminator' named) uses its own "
                "adaptive augmentation: give true or false, or name the models to set it"
            )

    @property
    def job(self) -> str:
        """The adapter's name ("noise_to_image" when none is named)."""
        return self.adapter.name if self.adapter is not None else "noise_to_image"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExperimentConfig:
        """The config of a parsed experiment file (the module docstring's JSON form).

        Registry entries may be a name or ``{"name": ..., "kwargs": {...}}``; ``tracker``
        "none" means None; ``augment`` and ``evaluate`` objects and ``train`` are read by
        their own ``from_dict``, and the keys of ``train`` become ``train_given``.

        Args:
            d: the parsed JSON object.

        Raises:
            ConfigError: an unknown key, a missing ``data``, only one of ``generator`` and
                ``discriminator``, a ``train_given`` entry, or any refused value.
        """
        check_fields(cls, d)
        if "train_given" in d:
            raise ConfigError("train_given is derived from 'train', not an entry of the file")
        if "data" not in d:
            raise ConfigError("the experiment config needs a 'data' entry")
        if (d.get("generator") is None) != (d.get("discriminator") is None):
            raise ConfigError(
                "name both 'generator' and 'discriminator', or neither (then the recipe "
                "medgan.recipes.unconditional chooses them)"
            )
        kw = dict(d)
        if kw.get("tracker") == "none":
            kw["tracker"] = None
        for key in SPEC_FIELDS:
            if kw.get(key) is not None:
                kw[key] = _spec(kw[key], key)
        if isinstance(kw.get("augment"), dict):
            kw["augment"] = AugmentConfig.from_dict(kw["augment"])
        if isinstance(kw.get("evaluate"), dict):
            kw["evaluate"] = EvaluateConfig.from_dict(kw["evaluate"])
        if "train" in kw:
            kw["train"] = TrainConfig.from_dict(kw["train"])
            kw["train_given"] = tuple(d["train"])
        return cls(**kw)

    @classmethod
    def from_json(cls, path: str | Path, overrides: Sequence[str] = ()) -> ExperimentConfig:
        """Read ``path``, apply ``overrides`` (``"train.steps=2000"``, see
        :func:`apply_overrides`) and validate; errors name the file."""
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist") from None
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path} is not valid JSON: {e}") from None
        d = apply_overrides(d, overrides)
        try:
            return cls.from_dict(d)
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (``from_dict(to_dict())`` gives the same config)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for key in (*SPEC_FIELDS, "augment", "evaluate"):
            v = d[key]
            d[key] = v.to_dict() if hasattr(v, "to_dict") else v
        train = self.train.to_dict()
        given = self.train_given if self.generator is None else tuple(train)
        d["train"] = {k: train[k] for k in given}
        del d["train_given"]
        return d


def _spec(value: Any, what: str) -> Spec:
    kwargs = value.get("kwargs") if isinstance(value, dict) else None
    if kwargs is not None and not isinstance(kwargs, dict):
        raise ConfigError(f"{what}.kwargs must be an object {{name: value, ...}}, got {kwargs!r}")
    return Spec.from_dict(value, what)


def _check_signature(registry: Registry, spec: Spec, what: str) -> None:
    """Refuse an unknown name, kwargs the builder does not take (unless it takes any),
    missing required kwargs, and values of the wrong type, naming ``what``."""
    try:
        builder = registry.get(spec.name)
    except ConfigError as e:
        raise ConfigError(f"{what}: {e}") from None
    params = inspect.signature(builder).parameters
    named = {k: p for k, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    if len(named) == len(params):
        unknown = sorted(set(spec.kwargs) - set(named))
        if unknown:
            raise ConfigError(
                f"{what} {spec.name!r}: unknown kwargs {unknown}; known: {sorted(named)}"
            )
    missing = [k for k, p in named.items() if p.default is p.empty and k not in spec.kwargs]
    if missing:
        raise ConfigError(f"{what} {spec.name!r} needs kwargs {missing}")
    check_kwargs(builder, spec.kwargs, f"{what} {spec.name!r}")


# ------------------------------------------------------------------------- overrides


def apply_overrides(d: dict[str, Any], assignments: Sequence[str]) -> dict[str, Any]:
    """A copy of the experiment dict ``d`` with each of ``assignments``
    (``"dotted.path=value"``, as given to ``--set``) assigned in order.

    The value is parsed as JSON (``2000``, ``true``, ``null``, ``[0, 0.99]``,
    ``{"size": 32}``), else taken as a string (``cpu``, ``runs/x``). Paths follow the
    file's structure: a field (``out_dir``), a field of ``train``/``augment``/``evaluate``
    (``train.steps``), a spec's ``name`` or anything under its ``kwargs``
    (``loss.kwargs.r1_weight``, ``data.kwargs.domain_a.kwargs.size``). ``kwargs.`` may be
    left out right after a spec (``loss.r1_weight`` is ``loss.kwargs.r1_weight``). A spec
    given as a bare name (``"loss": "hinge"``) and ``"augment": true`` are expanded to
    objects first. Unknown paths raise ConfigError naming them and the known fields.
    """
    out = copy.deepcopy(d)
    if not isinstance(out, dict):
        raise ConfigError(f"the experiment config must be a JSON object, got {type(d).__name__}")
    for assignment in assignments:
        path, sep, text = assignment.partition("=")
        keys = path.strip().split(".")
        if not sep or not all(keys):
            raise ConfigError(f"--set {assignment!r}: expected PATH=VALUE, e.g. train.steps=2000")
        keys = _with_kwargs(keys)
        _check_path(keys, assignment)
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        node = out
        for i, key in enumerate(keys[:-1]):
            child = node.get(key)
            if isinstance(child, str) and keys[i + 1] in ("name", "kwargs"):
                child = {"name": child}  # "loss": "hinge" -> {"name": "hinge"}
            elif child is None or isinstance(child, bool):
                child = {}  # a missing entry, or "augment": true
            elif not isinstance(child, dict):
                where = ".".join(keys[: i + 1])
                raise ConfigError(
                    f"--set {assignment!r}: {where} is {child!r}, not an object to set "
                    f"{keys[i + 1]!r} in"
                )
            node[key] = child
            node = child
        node[keys[-1]] = value
    return out


def _with_kwargs(keys: list[str]) -> list[str]:
    """``loss.r1_weight`` -> ``loss.kwargs.r1_weight``: the shorthand for an argument of a
    spec (a top-level spec or ``evaluate.data``), whose own keys are only name and kwargs."""
    at = 2 if keys[:2] == ["evaluate", "data"] else 1 if keys[0] in SPEC_FIELDS else 0
    if at and len(keys) > at and keys[at] not in ("name", "kwargs"):
        return [*keys[:at], "kwargs", *keys[at:]]
    return keys


def _check_path(keys: list[str], assignment: str) -> None:
    """Refuse a path that names no field of the experiment file."""
    sections = {"train": TrainConfig, "augment": AugmentConfig, "evaluate": EvaluateConfig}
    top = [f.name for f in dataclasses.fields(ExperimentConfig) if f.name != "train_given"]

    def refuse(why: str, known: Sequence[str]) -> ConfigError:
        return ConfigError(
            f"--set {assignment!r}: unknown path {'.'.join(keys)!r}: {why}; known: "
            f"{', '.join(known)}"
        )

    head, rest = keys[0], keys[1:]
    if head not in top:
        raise refuse(f"{head!r} is not an experiment field", top)
    if not rest:
        return
    if head == "evaluate" and rest[0] == "data":  # a spec inside a section
        head, rest = "evaluate.data", rest[1:]
    elif head in sections:
        fields = [f.name for f in dataclasses.fields(sections[head])]
        if rest[0] not in fields or len(rest) > 1:
            raise refuse(f"{head} has no field {'.'.join(rest)!r}", fields)
        return
    elif head not in SPEC_FIELDS:
        raise refuse(f"{head!r} is a value, it has no fields", top)
    if not rest or rest[0] not in ("name", "kwargs") or (rest[0] == "name" and len(rest) > 1):
        raise refuse(f"{head} is a registry spec", ("name", "kwargs.<argument>"))


# ---------------------------------------------------------------------------- building


def build_trainer(cfg: ExperimentConfig):  # -> Trainer
    """Models, adapter, loss, data, augmentation and callbacks (the standard ones, the
    evaluation and the tracker) for ``cfg``; resumes as it says."""
    from medgan.trainer import Trainer

    check_output_folder(cfg.out_dir, "out_dir")
    data = _build(DATASETS, cfg.data, "data")
    _check_items(data, cfg)
    extra = _extra_callbacks(cfg)
    if cfg.generator is None:
        trainer = _recipe_trainer(cfg, data, extra)
    else:
        g = _build(MODELS, cfg.generator, "generator")
        d = _build(MODELS, cfg.discriminator, "discriminator")
        loss = _build(LOSSES, cfg.loss or Spec("non_saturating"), "loss")
        adapter = _adapter(cfg, g)
        own: list[Any] = []
        augment = AugmentConfig() if cfg.augment is True else cfg.augment or None
        if augment is not None:
            d = _augmented(d, augment, cfg.train.seed)
            if augment.adaptive:  # first, so that the metric log and the tracker see aug_p
                own.append(
                    cb.AdaptiveAugmentation(augment.target, augment.interval, augment.speed_kimg)
                )
        callbacks = own + cb.standard_callbacks(
            cfg.out_dir, cfg.checkpoint_every, cfg.sample_every, cfg.log_every, cfg.keep_last
        )
        trainer = Trainer(
            g, d, data, loss=loss, config=cfg.train, callbacks=callbacks + extra, adapter=adapter
        )
    last = Path(cfg.out_dir) / "checkpoints" / "last.pt"
    if cfg.resume == "auto" and last.exists():
        trainer.resume(last)
    elif cfg.resume not in (None, "auto"):
        trainer.resume(cfg.resume)
    return trainer


def _recipe_trainer(cfg: ExperimentConfig, data: Any, extra: list[Any]):  # -> Trainer
    from medgan.recipes import unconditional

    if cfg.loss is not None and cfg.loss.name != "relativistic":
        raise ConfigError(
            f"loss {cfg.loss.name!r} needs named models: the recipe trains with the "
            "'relativistic' loss (give its kwargs), or name 'generator' and 'discriminator'"
        )
    if cfg.loss is not None:
        check_kwargs(LOSSES.get("relativistic"), cfg.loss.kwargs, "loss 'relativistic'")
    train = cfg.train.to_dict()
    return unconditional(
        data,
        out_dir=cfg.out_dir,
        checkpoint_every=cfg.checkpoint_every,
        sample_every=cfg.sample_every,
        log_every=cfg.log_every,
        keep_last=cfg.keep_last,
        loss=dict(cfg.loss.kwargs) if cfg.loss is not None else None,
        augment=cfg.augment if isinstance(cfg.augment, bool) else None,
        callbacks=extra,
        **{k: train[k] for k in cfg.train_given},
    )


def _extra_callbacks(cfg: ExperimentConfig) -> list[Any]:
    """The evaluation and the tracker (after every other callback: the tracker records what
    they logged), built before the models so that a missing package fails first."""
    from medgan.trackers import RunInfo, build_tracker

    tracker = None
    if cfg.tracker is not None:
        run = RunInfo(cfg.out_dir, cfg.to_dict(), cfg.log_every, cfg.sample_every)
        tracker = build_tracker(cfg.tracker, run)
    out: list[Any] = []
    if cfg.evaluate is not None:
        from medgan.evaluation import DEFAULT_METRIC, evaluator

        ev = cfg.evaluate
        held_out = _build(DATASETS, ev.data, "evaluate.data") if ev.data is not None else None
        fn = evaluator(ev.metric or DEFAULT_METRIC[cfg.job], ev.n, ev.seed, held_out)
        out.append(
            cb.Evaluate(
                fn,
                ev.every,
                Path(cfg.out_dir) / "eval.jsonl",
                on_result=tracker.log_scalars if tracker is not None else None,
            )
        )
    return out + ([tracker] if tracker is not None else [])


def _adapter(cfg: ExperimentConfig, g: Any) -> BatchAdapter:
    """The configured adapter (default: noise-to-image, conditional when G has classes),
    refused when it cannot feed this generator."""
    # num_classes makes a noise generator class-conditional; a segmenter's (no latent_dim)
    # counts the classes it outputs
    takes_noise = getattr(g, "latent_dim", None) is not None
    classes = int(getattr(g, "num_classes", 0) or 0) if takes_noise else 0
    job = cfg.job if cfg.adapter is not None else ("conditional" if classes else cfg.job)
    if job in NOISE_ADAPTERS and not takes_noise:
        raise ConfigError(
            f"adapter {job!r} feeds noise to the generator, but generator "
            f"{cfg.generator.name!r} takes no noise (no latent_dim): image-to-image jobs "  # type: ignore[union-attr]
            'need "adapter": "paired" (pix2pix), "unpaired" (CycleGAN) or '
            '"labels_to_one_hot" (segmentation)'
        )
    if job == "conditional" and not classes:
        raise ConfigError(
            f"adapter 'conditional' gives class labels, but generator {cfg.generator.name!r} "  # type: ignore[union-attr]
            "has no classes: set generator.kwargs.num_classes (and the discriminator's)"
        )
    if job == "noise_to_image" and classes:
        raise ConfigError(
            f"adapter 'noise_to_image' gives no labels, but the generator has num_classes="
            f'{classes}: use "adapter": "conditional"'
        )
    if cfg.adapter is None:
        return NoiseToImage(conditional=bool(classes))
    return _build(ADAPTERS, cfg.adapter, "adapter")


def _check_items(data: Any, cfg: ExperimentConfig) -> None:
    """Refuse data whose items are single images for an adapter that reads pairs."""
    need = ITEMS.get(cfg.job)
    if need is None or len(data) == 0:
        return
    item = data[0]
    if not isinstance(item, tuple | list | dict):
        raise ConfigError(
            f"data {cfg.data.name!r} yields single images, but adapter {cfg.job!r} reads "
            f"{need} items: choose a data set of such pairs (docs/experiments.md lists them)"
        )


def _augmented(d: Any, augment: AugmentConfig, seed: int) -> Any:
    """``d`` behind a DiffAugment with its own seeded stream (one per torchrun rank)."""
    from medgan.augment import AugmentedDiscriminator, DiffAugment

    rank = int(os.environ.get("RANK", "0"))
    aug = DiffAugment(
        augment.policy,
        p=augment.p,
        translation_ratio=augment.translation_ratio,
        cutout_ratio=augment.cutout_ratio,
        seed=seed * 1000 + rank,
    )
    return AugmentedDiscriminator(d, aug)


def _build(registry: Registry, spec: Spec, what: str) -> Any:
    """``registry.build`` after checking the kwargs' types against the builder's signature,
    so that ``"size": "16"`` is refused by name, not deep inside the builder."""
    check_kwargs(registry.get(spec.name), spec.kwargs, f"{what} {spec.name!r}")
    return registry.build(spec.name, **spec.kwargs)
