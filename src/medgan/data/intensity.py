"""Intensity maps between physical units (HU for CT) and the model range [-1, 1].

CT window (level L, width W), as on a radiology workstation: HU values in
[L - W/2, L + W/2] map linearly onto [-1, 1], values outside are clipped:

    u = clip(2 * (HU - L) / W, -1, 1),     HU = L + u * W / 2   (inverse, inside the window)
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import torch

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


def resolve_window(window: str | tuple[float, float]) -> tuple[float, float]:
    """A window by name (see ``CT_WINDOWS``) or an explicit ``(level, width)`` in HU."""
    if isinstance(window, str):
        if window not in CT_WINDOWS:
            raise ConfigError(f"unknown CT window {window!r}; known: {sorted(CT_WINDOWS)}")
        return CT_WINDOWS[window]
    level, width = (float(v) for v in window)
    if not width > 0:
        raise ConfigError(f"window width must be > 0 HU, got {width}")
    return level, width


def hu_to_unit(hu: ArrayT, window: str | tuple[float, float] = "full") -> ArrayT:
    """HU -> [-1, 1] through a CT window (values outside the window are clipped)."""
    level, width = resolve_window(window)
    u = (hu - level) * (2.0 / width)
    return u.clip(-1.0, 1.0)


def unit_to_hu(u: ArrayT, window: str | tuple[float, float] = "full") -> ArrayT:
    """[-1, 1] -> HU, the inverse of :func:`hu_to_unit` inside the window."""
    level, width = resolve_window(window)
    return u * (width / 2.0) + level


class IntensityWindow:
    """An invertible linear map of the physical range ``[lo, hi]`` onto [-1, 1]:

        u = clip(2 * (v - lo) / (hi - lo) - 1, -1, 1),    v = lo + (u + 1) / 2 * (hi - lo)

    ``IntensityWindow.ct("lung")`` is the CT window (level, width) as ``[L - W/2, L + W/2]``
    in HU; ``IntensityWindow.percentile(array)`` uses NaN-aware percentiles (MR).
    """

    def __init__(self, lo: float, hi: float, unit: str = "") -> None:
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            raise ConfigError(f"intensity window needs finite hi > lo, got [{lo}, {hi}]")
        self.lo, self.hi, self.unit = float(lo), float(hi), unit

    @classmethod
    def ct(cls, window: str | tuple[float, float] = "full") -> IntensityWindow:
        level, width = resolve_window(window)
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

    def to_unit(self, v: ArrayT) -> ArrayT:
        u = (v - self.lo) * (2.0 / (self.hi - self.lo)) - 1.0
        return u.clip(-1.0, 1.0)

    def from_unit(self, u: ArrayT) -> ArrayT:
        return (u + 1.0) * ((self.hi - self.lo) / 2.0) + self.lo

    def __repr__(self) -> str:
        return f"IntensityWindow([{self.lo:g}, {self.hi:g}] {self.unit} -> [-1, 1])"
