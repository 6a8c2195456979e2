"""Writing model-range images ([-1, 1]) to PNG files and grids."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import Tensor


def to_display(x: Tensor) -> Tensor:
    """Images ``x`` ``(N, C, *spatial)`` in [-1, 1] -> ``(N, C, H, W)`` float32 on the CPU in
    [0, 1] (values outside [-1, 1] clipped); 3D shows the middle slice along the last axis;
    a channel count other than 1 or 3 shows the first channel."""
    x = x.detach().float().cpu()
    if x.dim() == 5:
        x = x[..., x.shape[-1] // 2]
    if x.dim() != 4:
        raise ValueError(
            f"expected images (N, C, H, W) or volumes (N, C, D, H, W), got {tuple(x.shape)}"
        )
    if x.shape[1] not in (1, 3):
        x = x[:, :1]
    return (x.clamp(-1, 1) + 1) / 2


def save_grid(x: Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """Save images ``x`` ``(N, C, *spatial)`` in [-1, 1] to ``path`` as one PNG grid with
    ``nrow`` images per row (None: a square grid); returns the path. Volumes show their
    middle slice (:func:`to_display`)."""
    from torchvision.utils import save_image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    img = to_display(x)
    save_image(img, path, nrow=nrow or max(1, math.ceil(math.sqrt(len(img)))), padding=2)
    return path


def save_pngs(x: Tensor, folder: str | Path, prefix: str = "sample") -> list[Path]:
    """One 8-bit PNG per image of ``x`` ``(N, C, *spatial)`` in [-1, 1] (middle slice for
    volumes), written to ``folder`` as ``prefix`` + ``_00000.png``, ...; returns the paths."""
    from torchvision.utils import save_image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, img in enumerate(to_display(x)):
        p = folder / f"{prefix}_{i:05d}.png"
        save_image(img, p)
        paths.append(p)
    return paths


def save_side_by_side(
    left: Tensor, right: Tensor, path: str | Path, nrow: int = 6, gap: int = 8
) -> Path:
    """Two grids of images in [-1, 1] side by side in one PNG (e.g. real | generated),
    separated by a white ``gap`` of pixels; 3D volumes show their middle slice.

    Args:
        left: the images of the left grid ``(N, C, *spatial)`` in [-1, 1].
        right: the images of the right grid, same image size.
        path: the PNG to write (parent folders created); returned.
        nrow: images per row of each grid.
        gap: width of the white separator, in pixels.
    """
    from torchvision.utils import make_grid, save_image

    grids = [make_grid(to_display(x), nrow=nrow, padding=2) for x in (left, right)]
    h = max(g.shape[1] for g in grids)
    grids = [torch.nn.functional.pad(g, (0, 0, 0, h - g.shape[1])) for g in grids]
    sep = torch.ones(grids[0].shape[0], h, gap)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(torch.cat([grids[0], sep, grids[1]], dim=2), path)
    return path
