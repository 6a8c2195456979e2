"""Automatic labelling: a U-Net segmenter trained with soft Dice + cross-entropy plus an
adversarial term from a discriminator that sees (image, label map) pairs (Luc et al. 2016;
SegAN, Xue et al. 2018). ``adv_weight=0`` gives the purely supervised baseline.

Two adversarial terms: ``segmentation`` (a PatchGAN judging (label map, image) pairs with
any registered GAN loss) and ``segan`` (SegAN's multi-scale L1 game: a critic
:class:`SegANCritic` extracts features of the image masked by the label map at several
scales; the segmenter minimises, the critic maximises their L1 distance between the
predicted and the reference map).

The segmenter outputs class probabilities ``(N, K, *spatial)`` (softmax); real label maps
enter the discriminator one-hot encoded, so real and generated maps look alike to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medgan.batches import GANInputs, NoiseFn, unpack
from medgan.data.intensity import IntensityWindow
from medgan.data.volume import Volume
from medgan.errors import ConfigError
from medgan.losses import GANLoss, WithAdversarial
from medgan.models import layers as L
from medgan.models.unet import UNetGenerator
from medgan.registry import LOSSES, MODELS


@MODELS.register("unet_segmenter")
class UNetSegmenter(nn.Module):
    """Image ``(N, C, *spatial)`` in [-1, 1] -> class probabilities ``(N, K, *spatial)``
    (softmax over K = ``num_classes``).

    Args:
        num_classes: K, the number of label classes (background included); the output
            channels. The segmenter takes no labels and no noise (no ``latent_dim``).
        in_channels: C, channels of the input image.
        base_channels: width of the U-Net's first level (doubling per level, up to 256).
        depth: stride-2 downsamplings; every spatial side must divide by ``2**depth``.
        spatial_dims: 2 (slices) or 3 (volumes).
        norm: the U-Net's normalisation, "instance", "batch" or "none". Instance norm
            rescales every image by its own statistics, so the absolute intensity that
            separates tissues shifts with the image's content.
    """

    def __init__(
        self,
        num_classes: int = 2,
        in_channels: int = 1,
        base_channels: int = 16,
        depth: int = 3,
        spatial_dims: int = 2,
        norm: str = "instance",
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.unet = UNetGenerator(
            in_channels,
            num_classes,
            base_channels,
            depth,
            spatial_dims,
            norm=norm,
            out_activation="none",
        )

    def forward(self, x: Tensor) -> Tensor:
        """Class probabilities ``(N, num_classes, *spatial)`` (in [0, 1], summing to 1 over
        dim 1) of images ``x`` ``(N, in_channels, *spatial)`` in [-1, 1]."""
        return self.unet(x).softmax(dim=1)


class LabelsToOneHot:
    """Batch adapter for ``(image, integer label map)`` pairs: G(image), D(one-hot map, image).

    Args:
        num_classes: K: label maps with values in [0, K) become one-hot float maps
            ``(N, K, *spatial)``, the segmenter's output layout.
    """

    def __init__(self, num_classes: int) -> None:
        self.k = num_classes

    def __call__(self, batch: Any, sample_noise: NoiseFn) -> GANInputs:
        image, labels = unpack(batch)
        onehot = F.one_hot(labels.long(), self.k).movedim(-1, 1).float()
        return GANInputs(onehot, (image,), image)


def soft_dice_loss(probs: Tensor, onehot: Tensor, eps: float = 1.0) -> Tensor:
    """1 - mean_k (2 sum p*y + eps) / (sum p + sum y + eps) (Milletari et al. 2016), a scalar
    in [0, 1], sums over the batch and the spatial axes.

    Args:
        probs: class probabilities p ``(N, K, *spatial)``.
        onehot: the reference one-hot maps y, same shape.
        eps: smoothing added to numerator and denominator (a class absent from both
            scores 1, not 0/0).
    """
    dims = (0, *range(2, probs.dim()))
    inter = (probs * onehot).sum(dims)
    return 1 - ((2 * inter + eps) / (probs.sum(dims) + onehot.sum(dims) + eps)).mean()


def _supervised(
    probs: Tensor, onehot: Tensor, dice_weight: float, ce_weight: float
) -> tuple[Tensor, dict[str, Tensor]]:
    """dice_weight * softDice + ce_weight * CE, ``CE = -mean sum_k y_k log p_k``, with the
    detached terms for logging."""
    dice = soft_dice_loss(probs, onehot)
    ce = -(onehot * probs.clamp_min(1e-7).log()).sum(1).mean()
    return dice_weight * dice + ce_weight * ce, {"dice_loss": dice.detach(), "ce": ce.detach()}


class _SupervisedPlusAdversarial:
    """The segmenter's loss shared by :class:`SegmentationLoss` and :class:`SegANLoss`:
    ``dice_weight * softDice + ce_weight * CE + adv_weight * A``, with the adversarial term
    A from the subclass's ``_adversarial``."""

    adv_weight: float
    dice_weight: float
    ce_weight: float

    def _adversarial(
        self, d: nn.Module, real: Tensor, fake: Tensor, cond: Any
    ) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def generator_objective(
        self,
        d: nn.Module,
        real: Tensor | None,
        fake: Tensor,
        cond: Any = None,
        g_net: nn.Module | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The loss above of the class probabilities ``fake`` ``(N, K, *spatial)`` against
        the reference one-hot maps ``real`` (required) for the images ``cond``, through
        the critic/discriminator ``d``; ``g_net`` unused."""
        if real is None:
            raise ValueError(f"{type(self).__name__} needs the reference label map")
        total, logs = _supervised(fake.float(), real, self.dice_weight, self.ce_weight)
        if self.adv_weight:
            adv, adv_logs = self._adversarial(d, real, fake, cond)
            total = total + self.adv_weight * adv
            logs |= adv_logs
        return total, logs


@LOSSES.register("segmentation")
@dataclass(frozen=True)
class SegmentationLoss(_SupervisedPlusAdversarial, WithAdversarial):
    """G minimises dice_weight * softDice + ce_weight * CE + adv_weight * adversarial.

    Args:
        adv_weight: weight of the adversarial term; 0 gives the purely supervised baseline
            (D is still trained but G ignores it).
        dice_weight: weight of the soft Dice loss (:func:`soft_dice_loss`).
        ce_weight: weight of the cross-entropy of the probabilities against the one-hot
            reference.
        adversarial: as in :class:`~medgan.losses.WithAdversarial`; r1_weight, r2_weight,
            gp_weight and reg_every too.
    """

    adv_weight: float = 0.05
    dice_weight: float = 1.0
    ce_weight: float = 1.0
    _weights: ClassVar[tuple[str, ...]] = ("adv_weight", "dice_weight", "ce_weight")

    def _adversarial(
        self, d: nn.Module, real: Tensor, fake: Tensor, cond: Any
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """The registered adversarial loss's G term on D(label map, image)."""
        return WithAdversarial.generator_objective(self, d, real, fake, cond)


@MODELS.register("segan_critic")
class SegANCritic(nn.Module):
    """SegAN's critic (Xue et al. 2018, "SegAN: Adversarial Network with Multi-scale L1
    Loss for Medical Image Segmentation"): ``forward(label_map, image)`` -> the list of
    its multi-scale features of the image masked by each class of the map.

    The input is ``x o S`` (pixel-wise product): for every class k and image channel c,
    ``S_k * (x_c + 1) / 2`` (the image mapped to [0, 1], so masked-out pixels are 0), i.e.
    ``K * C`` channels. Layers of 4x4 stride-2 convolutions with leaky ReLU; the list is the
    masked input followed by every layer's output (``n_layers + 1`` maps, halving in size).
    Spectral normalisation on every weight bounds the features the critic can stretch
    (SegAN clipped its weights to [-0.05, 0.05] for the same purpose).

    Args:
        num_classes: K, channels of the label map (class probabilities or one-hot).
        in_channels: C, channels of the image.
        base_channels: width of the first layer; doubles per layer up to 8x.
        n_layers: strided layers; sides must divide by ``2**n_layers``.
        spatial_dims: 2 or 3.
    """

    def __init__(
        self,
        num_classes: int = 2,
        in_channels: int = 1,
        base_channels: int = 32,
        n_layers: int = 3,
        spatial_dims: int = 2,
    ) -> None:
        super().__init__()
        d = L.check_spatial_dims(spatial_dims)
        c, layers = num_classes * in_channels, []
        for i in range(n_layers):
            out = base_channels * 2 ** min(i, 3)
            layers.append(
                nn.Sequential(L.maybe_sn(L.conv(d, c, out, 4, 2, 1), True), nn.LeakyReLU(0.2, True))
            )
            c = out
        self.layers = nn.ModuleList(layers)

    def forward(self, label_map: Tensor, image: Tensor) -> list[Tensor]:
        """Features ``[x o S, f_1, ..., f_n]`` of the ``label_map`` S ``(N, K, *spatial)``
        in [0, 1] masking the ``image`` x ``(N, C, *spatial)`` in [-1, 1]."""
        masked = (label_map.unsqueeze(2) * ((image.unsqueeze(1) + 1) / 2)).flatten(1, 2)
        feats = [masked]
        for layer in self.layers:
            feats.append(layer(feats[-1]))
        return feats


def multiscale_l1(a: list[Tensor], b: list[Tensor]) -> Tensor:
    """SegAN's multi-scale L1 distance (Xue et al. 2018, eq. 2, per-scale means):
    ``1/L sum_i mean |a_i - b_i|`` over the L feature maps of two critic outputs ``a`` and
    ``b`` (same shapes, in order); scalar."""
    return torch.stack(
        [(x.float() - y.float()).abs().mean() for x, y in zip(a, b, strict=True)]
    ).mean()


@LOSSES.register("segan")
@dataclass(frozen=True)
class SegANLoss(_SupervisedPlusAdversarial, GANLoss):
    """SegAN's game (Xue et al. 2018, eq. 3) with the supervised terms kept:

        min_S max_C  l_mae(C(S(x), x), C(y, x))
        S minimises  dice_weight * softDice + ce_weight * CE + adv_weight * l_mae

    with ``l_mae`` :func:`multiscale_l1` over the features of :class:`SegANCritic` for the
    predicted map S(x) and the reference one-hot map y, both masking the image x. The
    critic minimises ``-l_mae``. The penalties of :class:`~medgan.losses.GANLoss` (R1, R2,
    GP, lazy ``reg_every``) do not apply: anything but their defaults is a ConfigError. The
    critic must return a list of feature maps (:class:`SegANCritic`); a discriminator that
    returns logits is refused (TypeError). It logs no adaptive-augmentation signal.

    Args:
        adv_weight: weight of ``l_mae`` in the segmenter's loss; 0: the supervised
            baseline (the critic still trains).
        dice_weight: weight of the soft Dice loss.
        ce_weight: weight of the cross-entropy.
    """

    adv_weight: float = 1.0
    dice_weight: float = 1.0
    ce_weight: float = 1.0
    _weights: ClassVar[tuple[str, ...]] = ("adv_weight", "dice_weight", "ce_weight")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.r1_weight or self.r2_weight or self.gp_weight or self.reg_every != 1:
            raise ConfigError(
                "SegANLoss has no R1/R2/gradient penalties (its critic is spectrally "
                "normalised): leave r1_weight, r2_weight, gp_weight at 0 and reg_every at 1"
            )

    @staticmethod
    def _features(d: nn.Module, label_map: Tensor, image: Any) -> list[Tensor]:
        """The critic's feature list; TypeError when ``d`` returns something else."""
        feats = d(label_map, image)
        if not isinstance(feats, list | tuple) or not all(isinstance(f, Tensor) for f in feats):
            raise TypeError(
                f"the segan loss needs a critic returning a list of feature maps "
                f"(segan_critic), got {type(d).__name__} returning {type(feats).__name__}"
            )
        return list(feats)

    def discriminator_objective(
        self,
        d: nn.Module,
        real: Tensor,
        fake: Tensor,
        cond: Any = None,
        rng: torch.Generator | None = None,
        regularize: bool = True,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """``-l_mae`` of the critic ``d`` on the reference maps ``real`` and the predicted
        ``fake`` (detached), both ``(N, K, *spatial)``, masking ``cond`` (the images)."""
        mae = multiscale_l1(self._features(d, real, cond), self._features(d, fake, cond))
        return -mae, {"d_adv": -mae.detach(), "segan_mae": mae.detach()}

    def _adversarial(
        self, d: nn.Module, real: Tensor, fake: Tensor, cond: Any
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """``l_mae`` between the critic's features of the predicted and reference maps."""
        with torch.no_grad():
            ref = self._features(d, real, cond)
        mae = multiscale_l1(self._features(d, fake, cond), ref)
        return mae, {"g_adv": mae.detach()}


@torch.no_grad()
def segment(
    volume: Volume, model: nn.Module, window: IntensityWindow, axis: int = 0, batch_size: int = 16
) -> Volume:
    """Label every slice along ``axis``; returns a label Volume with the same affine
    (integer class values stored as float32, meta modality "SEG", unit "label").
    Slices are padded (with -1) to a multiple of the U-Net's 2**depth and cropped back.

    Args:
        volume: a single-channel volume in physical units.
        model: a trained :class:`UNetSegmenter` (or any ``(B, 1, H, W)`` in [-1, 1] ->
            probabilities ``(B, K, H, W)``); run in eval mode on the CPU.
        window: maps the volume's units to [-1, 1] as in training.
        axis: the array axis (0..2) along which 2D slices are taken.
        batch_size: slices per forward pass.
    """
    model = model.eval()
    k = 2 ** getattr(getattr(model, "unet", model), "depth", 0)
    arr = np.moveaxis(window.to_unit(np.asarray(volume.array, np.float32)), axis, 0)
    n, h, w = arr.shape
    ph, pw = (-h) % k, (-w) % k
    arr = np.pad(arr, ((0, 0), (0, ph), (0, pw)), constant_values=-1.0)
    out = []
    for i in range(0, n, batch_size):
        probs = model(torch.from_numpy(np.ascontiguousarray(arr[i : i + batch_size]))[:, None])
        out.append(probs.argmax(1)[:, :h, :w].numpy())
    labels = np.moveaxis(np.concatenate(out), 0, axis).astype(np.float32)
    return volume.with_array(labels, modality="SEG", unit="label")
