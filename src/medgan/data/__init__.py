"""Medical image data: intensity maps, datasets, samplers."""

from __future__ import annotations

from medgan.data.intensity import CT_WINDOWS, hu_to_unit, unit_to_hu
from medgan.data.phantoms import CTPhantomSlices, ct_phantom_hu
from medgan.data.sampling import ResumableSampler
from medgan.data.toy import EightGaussians

__all__ = [
    "CT_WINDOWS",
    "CTPhantomSlices",
    "EightGaussians",
    "ResumableSampler",
    "ct_phantom_hu",
    "hu_to_unit",
    "unit_to_hu",
]
