"""Deprecated alias of :mod:`medgan.generate` (renamed so that it is not confused with
:mod:`medgan.data.sampling`, which orders the training data). Import from
``medgan.generate``; this module will be removed in a future release."""

from __future__ import annotations

import warnings

from medgan.generate import generate, load_generator

warnings.warn(
    "medgan.sampling is renamed medgan.generate; import load_generator and generate from "
    "medgan.generate",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = ["generate", "load_generator"]
