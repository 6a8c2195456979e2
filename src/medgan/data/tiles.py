"""Where tiles start when a side is covered by overlapping (or abutting) tiles: shared by
grid patches (:class:`~medgan.data.datasets.PatchDataset`) and tiled inference
(:func:`medgan.tasks.translation.apply_slices`)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence


def tile_starts(size: int, tile: int, step: int) -> list[int]:
    """Start indices of tiles of side ``tile``, ``step`` apart, covering a side of ``size``
    pixels (``range(size)``); the last tile is aligned to the end (so it may overlap its
    neighbour by more), and a side no longer than one tile has the single start 0.

    >>> tile_starts(10, 4, 4)
    [0, 4, 6]
    """
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile + 1, step))
    if starts[-1] != size - tile:
        starts.append(size - tile)
    return starts


def tile_corners(shape: Sequence[int], tile: int, step: int) -> list[tuple[int, ...]]:
    """Every tile's start corner for an array of ``shape`` (any number of axes), in C order:
    the product of :func:`tile_starts` along each axis, for tiles of side ``tile`` started
    ``step`` apart."""
    return list(itertools.product(*(tile_starts(n, tile, step) for n in shape)))
