"""Full-reference image quality for 2D images ``(N, C, H, W)`` and 3D volumes
``(N, C, D, H, W)``, with an explicit ``data_range`` (the span of valid values: 2.0 for
model-range [-1, 1] images, e.g. 2000.0 for HU in [-1000, 1000]).

- PSNR = 10 log10(data_range^2 / MSE), per image, averaged.
- SSIM (Wang et al. 2004): 11-tap Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03,
  population (co)variances, averaged over the valid (unpadded) region, as scikit-image's
  ``structural_similarity(gaussian_weights=True, use_sample_covariance=False)``.
- MS-SSIM (Wang et al. 2003): 5 scales with weights (0.0448, 0.2856, 0.3001, 0.2363,
  0.1333), 2x average-pool between scales; contrast-structure terms at the first 4
  scales, full SSIM at the last; negative terms clipped at 0 (so the product is defined).
- Dice = 2|A∩B|/(|A|+|B|), IoU = |A∩B|/|A∪B| per class for integer label maps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def psnr_db(rms_error: float, data_range: float) -> float:
    """PSNR in dB of a root-mean-square error: 20 log10(data_range / RMSE); a large finite
    999.0 for RMSE 0 (identical images), so reports stay valid JSON.

    Args:
        rms_error: the root-mean-square error, in the images' units (>= 0).
        data_range: the span of valid values in the same units (2.0 for [-1, 1]).
    """
    return 20.0 * math.log10(data_range / rms_error) if rms_error > 0 else 999.0


def psnr(x: Tensor, y: Tensor, data_range: float) -> Tensor:
    """Mean PSNR in dB over the batch (infinite for identical images), a float64 scalar.

    Args:
        x: images ``(N, ...)``, any units.
        y: reference images, same shape and units.
        data_range: the span of valid values in those units (2.0 for [-1, 1]).
    """
    mse = (x.double() - y.double()).pow(2).flatten(1).mean(1)
    return (10 * torch.log10(data_range**2 / mse)).mean()


def _gaussian_window(spatial_dims: int, size: int = 11, sigma: float = 1.5) -> Tensor:
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    g = g / g.sum()
    w = g
    for _ in range(spatial_dims - 1):
        w = w[..., None] * g
    return w


def _filter(x: Tensor, window: Tensor) -> Tensor:
    c = x.shape[1]
    conv = F.conv2d if x.dim() == 4 else F.conv3d
    w = window.to(x)[None, None].expand(c, 1, *window.shape)
    return conv(x, w, groups=c)


def _ssim_terms(x: Tensor, y: Tensor, data_range: float, window: Tensor) -> tuple[Tensor, Tensor]:
    """(SSIM map, contrast-structure map) over the valid region, per image and channel."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_x, mu_y = _filter(x, window), _filter(y, window)
    sxx = _filter(x * x, window) - mu_x**2
    syy = _filter(y * y, window) - mu_y**2
    sxy = _filter(x * y, window) - mu_x * mu_y
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    lum = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    return lum * cs, cs


def _check(x: Tensor, y: Tensor) -> int:
    if x.shape != y.shape or x.dim() not in (4, 5):
        raise ValueError(
            f"expected equal shapes (N, C, H, W) or (N, C, D, H, W), got {x.shape}, {y.shape}"
        )
    return x.dim() - 2


def ssim(x: Tensor, y: Tensor, data_range: float, win_size: int = 11, sigma: float = 1.5) -> Tensor:
    """Mean SSIM over the batch (and channels), a float64 scalar in [-1, 1].

    Args:
        x: images ``(N, C, H, W)`` or volumes ``(N, C, D, H, W)``, any units.
        y: reference images, same shape and units.
        data_range: the span of valid values in those units (2.0 for [-1, 1]); sets the
            stabilising constants ``(0.01 * data_range)**2`` and ``(0.03 * data_range)**2``.
        win_size: side of the Gaussian window, in pixels; every side must be at least this.
        sigma: the window's standard deviation, in pixels.
    """
    d = _check(x, y)
    if min(x.shape[2:]) < win_size:
        raise ValueError(
            f"images of size {tuple(x.shape[2:])} are smaller than the {win_size}-pixel window"
        )
    s, _ = _ssim_terms(x.double(), y.double(), data_range, _gaussian_window(d, win_size, sigma))
    return s.flatten(2).mean(-1).mean()


def ms_ssim(
    x: Tensor, y: Tensor, data_range: float, weights: tuple[float, ...] = MS_SSIM_WEIGHTS
) -> Tensor:
    """Mean MS-SSIM over the batch, a float64 scalar in [0, 1].

    Args:
        x: images ``(N, C, H, W)`` or volumes ``(N, C, D, H, W)``, any units.
        y: reference images, same shape and units.
        data_range: the span of valid values in those units (2.0 for [-1, 1]).
        weights: the exponent of each scale, finest first; sides must stay >= 11 after
            ``len(weights) - 1`` halvings (176 pixels for the default 5 scales).
    """
    d = _check(x, y)
    need = 11 * 2 ** (len(weights) - 1)
    if min(x.shape[2:]) < need:
        raise ValueError(
            f"MS-SSIM with {len(weights)} scales needs sides >= {need}, got {tuple(x.shape[2:])}"
        )
    window = _gaussian_window(d)
    x, y = x.double(), y.double()
    pool = F.avg_pool2d if d == 2 else F.avg_pool3d
    w = torch.tensor(weights, dtype=torch.float64)
    values = []
    for i in range(len(weights)):
        s, cs = _ssim_terms(x, y, data_range, window)
        term = s if i == len(weights) - 1 else cs
        values.append(term.flatten(2).mean(-1).clamp_min(0))  # (N, C)
        if i < len(weights) - 1:
            x, y = pool(x, 2), pool(y, 2)
    stacked = torch.stack(values, dim=0)  # (S, N, C)
    return (stacked ** w[:, None, None]).prod(0).mean()


def dice(pred: Tensor, target: Tensor, num_classes: int, ignore_background: bool = True) -> Tensor:
    """Dice per class, ``2 |P_k ∩ T_k| / (|P_k| + |T_k|)`` for the voxel sets P_k and T_k
    of class k in ``pred`` and ``target``, float64 in [0, 1] (NaN where both maps lack
    the class).

    Args:
        pred: integer label map, any shape.
        target: the reference label map, same shape.
        num_classes: K; classes are 0..K-1.
        ignore_background: leave out class 0: the result is ``(K - 1,)`` for classes
            1..K-1, else ``(K,)``.
    """
    return _overlap(pred, target, num_classes, ignore_background, iou=False)


def iou(pred: Tensor, target: Tensor, num_classes: int, ignore_background: bool = True) -> Tensor:
    """Intersection over union per class, ``|P_k ∩ T_k| / |P_k ∪ T_k|`` (= Dice / (2 -
    Dice)), float64 in [0, 1] (NaN where both maps lack the class).

    Args:
        pred: integer label map, any shape.
        target: the reference label map, same shape.
        num_classes: K; classes are 0..K-1.
        ignore_background: leave out class 0: the result is ``(K - 1,)`` for classes
            1..K-1, else ``(K,)``.
    """
    return _overlap(pred, target, num_classes, ignore_background, iou=True)


def _overlap(pred: Tensor, target: Tensor, k: int, ignore_background: bool, iou: bool) -> Tensor:
    if pred.shape != target.shape:
        raise ValueError(
            f"label maps differ in shape: {tuple(pred.shape)} vs {tuple(target.shape)}"
        )
    out = []
    for c in range(1 if ignore_background else 0, k):
        a, b = pred == c, target == c
        inter = (a & b).sum().double()
        total = a.sum().double() + b.sum().double()
        denom = total - inter if iou else total / 2
        out.append(inter / denom if denom > 0 else torch.tensor(float("nan"), dtype=torch.float64))
    return torch.stack(out)
