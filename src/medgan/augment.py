"""Differentiable augmentation for small medical data sets (DiffAugment, Zhao et al. 2020):
the same random transform family is applied to real and generated images before the
discriminator, and gradients flow through it to the generator.

Transforms (2D and 3D, per sample): ``intensity`` (brightness shift U(-0.25, 0.25) and
contrast scale U(0.75, 1.25) around the image mean), ``translation`` (shift by up to
``translation_ratio`` of each side, exposed border filled with -1 = background), ``cutout``
(a box of ``cutout_ratio`` of each side set to -1). Each transform is applied with
probability ``p`` (ADA-style strength, Karras et al. 2020).

Use :class:`AugmentedDiscriminator` to wrap any discriminator; a conditioning image is
transformed jointly with the image it conditions. The random state is part of the
module's state dict, so checkpoints resume exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from medgan.errors import ConfigError

POLICIES = ("intensity", "translation", "cutout")


class DiffAugment(nn.Module):
    def __init__(
        self,
        policy: tuple[str, ...] | str = POLICIES,
        p: float = 1.0,
        translation_ratio: float = 0.125,
        cutout_ratio: float = 0.5,
        seed: int = 0,
    ) -> None:
        super().__init__()
        policy = tuple(policy.split(",")) if isinstance(policy, str) else tuple(policy)
        unknown = set(policy) - set(POLICIES)
        if unknown:
            raise ConfigError(f"unknown DiffAugment policy {sorted(unknown)}; known: {POLICIES}")
        if not 0 <= p <= 1:
            raise ConfigError(f"augmentation probability p must be in [0, 1], got {p}")
        self.policy, self.p = policy, p
        self.translation_ratio, self.cutout_ratio = translation_ratio, cutout_ratio
        self.generator = torch.Generator().manual_seed(seed)

    # the random state travels with checkpoints
    def get_extra_state(self) -> Tensor:
        return self.generator.get_state()

    def set_extra_state(self, state: Tensor) -> None:
        self.generator.set_state(state)

    def _rand(self, *shape: int) -> Tensor:
        return torch.rand(shape, generator=self.generator)

    def _apply_mask(self, n: int) -> Tensor:
        return self._rand(n) < self.p

    def forward(self, x: Tensor) -> Tensor:
        if self.p == 0 or not self.policy:
            return x
        n = x.shape[0]
        view = (n,) + (1,) * (x.dim() - 1)
        if "intensity" in self.policy:
            on = self._apply_mask(n).to(x.device).view(view)
            shift = ((self._rand(n) - 0.5) * 0.5).to(x).view(view)
            scale = (0.75 + 0.5 * self._rand(n)).to(x).view(view)
            mean = x.mean(dim=tuple(range(1, x.dim())), keepdim=True)
            x = torch.where(on, (x - mean) * scale + mean + shift, x)
        if "translation" in self.policy:
            on = self._apply_mask(n)
            sizes = x.shape[2:]
            pads = [max(1, int(s * self.translation_ratio)) for s in sizes]
            padded = nn.functional.pad(x, [q for p in reversed(pads) for q in (p, p)], value=-1.0)
            shifts = [((self._rand(n) * (2 * p + 1)).long()) for p in pads]
            out = []
            for i in range(n):
                if not on[i]:
                    out.append(x[i])
                    continue
                idx = tuple(
                    slice(int(s[i]), int(s[i]) + size)
                    for s, size in zip(shifts, sizes, strict=True)
                )
                out.append(padded[(i, slice(None), *idx)])
            x = torch.stack(out)
        if "cutout" in self.policy:
            on = self._apply_mask(n)
            sizes = x.shape[2:]
            mask = torch.ones((n, 1, *sizes), dtype=x.dtype)
            for i in range(n):
                if not on[i]:
                    continue
                idx = []
                for s in sizes:
                    c = max(1, int(s * self.cutout_ratio))
                    start = int(self._rand(1) * (s - c + 1))
                    idx.append(slice(start, start + c))
                mask[(i, slice(None), *idx)] = 0
            mask = mask.to(x.device)
            x = x * mask + (-1.0) * (1 - mask)
        return x


class AugmentedDiscriminator(nn.Module):
    """``D(augment(x)[, augment(cond)])`` with one shared transform per sample for image pairs."""

    def __init__(self, discriminator: nn.Module, augment: DiffAugment) -> None:
        super().__init__()
        self.discriminator, self.augment = discriminator, augment

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        if isinstance(cond, Tensor) and cond.is_floating_point() and cond.shape[2:] == x.shape[2:]:
            both = self.augment(torch.cat([x, cond], dim=1))
            return self.discriminator(both[:, : x.shape[1]], both[:, x.shape[1] :])
        x = self.augment(x)
        return self.discriminator(x, cond) if cond is not None else self.discriminator(x)
