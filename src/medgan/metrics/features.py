"""Feature extractors: ``nn.Module``s mapping images ``(N, C, H, W)`` in [-1, 1] to
features ``(N, d)``. Grey-scale input is repeated to 3 channels where a network needs RGB.

- :class:`InceptionV3Features`: FID Inception pool3 (2048-d) or logits (1008) from a local
  weights file (``weights=`` or ``$MEDGAN_INCEPTION_WEIGHTS``); never downloads.
- :class:`ModuleFeatures`: any user network (a RadImageNet or MedicalNet model, ...).
- :class:`DomainEncoderFeatures`: the small medical-image encoder shipped with medgan.
- :class:`SliceFeatures25D`: volumes ``(N, C, D, H, W)`` -> 2D features of the middle
  axial, coronal and sagittal slices, concatenated (2.5D).
"""

from __future__ import annotations

import inspect
import logging
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from medgan.errors import ConfigError
from medgan.registry import Registry, is_import_path
from medgan.utils import sha256_of

log = logging.getLogger(__name__)

INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
#: torch-hub names end in the first 8 hex digits of the file's SHA-256.
INCEPTION_SHA256_PREFIX = "6726825d"
WEIGHTS_ENV = "MEDGAN_INCEPTION_WEIGHTS"


#: Feature extractors by name ("inception", "domain"; ``FEATURES.register("name")`` adds
#: yours); :func:`build_features` builds them, and ``"package.module:Name"`` import paths.
FEATURES = Registry("feature extractor", base=nn.Module)
register = FEATURES.register
available = FEATURES.available


def to_rgb(x: torch.Tensor) -> torch.Tensor:
    """``(N, 3, ...)`` from ``x`` ``(N, 1, ...)`` (the grey channel repeated, as a view) or
    ``(N, 3, ...)`` (unchanged); ValueError for any other channel count."""
    if x.shape[1] == 3:
        return x
    if x.shape[1] == 1:
        return x.expand(-1, 3, *x.shape[2:])
    raise ValueError(f"expected 1 or 3 channels, got {x.shape[1]}")


@FEATURES.register("inception")
class InceptionV3Features(nn.Module):
    """FID Inception-v3 features of images in [-1, 1].

    Args:
        weights: path to ``pt_inception-2015-12-05-6726825d.pth`` (the file pytorch-fid
            uses); default ``$MEDGAN_INCEPTION_WEIGHTS``.
        output: "pool3" (2048-d, for FID/KID/PR) or "logits" (1008, for IS).
        resize: "pytorch-fid" (bilinear to 299, the default) or "none" (input must be 299).
    """

    def __init__(
        self, weights: str | Path | None = None, output: str = "pool3", resize: str = "pytorch-fid"
    ):
        super().__init__()
        from medgan.metrics.inception import FIDInceptionV3

        path = weights or os.environ.get(WEIGHTS_ENV)
        if not path:
            raise ConfigError(
                f"Inception weights needed: download {INCEPTION_FILE} (the file pytorch-fid "
                f"uses, from its GitHub releases) once, then pass weights='/path/{INCEPTION_FILE}' "
                f"or set {WEIGHTS_ENV}=/path/{INCEPTION_FILE}. medgan never downloads."
            )
        path = Path(path)
        if not path.is_file():
            raise ConfigError(
                f"Inception weights file {path} does not exist; put {INCEPTION_FILE} there "
                f"or point weights=/{WEIGHTS_ENV} at it"
            )
        if output not in ("pool3", "logits"):
            raise ConfigError(f"output must be 'pool3' or 'logits', got {output!r}")
        if resize not in ("pytorch-fid", "none"):
            raise ConfigError(f"resize must be 'pytorch-fid' or 'none', got {resize!r}")
        self.net = FIDInceptionV3()
        state = torch.load(path, map_location="cpu", weights_only=True)
        try:
            self.net.load_state_dict(state)
        except RuntimeError as e:
            raise ConfigError(f"{path} is not an FID Inception state dict: {e}") from None
        from medgan.metrics.inception import fold_batchnorm

        # BatchNorm folded into the convolutions and channels-last memory: the same
        # features (to float rounding, tested against pytorch-fid), faster on CPU.
        fold_batchnorm(self.net.eval().requires_grad_(False))
        self.net = self.net.to(memory_format=torch.channels_last)
        self.weights_path = str(path)
        self.weights_sha256 = sha256_of(path)
        self.published = self.weights_sha256.startswith(INCEPTION_SHA256_PREFIX)
        if not self.published:
            log.warning(
                "%s is not the published FID Inception file (SHA-256 %s...): scores are not "
                "comparable with published FIDs",
                path,
                self.weights_sha256[:12],
            )
        self.output, self.resize = output, resize
        self.dim = 2048 if output == "pool3" else 1008

    def train(self, mode: bool = True) -> InceptionV3Features:
        """Stay in eval mode whatever ``mode`` is: the network is frozen."""
        return super().train(False)  # always in inference mode (BatchNorm statistics fixed)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Features of images ``x`` ``(N, 1 or 3, H, W)`` in [-1, 1] (grey repeated to RGB):
        ``(N, 2048)`` pool3 features or ``(N, 1008)`` logits, by ``output``. No gradient."""
        x = to_rgb(x.float()).contiguous(memory_format=torch.channels_last)
        feats, logits = self.net(x, resize=self.resize == "pytorch-fid")
        return feats if self.output == "pool3" else logits


@torch.no_grad()
def extract_features(
    extractor: nn.Module,
    images: torch.Tensor,
    batch_size: int = 64,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Features ``(N, d)`` (float64, CPU) of images, in batches without gradients.

    Args:
        extractor: images ``(n, C, *spatial)`` in [-1, 1] -> features ``(n, d)``.
        images: ``(N, C, *spatial)`` in [-1, 1], on any device.
        batch_size: images per forward pass.
        device: where the batches run; None: where the extractor's parameters are (CPU
            for one without parameters).
    """
    if device is None:
        device = next((p.device for p in extractor.parameters()), torch.device("cpu"))
    out = [
        extractor(images[i : i + batch_size].to(device).float()).double().cpu()
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out) if out else torch.empty(0, 0, dtype=torch.float64)


def build_features(spec: str, weights: str | Path | None = None) -> nn.Module:
    """A feature extractor ``(N, C, H, W) -> (N, d)`` by name or import path.

    Args:
        spec: a registered name (:data:`FEATURES`: "inception", the FID Inception network,
            which needs ``weights`` or ``$MEDGAN_INCEPTION_WEIGHTS``; "domain", the shipped
            medical-image encoder), or ``"package.module:Name"``: an ``nn.Module`` class or
            a factory function returning a network, called without arguments and wrapped in
            :class:`ModuleFeatures`.
        weights: a weights file, passed to extractors that take a ``weights`` argument
            (ignored by the others).

    Raises:
        ConfigError: an unknown name (listing the registered ones) or an import path that
            cannot be imported.
    """
    builder = FEATURES.get(spec)
    takes_weights = "weights" in inspect.signature(builder).parameters
    kwargs: dict[str, Any] = (
        {"weights": str(weights)} if takes_weights and weights is not None else {}
    )
    if not is_import_path(spec):
        return FEATURES.build(spec, **kwargs)
    module = builder()
    return (
        module
        if hasattr(module, "dim") and isinstance(module, ModuleFeatures)
        else ModuleFeatures(module, name=spec)
    )


class ModuleFeatures(nn.Module):
    """Wrap any network ``module(x) -> (N, d)`` (or ``(N, d, 1, 1)``) as a feature extractor.

    The network is put in eval mode and frozen.

    Args:
        module: the network; its output for ``(N, C, H, W)`` images in [-1, 1] is flattened
            to ``(N, d)``.
        rgb: repeat grey input ``(N, 1, H, W)`` to 3 channels (for RGB networks).
        name: identifies the extractor in reports; default the module's class name.
    """

    def __init__(self, module: nn.Module, rgb: bool = False, name: str | None = None) -> None:
        super().__init__()
        self.module = module.eval().requires_grad_(False)
        self.rgb, self.name = rgb, name or type(module).__name__

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The wrapped network's output on ``x`` ``(N, C, H, W)`` (as float32; grey repeated
        to RGB when ``rgb``), flattened to ``(N, d)``. No gradient."""
        x = to_rgb(x) if self.rgb else x
        return self.module(x.float()).flatten(1)


class SliceFeatures25D(nn.Module):
    """Volumes ``(N, C, D, H, W)`` -> concatenated 2D features of the three middle slices
    (axial = along D, coronal = along H, sagittal = along W).

    Args:
        extractor: a 2D feature extractor, images ``(N, C, h, w)`` in [-1, 1] -> ``(N, d)``.
        size: side in pixels to which every slice is resized (bilinear) so that one 2D
            extractor serves anisotropic volumes; None keeps each slice's own size.
    """

    def __init__(self, extractor: nn.Module, size: int | None = None) -> None:
        super().__init__()
        self.extractor, self.size = extractor, size

    @torch.no_grad()
    def forward(self, v: torch.Tensor) -> torch.Tensor:
        """Features ``(N, 3 * d)`` of volumes ``(N, C, D, H, W)``: the extractor's ``(N, d)``
        on the middle axial, coronal and sagittal slices, concatenated in that order.
        ValueError unless ``v`` has 5 dimensions. No gradient."""
        if v.dim() != 5:
            raise ValueError(f"expected volumes (N, C, D, H, W), got {tuple(v.shape)}")
        d, h, w = v.shape[2:]
        views = [v[:, :, d // 2], v[:, :, :, h // 2], v[:, :, :, :, w // 2]]
        out = []
        for s in views:
            if self.size is not None:
                s = torch.nn.functional.interpolate(
                    s, size=(self.size, self.size), mode="bilinear", align_corners=False
                )
            out.append(self.extractor(s))
        return torch.cat(out, dim=1)
