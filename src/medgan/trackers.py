"""Experiment trackers: callbacks that send a run's losses, evaluation results, sample
images and configuration to TensorBoard or MLflow.

Both are optional extras (``pip install 'medgan[tensorboard]'``, ``'medgan[mlflow]'``);
without the package, building a tracker raises a :class:`~medgan.errors.ConfigError`
saying which extra to install. In an experiment file::

    "tracker": "tensorboard"
    "tracker": {"name": "mlflow", "kwargs": {"experiment": "ct", "tracking_uri": "http://..."}}

What both record, on rank 0 only:

- every ``every`` steps: each logged loss term (``d_loss``, ``g_loss``, ``r1``, ``aug_p``...)
  and both learning rates, under ``train/<name>``; the last step always;
- every ``image_every`` steps and at the end: a grid of the EMA generator's (else G's)
  outputs for a fixed batch (seeded noise, the first training items), ``samples``; 3D
  volumes as three grids of their middle slices, one per axis (``samples/axis0`` ...);
  the real images of the batch once, ``real``;
- evaluation results (:class:`~medgan.callbacks.Evaluate`'s ``on_result``), ``eval/<name>``;
- the experiment configuration, flattened to dotted keys: TensorBoard hparams plus the
  JSON as text; MLflow run parameters plus ``config.json`` as an artifact.
"""

from __future__ import annotations

import importlib
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from medgan.callbacks import Callback, eval_outputs
from medgan.config import check_kwargs
from medgan.errors import ConfigError
from medgan.registry import Registry, Spec

log = logging.getLogger(__name__)

TRACKERS = Registry("tracker")

#: the extra that installs each tracker's package
EXTRAS = {"tensorboard": "tensorboard", "mlflow": "mlflow"}


def require(module: str, tracker: str) -> Any:
    """Import ``module`` or raise a ConfigError naming the extra that installs it (the extra
    of ``tracker``, a key of ``EXTRAS``)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        extra = EXTRAS[tracker]
        raise ConfigError(
            f"tracker {tracker!r} needs the {module!r} package, which is not installed: "
            f"pip install 'medgan[{extra}]'"
        ) from None


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, float | int | str | bool]:
    """Nested config ``d`` -> ``{"train.steps": 2000, ...}``, keys joined with "." after
    ``prefix``; lists, None, non-finite floats and other values become their JSON text
    (what TensorBoard hparams and MLflow params can hold)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out |= flatten(v, key + ".")
        elif isinstance(v, bool | int | float | str) and not (
            isinstance(v, float) and not math.isfinite(v)
        ):
            out[key] = v
        else:
            out[key] = json.dumps(v)
    return out


def image_views(x: Tensor) -> dict[str, Tensor]:
    """Outputs ``x`` ``(N, C, *spatial)`` in [-1, 1] -> named grids ``(3, H, W)`` in [0, 1]:
    ``{"": grid}`` for images, one grid per axis of the middle slices for volumes
    (``{"/axis0": ..., "/axis1": ..., "/axis2": ...}``); ``{}`` for points."""
    from torchvision.utils import make_grid

    from medgan.images import to_display

    x = x.detach().float().cpu()
    if x.dim() == 4:
        views = {"": x}
    elif x.dim() == 5:
        views = {f"/axis{a}": x.select(2 + a, x.shape[2 + a] // 2) for a in range(3)}
    else:
        return {}
    nrow = max(1, math.ceil(math.sqrt(len(x))))
    return {k: make_grid(to_display(v), nrow=nrow, padding=2) for k, v in views.items()}


class Tracker(Callback):
    """Base of the trackers: decides what to record and when; subclasses only write.

    Args:
        every: interval of the scalar records in steps (>= 1).
        image_every: interval of the sample grids in steps (>= 1).
        n_images: images in each grid.
        config: the experiment configuration (a JSON-like dict) to record, or None.
        seed: seeds the fixed noise of the grids.
    """

    def __init__(
        self,
        every: int = 10,
        image_every: int = 500,
        n_images: int = 16,
        config: dict[str, Any] | None = None,
        seed: int = 1234,
    ) -> None:
        for name, v in (("every", every), ("image_every", image_every), ("n_images", n_images)):
            if v < 1:
                raise ConfigError(f"{type(self).__name__}: {name} must be >= 1, got {v}")
        self.every, self.image_every, self.n_images = every, image_every, n_images
        self.config, self.seed = config, seed
        self._inputs: Any = None
        self._last: tuple[int, dict[str, Tensor]] | None = None
        self._open = False

    # -- what subclasses write
    def _start(self, trainer: Any) -> None: ...

    def _scalars(self, step: int, values: dict[str, float]) -> None: ...

    def _image(self, step: int, tag: str, grid: Tensor) -> None: ...

    def _close(self, status: str) -> None: ...

    @property
    def location(self) -> str:
        """Where the records go (a folder or a URI), for messages."""
        return ""

    # -- the callback hooks
    def on_train_start(self, trainer: Any) -> None:
        """On rank 0: open the record, draw the grids' fixed inputs and record the grid of
        real images (tag ``real``)."""
        if not trainer.is_main:
            return
        self._start(trainer)
        self._open = True
        self._inputs = trainer.fixed_inputs(self.n_images, self.seed)
        for suffix, grid in image_views(self._inputs.real).items():
            self._image(trainer.step, "real" + suffix, grid)

    def on_step_end(self, trainer: Any, logs: dict[str, Tensor]) -> None:
        """Record ``logs`` as ``train/<name>`` with both learning rates every ``every`` steps,
        and a grid of samples (tag ``samples``) every ``image_every`` steps."""
        if not self._open:
            return
        self._last = (trainer.step, logs)
        if trainer.step % self.every == 0:
            self._write_scalars(trainer, logs)
        if trainer.step % self.image_every == 0:
            self._write_images(trainer)

    def on_train_end(self, trainer: Any) -> None:
        """Record the final step's scalars and samples unless already recorded, then close
        the record with status "FINISHED"."""
        if not self._open:
            return
        try:
            if self._last is not None and trainer.step % self.every:
                self._write_scalars(trainer, self._last[1])
            if trainer.step % self.image_every:
                self._write_images(trainer)
        finally:
            self._open = False
            self._close("FINISHED")

    def on_exception(self, trainer: Any, error: BaseException) -> None:
        """Close the record with status "KILLED" (``error`` is a KeyboardInterrupt) or
        "FAILED" when ``fit`` raises (``trainer`` is not read)."""
        if self._open:
            self._open = False
            self._close("KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")

    def log_scalars(self, step: int, values: dict[str, float]) -> None:
        """Record evaluation results ``values`` (name -> number) as ``eval/<name>`` at
        training step ``step`` (for ``Evaluate(on_result=...)``)."""
        if self._open:
            self._scalars(step, {f"eval/{k}": float(v) for k, v in values.items()})

    def _write_scalars(self, trainer: Any, logs: dict[str, Tensor]) -> None:
        values = {f"train/{k}": float(v) for k, v in logs.items()}
        values["train/lr_g"] = trainer.opt_g.param_groups[0]["lr"]
        values["train/lr_d"] = trainer.opt_d.param_groups[0]["lr"]
        self._scalars(trainer.step, values)

    def _write_images(self, trainer: Any) -> None:
        for suffix, grid in image_views(eval_outputs(trainer, self._inputs)).items():
            self._image(trainer.step, "samples" + suffix, grid)


class TensorBoardLogger(Tracker):
    """Write TensorBoard event files to ``log_dir`` (``torch.utils.tensorboard``).

    Scalars, image grids, the configuration as hparams and as JSON text (see the module
    docstring). A resumed run purges the events its interrupted predecessor wrote after
    the resumed step. View with ``tensorboard --logdir LOG_DIR``.

    Args:
        log_dir: the run's event folder.
        every, image_every, n_images, config, seed: see :class:`Tracker`.
    """

    def __init__(self, log_dir: str | Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        require("tensorboard", "tensorboard")
        self.log_dir = Path(log_dir)
        self._writer: Any = None

    @property
    def location(self) -> str:
        return str(self.log_dir)

    def _start(self, trainer: Any) -> None:
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        self._writer = SummaryWriter(
            str(self.log_dir), purge_step=trainer.step + 1 if trainer.step else None
        )
        if self.config is not None and trainer.step == 0:
            for summary in hparams(flatten(self.config), {}):
                self._writer.file_writer.add_summary(summary)
            text = json.dumps(self.config, indent=2)
            self._writer.add_text("config", "```\n" + text + "\n```", 0)

    def _scalars(self, step: int, values: dict[str, float]) -> None:
        for k, v in values.items():
            self._writer.add_scalar(k, v, step)

    def _image(self, step: int, tag: str, grid: Tensor) -> None:
        self._writer.add_image(tag, grid, step)

    def _close(self, status: str) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class MLflowLogger(Tracker):
    """Log to an MLflow tracking server or store (``mlflow-skinny`` is enough).

    Metrics (one MLflow step per training step), sample grids as PNG artifacts under
    ``samples/``, the flattened configuration as run parameters and ``config.json`` as an
    artifact. The run's id is kept in ``folder/mlflow_run_id.txt``, so a resumed training
    run continues its MLflow run. The run ends FINISHED, FAILED or KILLED.

    Args:
        folder: where the run-id file goes (the experiment's ``out_dir``).
        tracking_uri: an MLflow server (``http://...``), a database, or a local folder
            (``file:/abs/path``; MLflow 3 writes one only with MLFLOW_ALLOW_FILE_STORE=true
            in the environment). None: ``$MLFLOW_TRACKING_URI``, else
            ``file:<folder>/mlruns``.
        experiment: the MLflow experiment's name (created when missing).
        run_name: the run's name; None lets MLflow choose.
        every, image_every, n_images, config, seed: see :class:`Tracker`.
    """

    def __init__(
        self,
        folder: str | Path,
        tracking_uri: str | None = None,
        experiment: str = "medgan",
        run_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        require("mlflow", "mlflow")
        import os

        self.folder = Path(folder)
        self.tracking_uri = (
            tracking_uri
            or os.environ.get("MLFLOW_TRACKING_URI")
            or (self.folder.resolve() / "mlruns").as_uri()
        )
        self.experiment, self.run_name = experiment, run_name
        self.run_id: str | None = None
        self._client: Any = None

    @property
    def location(self) -> str:
        return f"{self.tracking_uri} (experiment {self.experiment!r}, run {self.run_id})"

    def _start(self, trainer: Any) -> None:
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient

        try:
            self._client = client = MlflowClient(tracking_uri=self.tracking_uri)
            exp = client.get_experiment_by_name(self.experiment)
            exp_id = exp.experiment_id if exp else client.create_experiment(self.experiment)
            self.run_id = (
                self._resumed_run(trainer)
                or client.create_run(exp_id, run_name=self.run_name).info.run_id
            )
        except MlflowException as e:
            hint = (
                " (MLflow 3 writes a local file store only with MLFLOW_ALLOW_FILE_STORE=true in "
                "the environment; or give the tracker's tracking_uri of an MLflow server)"
                if "MLFLOW_ALLOW_FILE_STORE" in str(e)
                else ""
            )
            raise ConfigError(
                f"tracker 'mlflow': tracking_uri {self.tracking_uri} refused: "
                f"{str(e).splitlines()[0]}{hint}"
            ) from None
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "mlflow_run_id.txt").write_text(self.run_id + "\n")
        if self.config is not None:
            self._params(flatten(self.config))
            client.log_text(self.run_id, json.dumps(self.config, indent=2), "config.json")

    def _resumed_run(self, trainer: Any) -> str | None:
        """The run to continue: the recorded one, when training resumes."""
        path = self.folder / "mlflow_run_id.txt"
        if trainer.step == 0 or not path.exists():
            return None
        run_id = path.read_text().strip()
        try:
            self._client.get_run(run_id)
        except Exception:  # noqa: BLE001 - deleted or from another store: start a new run
            log.warning("MLflow run %s of %s not found; starting a new run", run_id, path)
            return None
        self._client.update_run(run_id, status="RUNNING")
        return run_id

    def _params(self, params: dict[str, Any]) -> None:
        """Log parameters not yet in the run (MLflow refuses to change a value; a resumed
        run with other settings keeps the first values and says which differ)."""
        from mlflow.entities import Param

        old = self._client.get_run(self.run_id).data.params
        changed = sorted(k for k, v in params.items() if k in old and old[k] != str(v))
        if changed:
            log.warning("MLflow run %s keeps its first values of %s", self.run_id, changed)
        new = [Param(k, str(v)[:6000]) for k, v in params.items() if k not in old]
        for i in range(0, len(new), 100):  # MLflow's batch limit
            self._client.log_batch(self.run_id, params=new[i : i + 100])

    def _scalars(self, step: int, values: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, step) for k, v in values.items()]
        self._client.log_batch(self.run_id, metrics=metrics)

    def _image(self, step: int, tag: str, grid: Tensor) -> None:
        image = (grid.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
        self._client.log_image(self.run_id, image, f"{tag}/step_{step:08d}.png")

    def _close(self, status: str) -> None:
        if self._client is not None and self.run_id is not None:
            self._client.set_terminated(self.run_id, status)


@dataclass(frozen=True)
class RunInfo:
    """What a tracker builder learns from the experiment besides its own kwargs.

    Args:
        out_dir: the experiment's output folder (default place of the tracker's files).
        config: the experiment's JSON form (recorded as the run's parameters).
        log_every: the experiment's metric-log interval in steps (default scalar interval).
        sample_every: the experiment's sample-grid interval in steps (default image
            interval).
    """

    out_dir: str
    config: dict[str, Any]
    log_every: int
    sample_every: int


@TRACKERS.register("tensorboard")
def _tensorboard(
    run: RunInfo,
    log_dir: str | None = None,
    every: int | None = None,
    image_every: int | None = None,
    n_images: int = 16,
) -> TensorBoardLogger:
    """``log_dir`` default ``<out_dir>/tensorboard``; intervals default to the experiment's
    ``log_every`` and ``sample_every``."""
    return TensorBoardLogger(
        log_dir or Path(run.out_dir) / "tensorboard",
        every=run.log_every if every is None else every,
        image_every=run.sample_every if image_every is None else image_every,
        n_images=n_images,
        config=run.config,
    )


@TRACKERS.register("mlflow")
def _mlflow(
    run: RunInfo,
    tracking_uri: str | None = None,
    experiment: str = "medgan",
    run_name: str | None = None,
    every: int | None = None,
    image_every: int | None = None,
    n_images: int = 16,
) -> MLflowLogger:
    """See :class:`MLflowLogger`; intervals default to ``log_every`` and ``sample_every``."""
    return MLflowLogger(
        run.out_dir,
        tracking_uri=tracking_uri,
        experiment=experiment,
        run_name=run_name,
        every=run.log_every if every is None else every,
        image_every=run.sample_every if image_every is None else image_every,
        n_images=n_images,
        config=run.config,
    )


def check_tracker(spec: Spec) -> None:
    """Refuse (ConfigError) a ``spec`` with an unknown tracker name or kwargs that its
    builder does not take or type."""
    import inspect

    builder = TRACKERS.get(spec.name)
    params = inspect.signature(builder).parameters
    unknown = sorted(set(spec.kwargs) - set(params) | ({"run"} & set(spec.kwargs)))
    if unknown:
        known = [p for p in params if p != "run"]
        raise ConfigError(f"tracker {spec.name!r}: unknown kwargs {unknown}; known: {known}")
    check_kwargs(builder, spec.kwargs, f"tracker {spec.name!r}")


def build_tracker(spec: Spec, run: RunInfo) -> Tracker:
    """The tracker ``spec`` names, for the run ``run`` (raises ConfigError when its package
    is missing)."""
    check_tracker(spec)
    return TRACKERS.get(spec.name)(run, **spec.kwargs)
