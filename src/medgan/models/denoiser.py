"""A noise-level-conditioned residual denoiser for magnitude (MR) images.

Input ``(N, 2, H, W)``: channel 0 the noisy image x in [-1, 1] units (0 .. the image's
99.5th percentile mapped to -1 .. 1; brighter voxels go above 1), channel 1 a constant map
of the noise standard deviation sigma in the same units (``2 * sigma / scale``). Output
``(N, 1, H, W)`` in the same units:

    y = x - sigma * g([x, sigma / sigma_ref])

the :class:`~medgan.models.conditioned.LevelConditionedResidual` with level = sigma (that
module also registers its super-resolution sibling, ``thickness_sr``). g is a U-Net with no
normalisation layers (its output does not depend on how a slice is tiled) whose last layer
starts at zero. The model predicts the noise (residual learning,
Zhang et al. 2017, DnCNN) in units of sigma, which makes two guarantees structural: at
sigma = 0 the output is the input exactly, and the change vanishes with the noise level it
is told (or estimates), so an image with little noise is changed little. Conditioning on sigma
follows FFDNet (Zhang, Zuo & Zhang 2018): one network covers a range of noise levels, and
the Rician bias of dark regions (about 1.25 sigma) is a function of sigma it can learn.

``trained_sigma`` (a buffer, 0..255 units) records the noise range of its training data
(approximately in units of an input's 99.5th percentile: training patches are scaled at
their source's 97th-100th percentile before gamma, floor and bias field), and
``reference_hist`` (``(HIST_REFERENCES, HIST_BINS)``) the intensity histograms of whole
training inputs, so :func:`medgan.tasks.denoising.denoise`
can warn when an input looks unlike them.

:class:`CTDenoiser` (``ct_denoiser``) is the same mechanism for low-dose CT: level = the
std of the (ramp-shaped) noise in HU / half the window width, with the window and trained
noise range recorded as buffers (:func:`medgan.tasks.denoising.denoise_ct` applies it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from medgan.errors import ConfigError
from medgan.models.conditioned import LevelConditionedResidual
from medgan.registry import MODELS

HIST_BINS = 64
HIST_REFERENCES = 128
HIST_RANGE = (-1.0, 2.0)  # unit range of the reference histogram


@MODELS.register("noise_level_denoiser")
class NoiseLevelDenoiser(LevelConditionedResidual):
    """The level-conditioned residual model with level = sigma (units of the module
    docstring): ``noisy - sigma * g([noisy, sigma / sigma_ref])``.

    Args: ``base_channels``, ``depth`` (down-samplings; sides must divide by ``2**depth``)
    and ``max_channels`` of the U-Net g."""

    sigma_ref: float = 0.1  # ~13 levels of 255: keeps the sigma channel O(1)
    level_ref = sigma_ref
    channel_names = ("noisy image", "sigma map")

    def __init__(self, base_channels: int = 32, depth: int = 3, max_channels: int = 128) -> None:
        super().__init__(base_channels, depth, max_channels)
        self.register_buffer("trained_sigma", torch.tensor([0.0, 0.0]))
        self.register_buffer("reference_hist", torch.zeros(HIST_REFERENCES, HIST_BINS))


@MODELS.register("ct_denoiser")
class CTDenoiser(LevelConditionedResidual):
    """Low-dose CT denoiser: the level-conditioned residual model with level = the std of
    the noise to remove, in the model's units (HU / half the window width: HU / 1000 for
    the window -1000..1000 HU): ``noisy - sigma * g([noisy, sigma / sigma_ref])``. Input
    ``(N, 2, H, W)`` = [noisy slice windowed to [-1, 1], constant sigma map]; output the
    denoised slice ``(N, 1, H, W)`` in the same units; at sigma 0 the input exactly.

    Args:
        base_channels, depth, max_channels: g's U-Net (see
            :class:`~medgan.models.conditioned.LevelConditionedResidual`).
        window_hu: ``(lo, hi)`` HU mapped to -1, 1 in training; recorded in the buffer
            ``window_hu``, so inference uses the same units.
        sigma_hu: ``(lo, hi)`` noise std (HU) of the training pairs; recorded in the buffer
            ``trained_sigma_hu``, and inference warns outside it.
    """

    sigma_ref: float = 0.02  # 20 HU in the -1000..1000 window: keeps the sigma channel O(1)
    level_ref = sigma_ref
    channel_names = ("noisy CT slice", "sigma map")
    # g sees a third channel, the 3x3 high-pass of the image in units of sigma: CT noise of
    # ~17 HU is ~1% of the window, and without it g did not learn in 60 steps (PSNR gain
    # +0.0003 dB on held-out phantoms, supervised L1, lr 5e-4) where it gained +1.5 dB with it
    g_inputs = 3

    def __init__(
        self,
        base_channels: int = 16,
        depth: int = 3,
        max_channels: int = 128,
        window_hu: tuple[float, float] = (-1000.0, 1000.0),
        sigma_hu: tuple[float, float] = (0.0, 40.0),
    ) -> None:
        lo, hi = (float(v) for v in window_hu)
        if not hi > lo:
            raise ConfigError(f"window_hu must be (lo, hi) with hi > lo, got {window_hu}")
        s_lo, s_hi = (float(v) for v in sigma_hu)
        if not 0 <= s_lo <= s_hi:
            raise ConfigError(f"sigma_hu must be (lo, hi) with 0 <= lo <= hi, got {sigma_hu}")
        super().__init__(base_channels, depth, max_channels)
        self.register_buffer("window_hu", torch.tensor([lo, hi]))
        self.register_buffer("trained_sigma_hu", torch.tensor([s_lo, s_hi]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``image - sigma * g([image, sigma / sigma_ref, highpass(image) / sigma])`` from
        ``x`` ``(N, 2, H, W)`` = [noisy slice in [-1, 1], constant sigma map >= 0]; at sigma
        0 the image exactly. ValueError for another shape."""
        if x.dim() != 4 or x.shape[1] != 2:
            a, b = self.channel_names
            raise ValueError(f"expected (N, 2, H, W) = [{a}, {b}], got {tuple(x.shape)}")
        image, level = x[:, :1], x[:, 1:]
        # image minus its 3x3 mean (edge-replicated): mostly noise, O(1) once divided by
        # sigma (floored, so that sigma 0 gives a finite g, multiplied by 0)
        local = F.avg_pool2d(F.pad(image, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        highpass = (image - local) / level.clamp_min(1e-3)
        g = self.net(torch.cat([image, level / self.level_ref, highpass], 1))
        return image - level * g
