"""Differentiable augmentation for small medical data sets (DiffAugment, Zhao et al. 2020):
the same random transform family is applied to real and generated images before the
discriminator, and gradients flow through it to the generator.

Transforms (2D and 3D, per sample): ``intensity`` (brightness shift U(-0.25, 0.25) and
contrast scale U(0.75, 1.25) around the image mean), ``translation`` (shift by up to
``translation_ratio`` of each side, exposed border filled with -1 = background), ``cutout``
(a box of ``cutout_ratio`` of each side set to -1). Each transform is applied with
probability ``p`` (ADA-style strength, Karras et al. 2020).

Use :class:`AugmentedDiscriminator` to wrap any discriminator; a conditioning image is
transformed jointly with the image it conditions. The random state and ``p`` are part of
the module's state dict, so checkpoints resume exactly. Adaptive augmentation (ADA) moves
``p`` during training from the discriminator's overfitting signal: see
:class:`medgan.callbacks.AdaptiveAugmentation`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from medgan.batches import call_discriminator
from medgan.errors import ConfigError

POLICIES = ("intensity", "translation", "cutout")


class DiffAugment(nn.Module):
    """Random, differentiable transforms of ``(N, C, *spatial)`` images (2D or 3D).

    Args:
        policy: transforms to apply, a tuple or a comma-separated string (``POLICIES``).
        p: probability of each transform per sample, in [0, 1]; a buffer, so adaptive
            augmentation (:meth:`adapt`) can move it and checkpoints keep it.
        translation_ratio: largest shift as a fraction of each side.
        cutout_ratio: side of the cut-out box as a fraction of each side.
        seed: seed of the module's own random stream (never the global one).

    Every call draws the same number of random values whatever ``p`` is, and nothing
    about the transform is decided on the host, so the module never forces a GPU sync.
    """

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
        self.policy = policy
        self.translation_ratio, self.cutout_ratio = translation_ratio, cutout_ratio
        self.register_buffer("p", torch.tensor(float(p)))
        # running sum and count of the overfitting signal r_t between two adjustments
        self.register_buffer("ada_stats", torch.zeros(2))
        self.rng = torch.Generator().manual_seed(seed)

    # the random state travels with checkpoints
    def get_extra_state(self) -> Tensor:
        """The state of the module's own random stream (a uint8 CPU tensor), saved in the
        state dict so that a resumed run draws the same transforms."""
        return self.rng.get_state()

    def set_extra_state(self, state: Tensor) -> None:
        """Restore the random stream from ``state``, :meth:`get_extra_state`'s tensor (on any
        device)."""
        self.rng.set_state(state.cpu())

    def _rand(self, x: Tensor, *shape: int) -> Tensor:
        r = torch.rand(shape, generator=self.rng)  # CPU stream: same on every device
        if x.device.type == "cuda":  # pinned + non_blocking: the host does not wait
            return r.pin_memory().to(x.device, non_blocking=True)
        return r

    def _on(self, x: Tensor) -> Tensor:
        """(N,) bool: which samples get the transform (probability p each)."""
        return self._rand(x, x.shape[0]) < self.p

    # -- adaptive augmentation (Karras et al. 2020, sec. 3)
    @torch.no_grad()
    def accumulate(self, signal: Tensor) -> None:
        """Add one measurement ``signal`` of the overfitting signal r_t (a scalar tensor in
        [-1, 1], :meth:`~medgan.losses.GANLoss.overfit_signal`) to the running mean."""
        self.ada_stats += torch.stack(
            [signal.detach().float().to(self.ada_stats), self.ada_stats.new_ones(())]
        )

    @torch.no_grad()
    def adapt(self, target: float, step_size: float) -> None:
        """p <- clip(p + sign(mean r_t - target) * step_size, 0, 1); resets the running mean.

        ADA's rule: with ``step_size = images since the last adjustment / (speed_kimg *
        1000)``, p can move from 0 to 1 in ``speed_kimg`` thousand images.

        Args:
            target: the value of the mean r_t to hold, in [0, 1] (0.6 in the paper).
            step_size: how far p moves, up or down, in this adjustment (>= 0); p stays
                unchanged when no signal was accumulated.
        """
        total, count = self.ada_stats.unbind()
        r_t = total / count.clamp_min(1.0)
        moved = self.p + torch.sign(r_t - target) * step_size * (count > 0)
        self.p.copy_(moved.clamp(0.0, 1.0))
        self.ada_stats.zero_()

    def forward(self, x: Tensor) -> Tensor:
        """Transform a batch ``x``: ``(N, C, *spatial)`` images in [-1, 1] (2D or 3D) to a tensor of
        the same shape and dtype; each transform of the policy is applied to each sample with
        probability ``p``. Borders and cut-out boxes are filled with -1 (background)."""
        if not self.policy:
            return x
        n, sizes, d = x.shape[0], x.shape[2:], x.dim() - 2
        view = (n,) + (1,) * (x.dim() - 1)
        if "intensity" in self.policy:
            on = self._on(x).view(view)
            shift = ((self._rand(x, n) - 0.5) * 0.5).to(x.dtype).view(view)
            scale = (0.75 + 0.5 * self._rand(x, n)).to(x.dtype).view(view)
            mean = x.mean(dim=tuple(range(1, x.dim())), keepdim=True)
            x = torch.where(on, (x - mean) * scale + mean + shift, x)
        if "translation" in self.policy:
            on = self._on(x)
            pads = [max(1, int(s * self.translation_ratio)) for s in sizes]
            padded = nn.functional.pad(x, [q for p in reversed(pads) for q in (p, p)], value=-1.0)
            index: list[Tensor] = [torch.arange(n, device=x.device).view(view)]
            index.append(torch.arange(x.shape[1], device=x.device).view(1, -1, *([1] * d)))
            for axis, (size, pad) in enumerate(zip(sizes, pads, strict=True)):
                shift = (self._rand(x, n) * (2 * pad + 1)).long().clamp_max(2 * pad)
                shift = torch.where(on, shift, torch.full_like(shift, pad))  # pad = no shift
                grid = shift[:, None] + torch.arange(size, device=x.device)  # (n, size)
                shape = [n, 1] + [1] * d
                shape[2 + axis] = size
                index.append(grid.view(shape))
            x = padded[tuple(index)]
        if "cutout" in self.policy:
            on = self._on(x)
            keep = torch.ones((n, 1, *sizes), dtype=torch.bool, device=x.device)
            inside = on.view(view)
            for axis, size in enumerate(sizes):
                c = max(1, int(size * self.cutout_ratio))
                start = (self._rand(x, n) * (size - c + 1)).long().clamp_max(size - c)
                pos = torch.arange(size, device=x.device)
                in_axis = (pos >= start[:, None]) & (pos < start[:, None] + c)  # (n, size)
                shape = [n, 1] + [1] * d
                shape[2 + axis] = size
                inside = inside & in_axis.view(shape)
            keep = keep & ~inside
            x = torch.where(keep, x, torch.full_like(x, -1.0))
        return x


def find_augment(module: nn.Module) -> DiffAugment:
    """The one :class:`DiffAugment` inside ``module`` (e.g. an augmented discriminator)."""
    found = [m for m in module.modules() if isinstance(m, DiffAugment)]
    if len(found) != 1:
        raise ConfigError(
            f"expected exactly one DiffAugment inside {type(module).__name__}, found "
            f"{len(found)}; wrap the discriminator in AugmentedDiscriminator(d, DiffAugment())"
        )
    return found[0]


class AugmentedDiscriminator(nn.Module):
    """``D(augment(x)[, augment(cond)])`` with one shared transform per sample for image pairs.

    Args:
        discriminator: the wrapped discriminator, ``D(x)`` or ``D(x, cond)``.
        augment: the transforms applied to every input of D (real and generated alike).
    """

    def __init__(self, discriminator: nn.Module, augment: DiffAugment) -> None:
        super().__init__()
        self.discriminator, self.augment = discriminator, augment

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """The wrapped discriminator's output (logits) for augmented ``x`` ``(N, C, *spatial)``.

        A floating-point ``cond`` with the same spatial shape as ``x`` (a conditioning image)
        is concatenated with ``x`` along channels and transformed with it, so the pair stays
        aligned; any other ``cond`` (labels, None) is passed to the discriminator unchanged.
        """
        if isinstance(cond, Tensor) and cond.is_floating_point() and cond.shape[2:] == x.shape[2:]:
            both = self.augment(torch.cat([x, cond], dim=1))
            return self.discriminator(both[:, : x.shape[1]], both[:, x.shape[1] :])
        x = self.augment(x)
        return call_discriminator(self.discriminator, x, cond)
