"""Sliced Wasserstein distance between image sets on Laplacian-pyramid patches
(Karras, Aila, Laine & Lehtinen 2018, "Progressive Growing of GANs", sec. 5 and app. D).

No learned features: it compares the distributions of local 7x7 patches at every scale,
so it sees texture and noise that a CNN feature score may not. Per level of the Laplacian
pyramid (16x16 up to the full size), ``patches_per_image`` random 7x7 patches of every
image are flattened to descriptors; each descriptor coordinate is normalised by the mean
and standard deviation of its own set (as in the reference); the distance is

    SWD = E_theta[ W_1(<theta, real>, <theta, fake>) ],  theta ~ uniform on the sphere,

estimated with ``n_projections`` random directions: project both sets, sort, and average
the absolute differences of the sorted values (equal set sizes). Reported per level and as
the mean over levels, multiplied by 1e3 as in the paper's tables.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur(x: Tensor) -> Tensor:
    """Separable 5-tap binomial low-pass, reflect-padded. ``(N, C, H, W)``."""
    c = x.shape[1]
    k = _BINOMIAL.to(x)
    x = F.pad(x, (2, 2, 2, 2), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, 5).expand(c, 1, 1, 5), groups=c)
    return F.conv2d(x, k.view(1, 1, 5, 1).expand(c, 1, 5, 1), groups=c)


def laplacian_pyramid(x: Tensor, min_size: int = 16) -> list[Tensor]:
    """Laplacian pyramid of images ``x`` ``(N, C, H, W)``: levels finest first, a band-pass
    image per halving, then the low-pass residual once the width is at most ``min_size``
    pixels (exactly ``min_size`` for square images of ``min_size`` times a power of two)."""
    levels = []
    while x.shape[-1] > min_size:
        low = _blur(x)[..., ::2, ::2]
        up = F.interpolate(low, scale_factor=2.0, mode="nearest")
        levels.append(x - _blur(up))
        x = low
    levels.append(x)
    return levels


def _descriptors(level: Tensor, per_image: int, size: int, rng: torch.Generator) -> Tensor:
    n, c, h, w = level.shape
    ys = torch.randint(0, h - size + 1, (n, per_image), generator=rng)
    xs = torch.randint(0, w - size + 1, (n, per_image), generator=rng)
    offs = torch.arange(size)
    rows = (ys[..., None] + offs)[..., :, None]  # (n, p, size, 1)
    cols = (xs[..., None] + offs)[..., None, :]  # (n, p, 1, size)
    idx_n = torch.arange(n)[:, None, None, None]
    patches = level.permute(0, 2, 3, 1)[idx_n, rows, cols]  # (n, p, size, size, c)
    return patches.reshape(n * per_image, -1)


def _normalise(desc: Tensor) -> Tensor:
    return (desc - desc.mean(0)) / desc.std(0).clamp_min(1e-8)


def sliced_wasserstein_1d(a: Tensor, b: Tensor, n_projections: int, rng: torch.Generator) -> float:
    """Mean over ``n_projections`` random unit directions (drawn from ``rng``) of the 1D
    Wasserstein-1 distance between the projections of the point sets ``a`` and ``b``
    ``(M, D)`` (equal M)."""
    dirs = torch.randn(a.shape[1], n_projections, generator=rng, dtype=torch.float64)
    dirs /= dirs.norm(dim=0, keepdim=True)
    pa = (a.double() @ dirs).sort(dim=0).values
    pb = (b.double() @ dirs).sort(dim=0).values
    return float((pa - pb).abs().mean())


@torch.no_grad()
def sliced_wasserstein(
    real: Tensor,
    fake: Tensor,
    patches_per_image: int = 128,
    patch_size: int = 7,
    n_projections: int = 512,
    min_size: int = 16,
    seed: int = 0,
) -> dict[str, float]:
    """SWD x 1e3 between images ``real`` and ``fake`` ``(N, C, H, W)`` in [-1, 1].

    Returns ``{"swd": mean over levels, "swd_<size>": per level}``. ``real`` and ``fake``
    may differ in N; the larger set is subsampled (seeded) to the smaller one's size.

    Args:
        real: real images ``(N, C, H, W)`` in [-1, 1] (the paper's: square, a side of
            ``min_size`` times a power of two).
        fake: generated images ``(M, C, H, W)``, the same size.
        patches_per_image: random patches drawn from every image at every level.
        patch_size: side of the patches, in pixels (7 in the paper).
        n_projections: random directions of the sliced distance, per level.
        min_size: side of the coarsest level, in pixels (16 in the paper).
        seed: seeds the subsampling, the patches and the directions.
    """
    if real.dim() != 4 or fake.dim() != 4 or real.shape[1:] != fake.shape[1:]:
        raise ValueError(
            f"SWD needs two sets of 2D images of one shape, got {tuple(real.shape)} and "
            f"{tuple(fake.shape)}"
        )
    rng = torch.Generator().manual_seed(seed)
    n = min(len(real), len(fake))
    real = real[torch.randperm(len(real), generator=rng)[:n]].float().cpu()
    fake = fake[torch.randperm(len(fake), generator=rng)[:n]].float().cpu()
    out: dict[str, float] = {}
    for lr, lf in zip(
        laplacian_pyramid(real, min_size), laplacian_pyramid(fake, min_size), strict=True
    ):
        da = _normalise(_descriptors(lr, patches_per_image, patch_size, rng))
        db = _normalise(_descriptors(lf, patches_per_image, patch_size, rng))
        out[f"swd_{lr.shape[-1]}"] = 1e3 * sliced_wasserstein_1d(da, db, n_projections, rng)
    out["swd"] = sum(out.values()) / len(out)
    return out
