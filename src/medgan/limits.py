"""The one size limit that keeps a hostile or mistaken file from exhausting memory.

A header can declare far more voxels than its file holds (a 10 MB ``.nii.gz`` may inflate
to 10 GiB; a NIfTI header may claim 4096^3 voxels). Readers compare the bytes a file
*declares* with :func:`max_bytes` before they allocate anything, and refuse with a
:class:`~medgan.errors.DataError` naming the file.

The limit is ``MEDGAN_MAX_BYTES`` from the environment (an integer, optionally with a
K/M/G/T suffix, powers of 1024), else :data:`DEFAULT_MAX_BYTES`.
"""

from __future__ import annotations

import os

from medgan.errors import ConfigError, DataError

#: 4 GiB: a 1024 x 1024 x 1000 float32 volume fits; a decompression bomb does not.
DEFAULT_MAX_BYTES = 4 * 1024**3
ENV_VAR = "MEDGAN_MAX_BYTES"
_SUFFIX = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}


def max_bytes() -> int:
    """The largest array, in bytes, a reader may allocate for one file."""
    raw = os.environ.get(ENV_VAR, "").strip()
    if not raw:
        return DEFAULT_MAX_BYTES
    scale = _SUFFIX.get(raw[-1].upper(), 1)
    digits = raw[:-1] if raw[-1].upper() in _SUFFIX else raw
    try:
        value = int(float(digits) * scale)
    except ValueError:
        raise ConfigError(
            f"{ENV_VAR}={raw!r} is not a size; use bytes or a number with K/M/G/T (e.g. 8G)"
        ) from None
    if value <= 0:
        raise ConfigError(f"{ENV_VAR}={raw!r} must be positive")
    return value


def check_size(nbytes: int, what: str) -> None:
    """Refuse an allocation of ``nbytes`` (as declared by ``what``, e.g. "scan.nii: header
    shape (4096, 4096, 4096)") above :func:`max_bytes`, before it happens."""
    limit = max_bytes()
    if nbytes > limit:
        raise DataError(
            f"{what} declares {_human(nbytes)} of voxels, above the {_human(limit)} limit; "
            f"if the file is genuine, raise the limit with {ENV_VAR} (e.g. {ENV_VAR}=64G)"
        )


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover
