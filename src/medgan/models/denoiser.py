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
"""

from __future__ import annotations

import torch

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
