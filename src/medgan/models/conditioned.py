"""Level-conditioned residual models: identity at level 0 by construction.

Input ``(N, 2, H, W)`` (or ``(N, 2, D, H, W)`` with ``spatial_dims=3``): channel 0 the image
x in [-1, 1] units, channel 1 a constant map of a degradation level (>= 0; its unit is the
subclass's). Output ``(N, 1, H, W)`` (``(N, 1, D, H, W)``):

    y = x - level * g([x, level / level_ref])

g is a U-Net with no normalisation layers (the output does not depend on how a slice is
tiled) whose last layer starts at zero, so an untrained model is the identity. The product
with the level makes two guarantees structural, whatever g learned: at level 0 the output
is the input exactly, and the change shrinks with the level the model is told. Conditioning
one network on the level follows FFDNet (Zhang, Zuo & Zhang 2018); predicting the
correction instead of the image is residual learning (Zhang et al. 2017, DnCNN).

- :class:`LevelConditionedResidual`: the shared mechanism.
- :class:`ThicknessSR` (``thickness_sr``): through-plane super-resolution of thick slices,
  level = factor - 1.
- :class:`~medgan.models.denoiser.NoiseLevelDenoiser` (``noise_level_denoiser``): MR
  denoising, level = the noise std sigma.
"""

from __future__ import annotations

import torch
from torch import nn

from medgan.errors import ConfigError
from medgan.models.unet import UNetGenerator
from medgan.registry import MODELS


class LevelConditionedResidual(nn.Module):
    """``y = x - level * g([x, level / level_ref])`` (see the module docstring).

    Args:
        base_channels: width of g's first stage (doubles per stage up to ``max_channels``).
        depth: g's stride-2 down-samplings; H and W must divide by ``2**depth``.
        max_channels: g's widest stage.
        spatial_dims: 2 (planes) or 3 (volumes; every side divisible by ``2**depth``).

    Subclasses set ``level_ref`` (a typical level: keeps g's level channel O(1)),
    ``channel_names`` (the two input channels, for error messages) and, when their
    ``forward`` gives g more than ``[image, level]``, ``g_inputs`` (g's input channels).
    """

    level_ref: float = 1.0
    channel_names: tuple[str, str] = ("image", "level map")
    g_inputs: int = 2

    def __init__(
        self,
        base_channels: int = 32,
        depth: int = 3,
        max_channels: int = 128,
        spatial_dims: int = 2,
    ) -> None:
        super().__init__()
        self.depth, self.spatial_dims = depth, spatial_dims
        self.net = UNetGenerator(
            spatial_dims=spatial_dims,
            in_channels=self.g_inputs,
            out_channels=1,
            base_channels=base_channels,
            depth=depth,
            norm="none",
            out_activation="none",
            max_channels=max_channels,
        )
        # g starts at zero: an untrained model is the identity at every level
        nn.init.zeros_(self.net.out.weight)
        nn.init.zeros_(self.net.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The corrected image ``(N, 1, *spatial)``, ``image - level * g([image, level /
        level_ref])``, from ``x`` ``(N, 2, *spatial)`` = [image in [-1, 1] units, constant
        level map >= 0] (``spatial`` = H, W, or D, H, W with ``spatial_dims=3``; sides
        divisible by ``2**depth``). ValueError for another shape."""
        if x.dim() != 2 + self.spatial_dims or x.shape[1] != 2:
            a, b = self.channel_names
            sides = "H, W" if self.spatial_dims == 2 else "D, H, W"
            raise ValueError(f"expected (N, 2, {sides}) = [{a}, {b}], got {tuple(x.shape)}")
        image, level = x[:, :1], x[:, 1:]
        g = self.net(torch.cat([image, level / self.level_ref], 1))
        return image - level * g


@MODELS.register("thickness_sr")
class ThicknessSR(LevelConditionedResidual):
    """Through-plane super-resolution conditioned on the slice thickness.

    Input ``(N, 2, H, W)``: channel 0 a plane that contains the slice axis, with the slice
    axis along W (the last axis), after the thick slabs were resampled onto the fine grid
    (:func:`~medgan.tasks.degradations.slabs_to_grid`), in [-1, 1]; channel 1 the constant
    ``level = factor - 1``, where ``factor`` = slab spacing / fine spacing (an integer >= 1).
    Output ``(N, 1, H, W)``: the fine-grid plane in [-1, 1] units. At factor 1 (level 0,
    slices already as thin as the grid) the output is the input exactly. With
    ``spatial_dims=3`` the same on patches or whole volumes ``(N, 2, D, H, W)`` with the slice
    axis last (W): a 3D U-Net that sees the slabs' neighbours in both in-plane directions.

    Args:
        base_channels, depth, max_channels, spatial_dims: g's U-Net (see
            :class:`LevelConditionedResidual`).
        max_factor: the largest factor of the training data; recorded with 1 in the buffer
            ``trained_factors`` ``[1, max_factor]``, which inference refuses to leave.
    """

    level_ref = 2.0  # levels 1..3 (factors 2..4) -> 0.5..1.5 in g's level channel
    channel_names = ("plane on the fine grid", "factor - 1 map")

    def __init__(
        self,
        base_channels: int = 32,
        depth: int = 3,
        max_channels: int = 128,
        max_factor: int = 4,
        spatial_dims: int = 2,
    ) -> None:
        if int(max_factor) != max_factor or max_factor < 1:
            raise ConfigError(f"max_factor must be an integer >= 1, got {max_factor}")
        super().__init__(base_channels, depth, max_channels, spatial_dims)
        self.register_buffer("trained_factors", torch.tensor([1.0, float(max_factor)]))

    @property
    def factor_range(self) -> tuple[int, int]:
        """The smallest and largest slice-thickness factor of the training data."""
        lo, hi = (int(round(float(v))) for v in self.trained_factors.cpu())
        return lo, hi
