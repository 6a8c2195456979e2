"""Intensity maps between physical units (HU for CT, arbitrary units for MR) and the model
range [-1, 1]: one class, :class:`IntensityWindow`.

A window ``[lo, hi]`` maps linearly onto [-1, 1] around its centre ``c = (lo + hi) / 2``;
values outside are clipped:

    u = clip((v - c) * 2 / (hi - lo), -1, 1),     v = c + u * (hi - lo) / 2   (inverse)

A CT window (level L, width W), as on a radiology workstation, is ``[L - W/2, L + W/2]``
(centre L): HU values in it map onto [-1, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypeVar

import numpy as np
import torch

from medgan.data.volume import Volume
from medgan.errors import ConfigError

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)

#: Common CT windows as (level, width) in HU.
CT_WINDOWS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "soft_tissue": (40.0, 400.0),
    "brain": (40.0, 80.0),
    "bone": (400.0, 1800.0),
    "liver": (60.0, 160.0),
    "full": (0.0, 2000.0),  # -1000 HU (air) .. +1000 HU (dense bone)
}


class IntensityWindow:
    """An invertible linear map of the physical range ``[lo, hi]`` onto [-1, 1] (see the
    module docstring for the formula).

    Args:
        lo, hi: the physical values (HU, MR units, ...) that map to -1 and +1; finite,
            ``hi > lo``.
        unit: the physical unit, for messages ("HU"; "" when unknown).

    ``IntensityWindow.ct("lung")`` is a CT window (level, width) as ``[L - W/2, L + W/2]``
    in HU; ``IntensityWindow.percentile(array)`` uses NaN-aware percentiles (MR);
    :meth:`resolve` turns any window specification into a window.
    """

    def __init__(self, lo: float, hi: float, unit: str = "") -> None:
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            raise ConfigError(f"intensity window needs finite hi > lo, got [{lo}, {hi}]")
        self.lo, self.hi, self.unit = float(lo), float(hi), unit

    @classmethod
    def ct(cls, window: str | tuple[float, float] = "full") -> IntensityWindow:
        """A CT ``window`` by name (see ``CT_WINDOWS``) or as ``(level, width)`` in HU (width
        > 0): the range ``[level - width/2, level + width/2]`` HU."""
        if isinstance(window, str):
            if window not in CT_WINDOWS:
                raise ConfigError(f"unknown CT window {window!r}; known: {sorted(CT_WINDOWS)}")
            level, width = CT_WINDOWS[window]
        else:
            level, width = (float(v) for v in window)
        if not width > 0:
            raise ConfigError(f"window width must be > 0 HU, got {width}")
        return cls(level - width / 2, level + width / 2, "HU")

    @classmethod
    def percentile(
        cls,
        array: np.ndarray,
        lower: float = 0.5,
        upper: float = 99.5,
        mask: np.ndarray | None = None,
    ) -> IntensityWindow:
        """Window between the ``lower`` and ``upper`` percentiles of ``array`` (inside ``mask``),
        ignoring NaN; typical for MR, whose units are arbitrary."""
        values = np.asarray(array, dtype=np.float64)
        if mask is not None:
            values = values[np.asarray(mask, bool)]
        lo, hi = np.nanpercentile(values, [lower, upper])
        if not np.isfinite(lo) or not hi > lo:
            raise ConfigError(
                f"percentile window is empty ([{lo}, {hi}]): constant or all-NaN image?"
            )
        return cls(float(lo), float(hi))

    @classmethod
    def resolve(cls, spec: WindowSpec, volume: Volume, what: str = "window") -> IntensityWindow:
        """The window for ``volume`` that ``spec`` describes.

        Args:
            spec: an :class:`IntensityWindow` (used as it is); a CT window name of
                ``CT_WINDOWS`` ("full", "lung", ...); ``"lo,hi"`` (a string, as on the
                command line) or ``(lo, hi)``: the physical range itself; a function
                ``volume -> IntensityWindow``; or None: the "full" CT window for HU data
                (``volume.meta["unit"] == "HU"``), else the 0.5-99.5 percentiles of the
                volume (MR).
            volume: the :class:`~medgan.data.volume.Volume` the window is for.
            what: the parameter's name in error messages (e.g. "--window").

        Raises:
            ConfigError: an unknown window name or a malformed range, naming ``what``.
        """
        if isinstance(spec, IntensityWindow):
            return spec
        if isinstance(spec, str):
            lo, comma, hi = spec.partition(",")
            if not comma:
                return cls.ct(spec)
            try:
                return cls(float(lo), float(hi))
            except ValueError as e:
                if isinstance(e, ConfigError):
                    raise
                raise ConfigError(
                    f"{what} {spec!r}: expected a CT window name or 'lo,hi'"
                ) from None
        if callable(spec):
            return spec(volume)
        if spec is None:
            if volume.meta.get("unit") == "HU":
                return cls.ct("full")
            return cls.percentile(volume.array)
        try:
            lo, hi = (float(v) for v in spec)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{what} {spec!r}: expected an IntensityWindow, a CT window name, 'lo,hi', "
                "(lo, hi), a function of the volume, or None"
            ) from None
        return cls(lo, hi)

    @property
    def centre(self) -> float:
        """``(lo + hi) / 2``, which maps to 0."""
        return (self.lo + self.hi) / 2.0

    def to_unit(self, v: ArrayT) -> ArrayT:
        """Physical values ``v`` (any shape; numpy array or tensor) -> [-1, 1], clipped."""
        u = (v - self.centre) * (2.0 / (self.hi - self.lo))
        return u.clip(-1.0, 1.0)

    def from_unit(self, u: ArrayT) -> ArrayT:
        """Values ``u`` in [-1, 1] (any shape; numpy array or tensor) -> physical values, the
        inverse of :meth:`to_unit` inside the window (not clipped)."""
        return u * ((self.hi - self.lo) / 2.0) + self.centre

    def __repr__(self) -> str:
        return f"IntensityWindow([{self.lo:g}, {self.hi:g}] {self.unit} -> [-1, 1])"


#: What :meth:`IntensityWindow.resolve` accepts (see there).
WindowSpec = IntensityWindow | str | Sequence[float] | Callable[[Volume], IntensityWindow] | None
