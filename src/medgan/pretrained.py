"""Trained generators outside training: pretrained folders, ONNX and TorchScript files.

A *pretrained folder* is what a generator needs to be rebuilt without its training
checkpoint, laid out as a Hugging Face hub model repository (``huggingface_hub``'s
``upload_folder`` / ``snapshot_download`` move it as it is)::

    config.json         what to build: the model's registry name and keyword arguments,
                        its inputs and output, where the weights came from
    model.safetensors   the weights (safetensors: loading runs no code), with a content
                        digest in the header's metadata
    README.md           a model card: the YAML metadata the hub reads (library_name,
                        pipeline_tag, tags, license) and how to use the model

The model ``name`` in ``config.json`` is a registered name (:func:`medgan.models.available`)
for medgan's built-in models, and ``"package.module:Name"`` for a class or factory defined
elsewhere (your own ``nn.Module``), which :func:`from_pretrained` imports: only load folders
whose ``config.json`` names code you trust, as with any import.

Loading refuses, with a :class:`~medgan.errors.CheckpointError` naming the file: a missing or
malformed ``config.json``, a truncated or damaged ``model.safetensors`` (its content digest
differs), weights whose keys or shapes differ from the model the config builds (checked on
the meta device before anything is allocated), a model above the ``MEDGAN_MAX_BYTES`` limit
(:mod:`medgan.limits`), and NaN/inf weights.

For deployment without medgan or Python, :func:`export_onnx` writes an ONNX file (batch axis
dynamic) and :func:`export_torchscript` a TorchScript file; both check the exported model's
outputs against PyTorch (max absolute difference within ``atol``, default 1e-4) before the
file is written.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch
from torch import Tensor, nn

from medgan import checkpoint as ckpt_io
from medgan import limits
from medgan.errors import CheckpointError, ConfigError, MedganError
from medgan.registry import MODELS, import_path, spec_of
from medgan.version import __version__

log = logging.getLogger(__name__)

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
FORMAT = "medgan-pretrained"
FORMAT_VERSION = 1
#: the line after the YAML front matter (which the hub reads only at the very start of the
#: file) of a model card that :func:`save_pretrained` wrote, and so may overwrite
CARD_MARK = "<!-- model card written by medgan.pretrained.save_pretrained -->"
#: the header metadata key holding :func:`medgan.checkpoint.content_digest` of the weights
DIGEST_KEY = "medgan_sha256"
#: ONNX files above this are protobuf-limited (2 GiB); larger models are refused
ONNX_MAX_BYTES = 2 * 1024**3 - 2**20


# --------------------------------------------------------------------------- saving


def save_pretrained(
    generator: nn.Module,
    directory: str | os.PathLike,
    *,
    kwargs: Mapping[str, Any] | None = None,
    license: str | None = None,
    description: str | None = None,
    source: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``generator`` as a pretrained folder (``config.json``, ``model.safetensors``,
    ``README.md``) into ``directory``; returns the folder.

    Args:
        generator: a noise-to-image generator (``latent_dim`` attribute; input z
            ``(N, latent_dim)`` float32 and, with ``num_classes > 0``, labels ``(N,)`` int64)
            or an image-to-image generator (input ``(N, C, *spatial)`` in [-1, 1]); output
            ``(N, C, *spatial)`` in [-1, 1]. Built by :func:`medgan.models.build` (its name
            and keyword arguments are recorded), or any ``nn.Module`` class defined at the
            top level of an importable module (stored as ``"package.module:Name"``).
        directory: the folder; created if missing. Files of the same names are replaced
            (each atomically); a ``README.md`` that medgan did not write is kept.
        kwargs: the keyword arguments that rebuild a generator that was *not* made by
            :func:`medgan.models.build` (default: none). Must be JSON-serialisable.
        license: the model card's license, a hub identifier such as ``"apache-2.0"``,
            ``"cc-by-4.0"`` or ``"other"`` (default: none stated).
        description: a paragraph for the model card (training data, intended use).
        source: provenance stored in ``config.json`` (e.g. the checkpoint and step).

    Raises:
        ConfigError: the generator cannot be rebuilt from what would be stored (a class
            defined in a script or inside a function, kwargs that do not rebuild the same
            weights, kwargs given for a generator that records its own).
        CheckpointError: NaN/inf weights, or a state that is not all tensors.
    """
    name, model_kwargs = _model_spec(generator, kwargs)
    state = _cpu_state(generator)
    ckpt_io.check_finite(state, type(generator).__name__, "generator")
    _check_rebuilds(name, model_kwargs, state)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "medgan_version": __version__,
        "model": {"name": name, "kwargs": model_kwargs},
        "inputs": _inputs_of(generator),
        "output": _output_of(generator),
        "parameters": sum(p.numel() for p in generator.parameters()),
        "source": dict(source or {}),
    }
    try:
        text = json.dumps(config, indent=2) + "\n"
    except TypeError as e:
        raise ConfigError(
            f"source must be JSON-serialisable to go into {CONFIG_NAME}: {e}"
        ) from None
    directory = Path(directory)
    blob = safetensors.torch.save(
        state, metadata={"format": "pt", DIGEST_KEY: ckpt_io.content_digest(state)}
    )
    ckpt_io.write_atomic(directory / WEIGHTS_NAME, lambda f: f.write(blob))
    ckpt_io.write_atomic(directory / CONFIG_NAME, lambda f: f.write(text.encode()))
    card = directory / CARD_NAME
    if card.exists() and CARD_MARK not in card.read_text(errors="replace"):
        log.info("%s was not written by medgan: kept as it is", card)
    else:
        body = model_card(config, license=license, description=description)
        ckpt_io.write_atomic(card, lambda f: f.write(body.encode()))
    return directory


def export_checkpoint(
    checkpoint: str | os.PathLike,
    directory: str | os.PathLike,
    *,
    ema: bool = True,
    license: str | None = None,
    description: str | None = None,
) -> Path:
    """The generator of a training checkpoint as a pretrained folder (see
    :func:`save_pretrained`): its EMA weights when the checkpoint has them and ``ema``,
    else the raw generator's. ``config.json`` records the checkpoint's file name, step and
    which weights were exported under ``"source"``. Returns the folder.

    Args:
        checkpoint: a training checkpoint (:func:`checkpoint_generator`).
        directory: the pretrained folder to write (as in :func:`save_pretrained`).
        ema: export the EMA weights when the checkpoint has them.
        license: the model card's license identifier (default: none stated).
        description: a paragraph for the model card.
    """
    generator, source = checkpoint_generator(checkpoint, ema=ema)
    return save_pretrained(
        generator, directory, license=license, description=description, source=source
    )


def model_card(
    config: Mapping[str, Any], *, license: str | None = None, description: str | None = None
) -> str:
    """The ``README.md`` of a pretrained folder: YAML front matter with the fields the hub
    reads (``library_name``, ``pipeline_tag``, ``tags``, ``license`` when given), then what
    the model takes and returns, how to load it, and where it came from.

    Args:
        config: the folder's ``config.json`` content (``model``, ``inputs``, ``output``,
            ``parameters``, ``source``).
        license: a hub license identifier for the front matter; None states none.
        description: the card's first paragraph; None gives a generic sentence.
    """
    model, inputs, output = config["model"], config["inputs"], config.get("output")
    noise = inputs["kind"] == "noise"
    tags = ["medgan", "gan", "medical-imaging", "pytorch", "safetensors", model["name"]]
    front = ["---", "library_name: medgan"]
    if license:
        front.append(f"license: {license}")
    front.append(f"pipeline_tag: {'unconditional-image-generation' if noise else 'image-to-image'}")
    front += ["tags:", *(f"- {json.dumps(t)}" for t in tags), "---"]
    if noise:
        takes = f"noise z `(N, {inputs['latent_dim']})` float32 (standard normal)"
        if inputs.get("num_classes"):
            takes += f" and class labels y `(N,)` int64 in [0, {inputs['num_classes'] - 1}]"
    else:
        takes = "images `(N, C, *spatial)` float32 in [-1, 1]"
    returns = (
        f"images `(N, {', '.join(map(str, output['shape']))})` float32 in [-1, 1]"
        if output
        else "images `(N, C, *spatial)` float32 in [-1, 1]"
    )
    source = config.get("source") or {}
    lines = [
        *front,
        CARD_MARK,
        "",
        f"# {model['name']}",
        "",
        description or "A generator trained with medgan (GANs for medical images).",
        "",
        f"- takes: {takes}",
        f"- returns: {returns}",
        f"- parameters: {config.get('parameters', 0):,}",
        f"- built as: `{model['name']}` with `{json.dumps(model['kwargs'])}`",
    ]
    if source:
        lines.append(f"- exported from: `{json.dumps(source)}`")
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "from medgan.pretrained import from_pretrained",
        "from medgan.generate import generate",
        "",
        'g = from_pretrained("path/to/this/folder")  # or huggingface_hub.snapshot_download(...)',
        "x = generate(g, 16, seed=0)  # (16, C, *spatial) in [-1, 1]"
        if noise
        else "y = g(x)  # x: (N, C, *spatial) in [-1, 1]",
        "```",
        "",
        "Map the [-1, 1] output back to physical units (HU, MR intensities) with the intensity "
        "window used in training (`medgan.data.IntensityWindow.from_unit`).",
        "",
        "## Limitations",
        "",
        "Generated images are synthetic: they are not measurements of any patient and must not "
        "be used for diagnosis. Check a generator for memorised training images "
        "(`medgan audit`) before sharing it.",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- loading


def from_pretrained(directory: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """The generator of a pretrained folder, on ``device``, in eval mode.

    Args:
        directory: a folder written by :func:`save_pretrained` (or downloaded from the
            hub): ``config.json`` and ``model.safetensors``.
        device: where the returned module lives ("cpu", "cuda", ...).

    Raises:
        CheckpointError: naming ``config.json`` or ``model.safetensors``, for the refusals
            listed in the module docstring.
    """
    directory = Path(directory)
    config = read_config(directory)
    weights = directory / WEIGHTS_NAME
    state = read_weights(weights)
    ckpt_io.check_finite(state, weights, "generator")
    model = config["model"]
    net = ckpt_io.build_model(model, state, f"{weights} (with {CONFIG_NAME})", "generator")
    return net.to(device).eval()


def read_config(directory: str | os.PathLike) -> dict[str, Any]:
    """The validated ``config.json`` of the pretrained folder ``directory`` (a
    CheckpointError naming it when the folder or file is missing, not JSON, not ours, or
    from a newer medgan)."""
    directory = Path(directory)
    path = directory / CONFIG_NAME
    if not directory.is_dir():
        raise CheckpointError(
            f"{directory} is not a folder (a pretrained folder holds "
            f"{CONFIG_NAME} and {WEIGHTS_NAME})"
        )
    if not path.is_file():
        raise CheckpointError(
            f"{path} does not exist: {directory} is not a medgan pretrained folder (write one "
            "with medgan.pretrained.save_pretrained or `medgan export CKPT --out DIR`)"
        )
    try:
        config = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path} is not valid JSON ({e})") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a medgan pretrained config (no 'format': '{FORMAT}')")
    version = config.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format_version {version!r} is not one this medgan reads "
            f"(up to {FORMAT_VERSION}); upgrade medgan"
        )
    model = config.get("model")
    if (
        not isinstance(model, dict)
        or not isinstance(model.get("name"), str)
        or not isinstance(model.get("kwargs", {}), dict)
    ):
        raise CheckpointError(
            f"{path}: 'model' must be {{'name': str, 'kwargs': {{...}}}}, got {model!r}"
        )
    model.setdefault("kwargs", {})
    config.setdefault("inputs", {"kind": "noise"})
    return config


def read_weights(path: str | os.PathLike) -> dict[str, Tensor]:
    """The tensors of the ``model.safetensors`` file at ``path`` (name -> CPU tensor, sorted by
    name), verified against the content digest in its metadata when there is one (files
    re-saved by other tools carry none).

    Refused with a CheckpointError naming the file: missing, larger than
    :func:`medgan.limits.max_bytes`, truncated or not safetensors, or damaged (digest
    mismatch)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} does not exist (a pretrained folder needs its weights)")
    size = path.stat().st_size
    if size > limits.max_bytes():
        raise CheckpointError(
            f"{path} holds {size / 2**30:.1f} GiB, above the "
            f"{limits.max_bytes() / 2**30:.1f} GiB limit; if the file is genuine, raise the "
            f"limit with {limits.ENV_VAR} (e.g. {limits.ENV_VAR}=64G)"
        )
    try:
        with safetensors.safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # SafetensorError, OSError, ...: truncated or foreign files
        raise CheckpointError(
            f"{path} cannot be read (truncated or not a safetensors file?): {_first_line(e)}"
        ) from None
    state = dict(sorted(state.items()))
    stored = metadata.get(DIGEST_KEY)
    if stored is None:
        log.info("%s: no %s in its metadata; content not verified", path, DIGEST_KEY)
    elif ckpt_io.content_digest(state) != stored:
        raise CheckpointError(
            f"{path}: checksum mismatch: the file is damaged (its tensors differ from what "
            "was saved); download or export it again"
        )
    return state


def checkpoint_generator(
    path: str | os.PathLike, *, ema: bool = True, device: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """``(generator, source)`` of a training checkpoint: the generator (its EMA weights when
    present and ``ema``) on ``device`` in eval mode, and ``source`` = ``{"checkpoint": file
    name, "step": int | None, "weights": "ema" | "generator"}``.

    Refused with a :class:`~medgan.errors.CheckpointError` naming the file: a damaged file,
    a generator not built by :func:`medgan.models.build` (no spec), a spec that does not fit
    the weights (checked on the meta device first, :func:`medgan.checkpoint.build_model`),
    a model above ``MEDGAN_MAX_BYTES``, and NaN/inf weights.

    Args:
        path: the training checkpoint (``.pt``, :func:`medgan.checkpoint.load`).
        ema: take the EMA weights when the checkpoint has them.
        device: where the generator is put.
    """
    state = ckpt_io.load(path, device)
    entry = state.get("generator")
    if not isinstance(entry, dict) or not isinstance(entry.get("state"), dict):
        raise CheckpointError(f"{path}: the checkpoint holds no generator weights")
    spec = entry.get("spec")
    if spec is None:
        raise CheckpointError(
            f"{path}: the generator was not built with medgan.models.build, so the checkpoint "
            "cannot rebuild it; build the same module yourself and load "
            "state['generator']['state'] into it"
        )
    use_ema = ema and state.get("ema") is not None
    weights = state["ema"] if use_ema else entry["state"]
    what = "EMA generator" if use_ema else "generator"
    ckpt_io.check_finite(weights, path, what)
    g = ckpt_io.build_model(spec, weights, path, what)
    step = state.get("step")
    source = {
        "checkpoint": Path(path).name,
        "step": step if isinstance(step, int) else None,
        "weights": "ema" if use_ema else "generator",
    }
    return g.to(device).eval(), source


# --------------------------------------------------------------------------- deployment


@dataclass(frozen=True)
class Exported:
    """An exported file and how closely it matched PyTorch.

    Attributes:
        path: the file written.
        max_abs_diff: the largest absolute difference of its outputs from PyTorch's on the
            check inputs (in the output's units, [-1, 1] for images); None when not
            checked.
    """

    path: Path
    max_abs_diff: float | None


def example_inputs(
    generator: nn.Module,
    batch_size: int = 2,
    *,
    input_shape: Sequence[int] | None = None,
    seed: int = 0,
) -> tuple[Tensor, ...]:
    """Inputs for one call of ``generator``, on its device: ``(z,)`` with z ``(batch_size,
    latent_dim)`` standard normal, ``(z, y)`` with labels ``(batch_size,)`` int64 cycling
    through the classes for class-conditional generators, or ``(x,)`` with x
    ``(batch_size, *input_shape)`` uniform in [-1, 1] for image-to-image generators
    (``input_shape`` = ``(C, *spatial)``, required for them). ``batch_size``: the batch
    size of the call; ``seed`` seeds a private generator for z and x."""
    rng = torch.Generator().manual_seed(seed)
    device = _device_of(generator)
    latent_dim = getattr(generator, "latent_dim", None)
    if latent_dim is not None:
        z = torch.randn(batch_size, int(latent_dim), generator=rng).to(device)
        num_classes = int(getattr(generator, "num_classes", 0) or 0)
        if num_classes:
            return z, (torch.arange(batch_size) % num_classes).to(device)
        return (z,)
    if input_shape is None:
        raise ConfigError(
            f"{type(generator).__name__} takes images, not noise: give the shape (C, *spatial) "
            "of one input (input_shape=, or --input-shape C,H,W on the command line)"
        )
    shape = (batch_size, *(int(s) for s in input_shape))
    return ((torch.rand(shape, generator=rng) * 2 - 1).to(device),)


def export_onnx(
    generator: nn.Module,
    path: str | os.PathLike,
    *,
    inputs: tuple[Tensor, ...] | None = None,
    check: bool = True,
    atol: float = 1e-4,
) -> Exported:
    """Write ``generator`` (in eval mode) to ``path`` as an ONNX file with a dynamic batch
    axis.

    Inputs are named ``z`` (and ``y``) for noise generators, ``x`` for image-to-image ones;
    the output ``image``. ``inputs`` is an example call (default :func:`example_inputs`).
    With ``check``, onnxruntime runs the model on a different batch size (3) and the result
    must match PyTorch within ``atol`` (absolute, on outputs in [-1, 1]), else nothing is
    written. Needs ``pip install 'medgan[export]'`` (onnx, onnxscript, onnxruntime).
    """
    path = Path(path)
    inputs = inputs if inputs is not None else example_inputs(generator)
    _require("onnx", "onnxscript", *(("onnxruntime",) if check else ()))
    nbytes = sum(t.numel() * t.element_size() for t in generator.state_dict().values())
    if nbytes > ONNX_MAX_BYTES:
        raise ConfigError(
            f"{type(generator).__name__} has {nbytes / 2**30:.1f} GiB of weights; a single ONNX "
            "file holds at most 2 GiB: use export_torchscript or the pretrained folder"
        )
    names = ["z", "y"][: len(inputs)] if hasattr(generator, "latent_dim") else ["x"]
    batch = torch.export.Dim("batch", min=1, max=65536)
    with _eval_mode(generator), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's own deprecation chatter
        try:
            program = torch.onnx.export(
                generator,
                inputs,
                dynamo=True,
                input_names=names,
                output_names=["image"],
                dynamic_shapes=tuple({0: batch} for _ in inputs),
                external_data=False,
                verbose=False,
            )
            blob = program.model_proto.SerializeToString()
        except MedganError:
            raise
        except Exception as e:
            raise ConfigError(
                f"{type(generator).__name__} cannot be exported to ONNX: {_first_line(e)}"
            ) from e
        diff = None
        if check:
            import onnxruntime as ort

            session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])

            def run(*args: Tensor) -> Tensor:
                feeds = {
                    i.name: a.cpu().numpy() for i, a in zip(session.get_inputs(), args, strict=True)
                }
                return torch.from_numpy(session.run(None, feeds)[0])

            diff = _checked(generator, run, inputs, atol, f"ONNX export of {path}")
    ckpt_io.write_atomic(path, lambda f: f.write(blob))
    return Exported(path, diff)


def export_torchscript(
    generator: nn.Module,
    path: str | os.PathLike,
    *,
    inputs: tuple[Tensor, ...] | None = None,
    check: bool = True,
    atol: float = 1e-4,
) -> Exported:
    """Write ``generator`` (in eval mode, traced on ``inputs``, default
    :func:`example_inputs`) to ``path`` as a TorchScript file: ``torch.jit.load(path)(z)``
    runs it
    without medgan. With ``check``, the saved file is reloaded and run on a different batch
    size (3), and must match PyTorch within ``atol``, else nothing is written.

    PyTorch deprecates TorchScript in favour of ``torch.export``; prefer ONNX for new
    deployments."""
    path = Path(path)
    inputs = inputs if inputs is not None else example_inputs(generator)
    with _eval_mode(generator), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
        try:
            traced = torch.jit.trace(generator, inputs, check_trace=False)
        except Exception as e:
            raise ConfigError(
                f"{type(generator).__name__} cannot be traced to TorchScript: {_first_line(e)}"
            ) from e
        buffer = io.BytesIO()
        torch.jit.save(traced, buffer)
        blob = buffer.getvalue()
        diff = None
        if check:
            reloaded = torch.jit.load(io.BytesIO(blob), map_location=_device_of(generator))
            diff = _checked(generator, reloaded, inputs, atol, f"TorchScript export of {path}")
    ckpt_io.write_atomic(path, lambda f: f.write(blob))
    return Exported(path, diff)


# --------------------------------------------------------------------------- internals


def _model_spec(generator: nn.Module, kwargs: Mapping[str, Any] | None) -> tuple[str, dict]:
    """(name, kwargs) that rebuild ``generator``: the registry name for medgan's own
    builders, ``"package.module:Name"`` for anything else."""
    spec = spec_of(generator)
    if spec is not None:
        if kwargs is not None and dict(kwargs) != spec.kwargs:
            raise ConfigError(
                f"this {spec.name!r} was built by medgan.models.build with {spec.kwargs}; "
                "drop kwargs= (they are recorded already)"
            )
        builder, model_kwargs = MODELS.get(spec.name), dict(spec.kwargs)
    else:
        builder, model_kwargs = type(generator), dict(kwargs or {})
    try:
        json.dumps(model_kwargs)
    except TypeError as e:
        raise ConfigError(
            f"kwargs must be JSON-serialisable to go into {CONFIG_NAME}: {e}"
        ) from None
    registered = MODELS.name_of(builder)
    if registered is not None and getattr(builder, "__module__", "").startswith("medgan."):
        return registered, model_kwargs
    return import_path(builder, "model"), model_kwargs


def _check_rebuilds(name: str, kwargs: Mapping[str, Any], state: Mapping[str, Tensor]) -> None:
    """Refuse to save what :func:`from_pretrained` could not rebuild (on the meta device)."""
    builder = MODELS.get(name)
    try:
        with torch.device("meta"):
            skeleton = builder(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{name} cannot be built with kwargs {dict(kwargs)}: {e}") from None
    except Exception as e:  # noqa: BLE001 - cannot check on the meta device: loading will
        log.info("%s not checked on the meta device (%s)", name, e)
        return
    try:
        ckpt_io.check_state_fits(skeleton, state, name, "generator")
    except CheckpointError as e:
        raise ConfigError(
            f"{name}(**{dict(kwargs)}) does not rebuild this generator ({e}); pass the "
            "keyword arguments it was built with: save_pretrained(g, dir, kwargs={...})"
        ) from None


def _cpu_state(generator: nn.Module) -> dict[str, Tensor]:
    state = {}
    for k, v in sorted(generator.state_dict().items()):
        if not isinstance(v, Tensor):
            raise CheckpointError(
                f"{type(generator).__name__}: state entry {k!r} is a {type(v).__name__}, not "
                "a tensor; safetensors stores tensors only"
            )
        state[k] = v.detach().to("cpu", copy=True).contiguous()  # copies: no shared storage
    return state


def _inputs_of(generator: nn.Module) -> dict[str, Any]:
    latent_dim = getattr(generator, "latent_dim", None)
    if latent_dim is None:
        return {"kind": "image"}
    return {
        "kind": "noise",
        "latent_dim": int(latent_dim),
        "num_classes": int(getattr(generator, "num_classes", 0) or 0),
    }


def _output_of(generator: nn.Module) -> dict[str, Any] | None:
    """Shape ``(C, *spatial)`` and dtype of one output of a noise generator (one forward
    pass in eval mode); ``None`` for image-to-image generators (it depends on the input)."""
    if getattr(generator, "latent_dim", None) is None:
        return None
    with _eval_mode(generator), torch.no_grad():
        out = generator(*example_inputs(generator, 1))
    return {
        "shape": list(out.shape[1:]),
        "dtype": str(out.dtype).removeprefix("torch."),
        "range": [-1, 1],
    }


def _checked(
    generator: nn.Module,
    exported: Callable[..., Tensor],
    inputs: tuple[Tensor, ...],
    atol: float,
    what: str,
) -> float:
    """Max |exported - PyTorch| on check inputs of batch 3 (not the export's batch)."""
    shape = tuple(inputs[0].shape[1:]) if not hasattr(generator, "latent_dim") else None
    check = example_inputs(generator, 3, input_shape=shape, seed=1)
    with torch.no_grad():
        expected = generator(*check).float().cpu()
        got = exported(*check).float().cpu()
    if got.shape != expected.shape:
        raise CheckpointError(
            f"{what}: output shape {tuple(got.shape)}, PyTorch's {tuple(expected.shape)}"
        )
    diff = float((got - expected).abs().max())
    if not diff <= atol:
        raise CheckpointError(
            f"{what}: outputs differ from PyTorch's by up to {diff:.3g} (> {atol:g}); nothing "
            "was written"
        )
    return diff


@contextlib.contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    """Eval mode inside, the module's own mode restored afterwards."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def _device_of(module: nn.Module) -> torch.device:
    return next((t.device for t in [*module.parameters(), *module.buffers()]), torch.device("cpu"))


def _require(*packages: str) -> None:
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        raise MedganError(f"exporting needs {', '.join(missing)}: pip install 'medgan[export]'")


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else type(e).__name__
