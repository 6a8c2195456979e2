"""The one exception hierarchy of medgan.

Every error a user can trigger derives from :class:`MedganError`, so a script can catch
all of them at once; the subclasses say which layer refused. Messages name the file or
parameter at fault and say what to do about it.
"""

from __future__ import annotations


class MedganError(Exception):
    """Base class of every error medgan raises on purpose."""


class ConfigError(MedganError, ValueError):
    """A configuration value, model name or keyword argument is invalid."""


class DataError(MedganError):
    """An input file or folder cannot be turned into images with correct geometry."""


class CheckpointError(MedganError):
    """A checkpoint cannot be written, read, or does not match the models it is loaded into."""


class TrainingDivergedError(MedganError, FloatingPointError):
    """A loss became NaN/infinite or exploded (or a weight did); training stopped before
    any weights were saved from that state."""


class GeometryError(DataError):
    """Slices that do not form one regular volume (mixed orientation, gaps, duplicates)."""


class MissingDecoderError(DataError):
    """Compressed pixel data whose decoder plug-in is not installed."""
