"""What :class:`~medgan.callbacks.Evaluate` measures in a configured run (the ``evaluate``
entry of an experiment file): one registered metric on ``n`` fixed items.

The items are a seeded random choice of the evaluation data (the training data unless
another data set is named); their real images and the EMA generator's (else G's) outputs
for them, both ``(N, C, *spatial)`` in [-1, 1] on the CPU, go to the metric. Which output is
compared with which real image depends on the job's adapter (:mod:`medgan.batches`):

- generation (``noise_to_image``, ``conditional``, ``unpaired``): samples vs training
  images, as distributions: ``swd``, ``domain_fid``;
- paired translation (``paired``): G(source) vs its target, image by image: ``psnr``,
  ``ssim``, ``l1``;
- segmentation (``labels_to_one_hot``): argmax of the class probabilities vs the label
  map: ``dice``.

Register another metric with ``METRICS.register("name")(EvalMetric(fn, adapters))``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from medgan.errors import ConfigError
from medgan.registry import Registry

GENERATION = ("noise_to_image", "conditional", "unpaired")

METRICS = Registry("evaluation metric")


@dataclass(frozen=True)
class EvalMetric:
    """A metric of the ``evaluate`` entries: a function and the jobs it fits.

    Args:
        fn: ``fn(real, fake) -> {name: value}``, both batches ``(N, C, *spatial)`` in
            [-1, 1] (for segmentation: one-hot reference and class probabilities).
        adapters: the names of the batch adapters (jobs) whose outputs it fits, e.g.
            ``("paired",)``.
    """

    fn: Callable[[Tensor, Tensor], dict[str, float]]
    adapters: tuple[str, ...]


def _slices(x: Tensor) -> Tensor:
    """Volumes ``(N, C, D, H, W)`` -> their middle slices along the last axis (2D metrics)."""
    return x[..., x.shape[-1] // 2] if x.dim() == 5 else x


def _swd(real: Tensor, fake: Tensor) -> dict[str, float]:
    """Sliced Wasserstein distance x 1e3 of Laplacian-pyramid patches (Karras et al. 2018)."""
    from medgan.metrics.swd import sliced_wasserstein

    return {"swd": sliced_wasserstein(_slices(real), _slices(fake))["swd"]}


def _domain_fid(real: Tensor, fake: Tensor) -> dict[str, float]:
    """FID on the shipped domain encoder's features (no download; grey images)."""
    from medgan.metrics import FID, DomainEncoderFeatures

    if len(real) < 2:
        raise ConfigError("evaluate.n must be >= 2 for domain_fid (a covariance needs 2 images)")
    fid = FID(DomainEncoderFeatures())
    fid.update(_slices(real), real=True)
    fid.update(_slices(fake), real=False)
    return {"domain_fid": float(fid.compute())}


def _psnr(real: Tensor, fake: Tensor) -> dict[str, float]:
    """PSNR in dB of G(source) against the target, model range (data range 2)."""
    from medgan.metrics import psnr

    return {"psnr": float(psnr(fake, real, data_range=2.0).mean())}


def _ssim(real: Tensor, fake: Tensor) -> dict[str, float]:
    from medgan.metrics import ssim

    return {"ssim": float(ssim(fake, real, data_range=2.0).mean())}


def _l1(real: Tensor, fake: Tensor) -> dict[str, float]:
    """Mean absolute error in model units ([-1, 1])."""
    return {"l1": float((fake - real).abs().mean())}


def _dice(real: Tensor, fake: Tensor) -> dict[str, float]:
    """Dice per foreground class of argmax(probabilities) vs the one-hot reference."""
    from medgan.metrics import dice

    k = real.shape[1]
    per_class = dice(fake.argmax(1), real.argmax(1), k).tolist()
    out = {"dice": sum(per_class) / len(per_class)}
    out |= {f"dice_{c + 1}": v for c, v in enumerate(per_class)}
    return out


METRICS.register("swd")(EvalMetric(_swd, GENERATION))
METRICS.register("domain_fid")(EvalMetric(_domain_fid, GENERATION))
METRICS.register("psnr")(EvalMetric(_psnr, ("paired",)))
METRICS.register("ssim")(EvalMetric(_ssim, ("paired",)))
METRICS.register("l1")(EvalMetric(_l1, ("paired",)))
METRICS.register("dice")(EvalMetric(_dice, ("labels_to_one_hot",)))

#: the metric an ``evaluate`` entry without ``metric`` uses, by adapter
DEFAULT_METRIC = {
    "noise_to_image": "swd",
    "conditional": "swd",
    "unpaired": "swd",
    "paired": "psnr",
    "labels_to_one_hot": "dice",
}


def metrics_for(adapter: str) -> list[str]:
    """Names of the registered metrics that fit ``adapter``."""
    return [m for m in METRICS.available() if adapter in METRICS.get(m).adapters]


def evaluator(
    metric: str, n: int = 64, seed: int = 0, dataset: Any = None, batch_size: int = 32
) -> Callable[[Any], dict[str, float]]:
    """``fn(trainer) -> {name: value}`` for :class:`~medgan.callbacks.Evaluate`.

    Args:
        metric: a name in :data:`METRICS`.
        n: items evaluated (a seeded random choice of the data; all when it has fewer;
            when the trainer reads a stream, which cannot be indexed, and no ``dataset``
            is given: the first ``n`` items of the next training batch).
        seed: seeds the choice and the noise (private generators: training is unaffected).
        dataset: the evaluation data; None uses the training data.
        batch_size: items generated at once.
    """
    from medgan.callbacks import eval_outputs

    fn = METRICS.get(metric).fn

    def run(trainer: Any) -> dict[str, float]:
        if dataset is None and not trainer.stream.exact:  # not indexable: the next batch's
            x = trainer.fixed_inputs(n, seed)  # first n items
            return fn(x.real.float().cpu(), eval_outputs(trainer, x).cpu())
        data = trainer.dataset if dataset is None else dataset
        rng = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(data), generator=rng)[:n].tolist()
        real, fake = [], []
        for i in range(0, len(order), batch_size):
            x = trainer.fixed_inputs(order[i : i + batch_size], seed + i, dataset)
            fake.append(eval_outputs(trainer, x).cpu())
            real.append(x.real.float().cpu())
        return fn(torch.cat(real), torch.cat(fake))

    return run
