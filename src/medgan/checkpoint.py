"""Atomic, checksummed checkpoint files, the random state that makes resumption
bit-exact, and the checks that a checkpoint fits the model it is loaded into.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so it loads
with ``torch.load(weights_only=True)`` (no pickled code runs). It is written to a temporary
file in the same folder, flushed, fsync'ed, and renamed over the target: a crash at any
moment leaves either the old file or the new one, never a half-written file.

Since format 2 the dict also holds ``"sha256"``: a digest of its content (every key, number,
string, and each tensor's dtype, shape and bytes; see :func:`content_digest`). :func:`load`
recomputes it, so a flipped bit anywhere that changes what is loaded is refused instead of
resuming with silently changed weights. Format-1 files (no digest) still load.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import struct
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from torch import nn

from medgan import limits
from medgan.errors import CheckpointError, MedganError
from medgan.registry import MODELS

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
#: the first format whose files carry a ``"sha256"`` content digest
CHECKSUM_VERSION = 2


def content_digest(obj: Any) -> str:
    """SHA-256 (hex) of a checkpoint's content, independent of how torch serialises it.

    Walks ``obj`` in order: mappings (type, keys and values in insertion order), lists and
    tuples (type, items), floats by their 8 IEEE-754 bytes, other scalars by ``repr``, and
    tensors by dtype, shape and their bytes in row-major order (on the CPU). Equal content
    gives an equal digest wherever the tensors live (CPU or GPU, any strides).
    """
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()


def _feed(h: Any, x: Any) -> None:
    def tag(kind: str, text: str = "") -> None:
        b = text.encode()
        h.update(f"{kind}{len(b)}:".encode() + b)

    if isinstance(x, torch.Tensor):
        t = x.detach()
        tag("T", f"{t.dtype}{tuple(t.shape)}")
        if t.numel():
            h.update(t.cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    elif isinstance(x, Mapping):
        tag("M", f"{type(x).__name__}{len(x)}")
        for k, v in x.items():
            _feed(h, k)
            _feed(h, v)
    elif isinstance(x, list | tuple):
        tag("L", f"{type(x).__name__}{len(x)}")
        for v in x:
            _feed(h, v)
    elif isinstance(x, float):
        tag("F")
        h.update(struct.pack("<d", x))
    else:  # None, bool, int, str, bytes, torch.dtype, torch.device ...
        tag("S", f"{type(x).__name__}:{x!r}")


def save_atomic(obj: dict[str, Any], path: str | os.PathLike) -> Path:
    """Write ``obj`` plus its ``"sha256"`` :func:`content_digest` with ``torch.save`` to
    ``path`` atomically (see :func:`write_atomic`)."""
    body = {k: v for k, v in obj.items() if k != "sha256"}
    body["sha256"] = content_digest(body)
    return write_atomic(path, lambda f: torch.save(body, f))


def write_atomic(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> Path:
    """Replace ``path`` atomically with what ``write`` writes (``write(f)``, ``f`` a binary
    file open for writing); returns ``path`` as a Path.

    ``f`` is a temporary file ``.{name}.{pid}.XXXXXXXX.tmp`` beside ``path``; it is
    flushed, fsync'ed and renamed over ``path``, so a crash at any moment leaves the old
    file or the new one. A temporary file left by a killed writer is recognised by its
    name and removed by :func:`medgan.rundir.remove_orphans`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:  # pragma: no cover - some filesystems refuse directory fsync
        pass
    return path


def link_atomic(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Make ``dst`` a hard link to the finished file ``src`` (a copy where links are not
    supported), replacing ``dst`` atomically; deleting ``src`` later leaves ``dst`` intact."""
    src, dst = Path(src), Path(dst)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.link")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        import shutil

        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)
    return dst


def load(path: str | os.PathLike, map_location: Any = "cpu") -> dict[str, Any]:
    """Load a medgan checkpoint safely (weights only) and verify its content digest.

    Returns the dict that was saved (without the ``"sha256"`` entry). A missing, truncated,
    foreign or damaged file (digest mismatch) raises a CheckpointError naming it.

    Args:
        path: the checkpoint file.
        map_location: where tensors are loaded (``torch.load``'s ``map_location``: "cpu",
            "cuda", a device or a mapping function).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch raises RuntimeError/UnpicklingError/EOFError on damage
        raise CheckpointError(
            f"checkpoint {path} cannot be read (truncated or not a torch file?): {e}"
        ) from e
    if not isinstance(ckpt, dict) or ckpt.get("format") != "medgan":
        raise CheckpointError(f"{path} is not a medgan checkpoint (no 'format': 'medgan' entry)")
    version = ckpt.get("version", 0)
    if not isinstance(version, int):
        raise CheckpointError(f"{path}: the format version {version!r} is not a number")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path} was written by a newer medgan (format {version}); upgrade medgan"
        )
    stored = ckpt.pop("sha256", None)
    if stored is None:
        if version >= CHECKSUM_VERSION:
            raise CheckpointError(
                f"checkpoint {path}: a format-{version} file without its 'sha256' entry: the "
                "file is damaged; resume from an earlier checkpoint"
            )
        log.info("%s: format-%d checkpoint without checksum, not verified", path, version)
    elif content_digest(ckpt) != stored:
        raise CheckpointError(
            f"checkpoint {path}: checksum mismatch: the file is damaged (its content differs "
            "from what was saved); resume from an earlier checkpoint"
        )
    return ckpt


def check_state_fits(
    net: nn.Module, state: Mapping[str, Any], source: str | os.PathLike, what: str
) -> None:
    """Refuse ``state`` unless it has exactly the keys of ``net.state_dict()`` with the
    same shapes (``net`` may live on the meta device); the error (a CheckpointError) names
    ``source`` (the file or folder), ``what`` (which network, e.g. "generator") and the
    first key that differs."""
    expected = net.state_dict()
    ours = sum(v.numel() for v in expected.values() if isinstance(v, torch.Tensor))
    theirs = sum(v.numel() for v in state.values() if isinstance(v, torch.Tensor))
    counts = f"the model has {ours:,} weight elements, the checkpoint {theirs:,}"
    for k, v in expected.items():
        if k not in state:
            raise CheckpointError(f"{source}: the {what} weights lack {k!r} ({counts})")
        got = state[k]
        if isinstance(v, torch.Tensor) and (
            not isinstance(got, torch.Tensor) or got.shape != v.shape
        ):
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            raise CheckpointError(
                f"{source}: the {what} weight {k!r} has shape {shape} in the checkpoint but "
                f"{tuple(v.shape)} in the model ({counts})"
            )
    extra = [k for k in state if k not in expected]
    if extra:
        raise CheckpointError(
            f"{source}: the {what} weights hold {extra[0]!r}, which the model has not "
            f"({len(extra)} unexpected keys; {counts})"
        )


def check_finite(state: Mapping[str, Any], source: str | os.PathLike, what: str) -> None:
    """Refuse weights ``state`` (a state dict) with a NaN or infinite value: a
    CheckpointError naming ``source`` (the file), ``what`` (which network) and the first
    such tensor."""
    for k, v in state.items():
        if isinstance(v, torch.Tensor) and v.is_floating_point() and not torch.isfinite(v).all():
            raise CheckpointError(
                f"{source}: the {what} weight {k!r} holds NaN/inf values; the run diverged "
                "before this checkpoint was written; use an earlier one"
            )


def build_model(
    spec: Mapping[str, Any],
    state: Mapping[str, Any],
    source: str | os.PathLike,
    what: str,
) -> nn.Module:
    """The registered model ``spec`` (``{"name", "kwargs"}``) with ``state`` loaded, on the
    CPU; ``state`` must fit it exactly.

    The model is first built on the meta device (no memory): a spec whose weights differ
    from ``state`` in any key or shape, or whose parameters and buffers would take more
    than :func:`medgan.limits.max_bytes` (``MEDGAN_MAX_BYTES``), is refused before anything
    is allocated, so a small file cannot make us allocate gigabytes.

    Args:
        spec: ``{"name": registered model name, "kwargs": {...}}``.
        state: the model's state dict.
        source: the file the spec and weights come from, named in errors.
        what: which network this is (e.g. "generator"), named in errors.

    Raises:
        CheckpointError: a malformed spec, an unknown model, weights that do not fit, or
            a model over the memory limit.
    """
    name, kwargs = spec.get("name"), spec.get("kwargs") or {}
    if not isinstance(name, str) or not isinstance(kwargs, Mapping):
        raise CheckpointError(f"{source}: the {what} spec {dict(spec)!r} is malformed")
    try:
        with torch.device("meta"):
            skeleton = MODELS.build(name, **kwargs)
    except MedganError as e:
        raise CheckpointError(f"{source}: the {what} spec cannot be built: {e}") from e
    except Exception as e:  # a custom model that cannot live on the meta device
        log.warning("%s: %s %r not checked on the meta device (%s)", source, what, name, e)
        skeleton = None
    if skeleton is not None:
        check_state_fits(skeleton, state, source, what)
        tensors = [*skeleton.parameters(), *skeleton.buffers()]
        nbytes = sum(t.numel() * t.element_size() for t in tensors)
        if nbytes > limits.max_bytes():
            raise CheckpointError(
                f"{source}: the {what} {name!r} would take {nbytes / 2**30:.1f} GiB, above "
                f"the {limits.max_bytes() / 2**30:.1f} GiB limit; if the checkpoint is "
                f"genuine, raise the limit with {limits.ENV_VAR} (e.g. {limits.ENV_VAR}=64G)"
            )
    net = MODELS.build(name, **kwargs)
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"{source}: the {what} weights do not fit {name!r}: {e}") from e
    return net


def rng_state(generators: dict[str, torch.Generator] | None = None) -> dict[str, Any]:
    """Capture every random state training touches (torch CPU/CUDA, numpy, python, ours):
    the global ones, and those of ``generators`` (name -> private ``torch.Generator``, e.g.
    the trainer's noise generator) when given."""
    np_state = np.random.get_state()  # noqa: NPY002 (the legacy global state is what we save)
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": np_state[0],
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": _to_lists(random.getstate()),
        "generators": {k: g.get_state() for k, g in (generators or {}).items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(
    state: dict[str, Any], generators: dict[str, torch.Generator] | None = None
) -> None:
    """Restore what :func:`rng_state` captured.

    Random states are byte tensors that the setters want on the CPU, wherever the
    checkpoint was mapped to (``load(path, "cuda")`` moves them to the GPU).

    Args:
        state: :func:`rng_state`'s output.
        generators: name -> ``torch.Generator`` to restore in place; a name missing from
            ``state`` leaves that generator as it is.
    """
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (
            n["name"],
            n["keys"].numpy().astype(np.uint32),
            n["pos"],
            n["has_gauss"],
            n["cached_gaussian"],
        )
    )
    random.setstate(_to_tuples(state["python"]))
    for k, g in (generators or {}).items():
        if k in state["generators"]:
            g.set_state(state["generators"][k].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def _to_lists(x: Any) -> Any:
    return [_to_lists(v) for v in x] if isinstance(x, tuple | list) else x


def _to_tuples(x: Any) -> Any:
    return tuple(_to_tuples(v) for v in x) if isinstance(x, list) else x
