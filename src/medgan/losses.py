"""All GAN math: the minimax game V(D, G), its stable variants, and gradient penalties.

The discriminator returns *logits* l, with D(x) = sigmoid(l). Every log-probability is
written with ``softplus`` so that |l| = 100 or more never produces inf or NaN:

    log D(x)      = log sigmoid(l)   = -softplus(-l)
    log(1 - D(x)) = log sigmoid(-l)  = -softplus(l)

Each loss exposes the pure formulas ``d_loss(real_logits, fake_logits)`` and
``g_loss(fake_logits)`` (scalars, to be *minimised*), plus
``discriminator_objective(d, real, fake, ...)`` and ``generator_objective(d, real, fake,
...)``, which run the networks, add penalties and return the scalar to minimise with a
dict of detached terms for logging. The trainer only calls those two.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medgan.batches import call_discriminator
from medgan.errors import ConfigError
from medgan.registry import LOSSES

Cond = Any  # class labels (N,), a conditioning image, or None


# --------------------------------------------------------------------------- penalties


def _grad_sq_norm(logits: Tensor, x: Tensor) -> Tensor:
    """||grad_x logits||^2 per sample, shape (N,), with a graph for the backward pass;
    ``x`` must require grad and ``logits`` must have been computed from it."""
    (grad,) = torch.autograd.grad(logits.float().sum(), x, create_graph=True)
    return grad.flatten(1).pow(2).sum(1)


def _input_grad_sq_norm(d: nn.Module, x: Tensor, cond: Cond) -> Tensor:
    """||grad_x D(x)||^2 per sample from a separate float32 pass of D."""
    x = x.detach().requires_grad_(True)
    with torch.autocast(device_type=x.device.type, enabled=False):
        logits = discriminator_logits(d, x.float(), cond)
    return _grad_sq_norm(logits, x)


def r1_penalty(d: nn.Module, real: Tensor, cond: Cond = None) -> Tensor:
    """R1 = E_x[||grad_x D(x)||^2] on real data (Mescheder et al. 2018, eq. 9; weight gamma/2).

    Args:
        d: the discriminator, returning logits (read through :func:`discriminator_logits`).
        real: a real batch ``(N, C, *spatial)`` in [-1, 1]; detached here, then D is run
            on it in float32 with autocast off.
        cond: D's conditioning (class labels ``(N,)`` or a conditioning image), or None.

    Returns:
        The mean squared gradient norm, a float32 scalar with a graph (differentiable
        w.r.t. D's parameters).
    """
    return _input_grad_sq_norm(d, real, cond).mean()


def r2_penalty(d: nn.Module, fake: Tensor, cond: Cond = None) -> Tensor:
    """R2 = E_z[||grad_x D(G(z))||^2] on generated data (Mescheder et al. 2018, eq. 10).

    Args:
        d: the discriminator, returning logits (read through :func:`discriminator_logits`).
        fake: a generated batch ``(N, C, *spatial)`` in [-1, 1]; detached here (no
            gradient reaches G), then D is run on it in float32 with autocast off.
        cond: D's conditioning (class labels ``(N,)`` or a conditioning image), or None.

    Returns:
        The mean squared gradient norm, a float32 scalar with a graph (differentiable
        w.r.t. D's parameters).
    """
    return _input_grad_sq_norm(d, fake, cond).mean()


def gradient_penalty(
    d: nn.Module,
    real: Tensor,
    fake: Tensor,
    cond: Cond = None,
    rng: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP: E[(||grad D(x_hat)||_2 - 1)^2], x_hat = e*x + (1-e)*G(z), e ~ U[0,1].

    Gulrajani et al. 2017, Algorithm 1.

    Args:
        d: the critic, returning logits (read through :func:`discriminator_logits`).
        real: a real batch ``(N, C, *spatial)`` in [-1, 1].
        fake: a generated batch of the same shape; both are detached and mixed in float32.
        cond: D's conditioning (class labels ``(N,)`` or a conditioning image), or None.
        rng: draws the mixing weights e, one per sample, reproducibly; None uses torch's
            global generator.

    Returns:
        The penalty, a float32 scalar with a graph (differentiable w.r.t. D's parameters).
    """
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    eps = torch.rand(shape, device=real.device, generator=rng, dtype=torch.float32)
    x_hat = eps * real.detach().float() + (1 - eps) * fake.detach().float()
    # small epsilon inside the sqrt keeps the gradient finite when the norm is 0
    norm = (_input_grad_sq_norm(d, x_hat, cond) + 1e-12).sqrt()
    return (norm - 1).pow(2).mean()


# --------------------------------------------------------------------------- losses


def discriminator_logits(d: nn.Module, x: Tensor, cond: Cond = None) -> Tensor:
    """D's logits for ``x``: ``d(x, cond)``, or ``d(x)`` when ``cond`` is None
    (:func:`~medgan.batches.call_discriminator`).

    The one convention for discriminators that return a list or tuple (multi-scale
    discriminators, or feature lists such as MONAI's ``PatchDiscriminator``, whose forward
    returns its intermediate feature maps followed by the logits map): the LAST element is
    the logits, taken again while it is itself a list (so a list of per-scale lists gives
    the last scale's logits). The other elements are not used by any loss or penalty.
    Logits may have any shape ``(N, ...)``, e.g. one per patch ``(N, 1, h, w)``: the losses
    average over every element, and R1/R2/gradient penalties differentiate their sum.
    Every loss and penalty reads D through this function.

    Args:
        d: the discriminator.
        x: its input ``(N, C, *spatial)`` in [-1, 1].
        cond: class labels ``(N,)``, a conditioning image, or None (unconditional D).

    Raises:
        ConfigError: D returned something that is neither a tensor nor a list/tuple ending
            in one.
    """
    out = call_discriminator(d, x, cond)
    while isinstance(out, list | tuple) and len(out) > 0:
        out = out[-1]
    if not isinstance(out, Tensor):
        raise ConfigError(
            f"the discriminator {type(d).__name__} returned {type(out).__name__}: it must "
            "return logits (a tensor), or a list/tuple whose last element is the logits"
        )
    return out


def _l1(x: Tensor, y: Tensor) -> Tensor:
    """Mean absolute difference, in float32 whatever the autocast dtype."""
    return (x.float() - y.float()).abs().mean()


@dataclass(frozen=True)
class GANLoss:
    """Base: adversarial terms plus optional penalties on D.

    D returns logits of shape ``(N,)`` or ``(N, ...)`` (patch logits are averaged), or a
    list/tuple whose LAST element is the logits (multi-scale / feature-list
    discriminators, e.g. MONAI's ``PatchDiscriminator``; see :func:`discriminator_logits`): the
    adversarial terms and the R1/R2/gradient penalties all use that last element.

    Args:
        r1_weight: gamma of R1 on real data; the term added is ``gamma / 2 * R1``.
        r2_weight: gamma of R2 on generated data; adds ``gamma / 2 * R2``.
        gp_weight: lambda of the WGAN-GP term (10 in Gulrajani et al.).
        reg_every: lazy regularisation (Karras et al. 2020, "Analyzing and Improving the
            Image Quality of StyleGAN", sec. 3.1): the penalties are computed on one D update
            in ``reg_every``, with their weights multiplied by ``reg_every`` so the
            expected penalty is unchanged; 1 = every update.
    """

    r1_weight: float = 0.0
    r2_weight: float = 0.0
    gp_weight: float = 0.0
    reg_every: int = 1
    #: task-term weights a subclass validates like the penalties (finite, >= 0)
    _weights: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        for name in ("r1_weight", "r2_weight", "gp_weight", *self._weights):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ConfigError(f"{type(self).__name__}.{name} must be a finite number >= 0")
        if not isinstance(self.reg_every, int) or self.reg_every < 1:
            raise ConfigError(f"{type(self).__name__}.reg_every must be an integer >= 1")

    # -- formulas (override in subclasses)
    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """D's adversarial loss (scalar, to minimise) from its logits; no penalties.

        Args:
            real_logits: D's logits on a real batch, ``(N,)`` or ``(N, ...)`` float32,
                unbounded (D(x) = sigmoid(l) for the log-likelihood losses; the raw critic
                value for Wasserstein, hinge and least squares).
            fake_logits: D's logits on a generated batch, same shape; the relativistic
                loss pairs them with ``real_logits`` by index.
        """
        raise NotImplementedError

    def g_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        """G's adversarial loss (scalar, to minimise) from D's logits on the fakes.

        Args:
            fake_logits: D's logits on a generated batch, ``(N,)`` or ``(N, ...)``
                float32, unbounded.
            real_logits: D's logits on the paired real batch, same shape; only read by
                relativistic losses (:attr:`needs_real_logits`), None for the others.
        """
        raise NotImplementedError

    #: True when ``g_loss`` compares the fakes with the real batch (relativistic losses):
    #: the generator objective then runs D on the real batch too.
    needs_real_logits: ClassVar[bool] = False

    def overfit_signal(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """The overfitting heuristic of adaptive augmentation (Karras et al. 2020, sec. 3):
        r_t = E[sign(D(x_real))]; 0 when D cannot tell, 1 when it is certain on every real
        image. Scalar tensor in [-1, 1] (no host sync).

        Args:
            real_logits: D's logits on a real batch, ``(N,)`` or ``(N, ...)``.
            fake_logits: D's logits on a generated batch, same shape (read by the
                relativistic loss only, whose signal is a difference of the two).
        """
        return torch.sign(real_logits.detach().float()).mean()

    # -- objectives the trainer calls
    def discriminator_objective(
        self,
        d: nn.Module,
        real: Tensor,
        fake: Tensor,
        cond: Cond = None,
        rng: torch.Generator | None = None,
        regularize: bool = True,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Scalar to minimise w.r.t. D's parameters, and the detached terms for logging.

        When R1/R2 are on and no autocast is active, the penalties reuse the logits of the
        loss (one D pass per batch instead of two); under autocast they are computed in a
        separate float32 pass, so the input gradients never underflow in fp16.

        Args:
            d: the discriminator, returning logits.
            real: a real batch ``(N, C, *spatial)`` in [-1, 1] (the paired target, for
                image-to-image tasks).
            fake: a generated batch of the same shape, already detached from G.
            cond: D's conditioning (class labels ``(N,)`` or a conditioning image), or
                None.
            rng: draws the WGAN-GP mixing weights; None uses torch's global generator.
            regularize: whether this update computes the penalties (the trainer passes True
                on one D update in ``reg_every``); they are then weighted ``reg_every``
                times.

        Returns:
            ``(loss, logs)``: the scalar loss with a graph, and detached scalars ``d_adv``,
            ``d_real``, ``d_fake`` (mean logits), ``ada_r`` and, when computed, ``r1``,
            ``r2``, ``gp``.
        """
        shared = not torch.is_autocast_enabled(real.device.type)
        want_r1, want_r2 = regularize and bool(self.r1_weight), regularize and bool(self.r2_weight)
        lazy = float(self.reg_every)
        if shared and want_r1:
            real = real.detach().requires_grad_(True)
        if shared and want_r2:
            fake = fake.detach().requires_grad_(True)
        real_logits = discriminator_logits(d, real, cond)
        fake_logits = discriminator_logits(d, fake, cond)
        adv = self.d_loss(real_logits.float(), fake_logits.float())
        total, logs = adv, {"d_adv": adv.detach()}
        for on, weight, key, x, logits, separate in (
            (want_r1, self.r1_weight, "r1", real, real_logits, r1_penalty),
            (want_r2, self.r2_weight, "r2", fake, fake_logits, r2_penalty),
        ):
            if not on:
                continue
            if shared:  # ||grad_x D(x)||^2 from the logits already computed
                pen = _grad_sq_norm(logits, x).mean()
            else:
                pen = separate(d, x, cond)
            total = total + 0.5 * weight * lazy * pen
            logs[key] = pen.detach()
        if regularize and self.gp_weight:
            gp = gradient_penalty(d, real, fake, cond, rng)
            total = total + self.gp_weight * lazy * gp
            logs["gp"] = gp.detach()
        logs["d_real"] = real_logits.detach().float().mean()
        logs["d_fake"] = fake_logits.detach().float().mean()
        logs["ada_r"] = self.overfit_signal(real_logits, fake_logits)
        return total, logs

    def generator_objective(
        self,
        d: nn.Module,
        real: Tensor | None,
        fake: Tensor,
        cond: Cond = None,
        g_net: nn.Module | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Scalar to minimise w.r.t. G's parameters (gradients flow through ``fake``).

        Args:
            d: the discriminator, returning logits (the trainer freezes its parameters,
                ``requires_grad_(False)``, during this update).
            real: the batch ``fake`` was made for, ``(N, C, *spatial)`` in [-1, 1] (its
                targets, for paired losses; read by relativistic and task losses; None when
                no loss term needs it).
            fake: G's output ``(N, C, *spatial)`` in [-1, 1], not detached.
            cond: D's conditioning (class labels ``(N,)`` or a conditioning image), or
                None.
            g_net: G itself, for losses whose terms run it again (cycle consistency); None
                otherwise.

        Returns:
            ``(loss, logs)``: the scalar loss with a graph, and detached scalars for
            logging (``g_adv`` and each task term).
        """
        real_logits = None
        if self.needs_real_logits:
            if real is None:
                raise ConfigError(f"{type(self).__name__} compares fakes with a real batch")
            with torch.no_grad():
                real_logits = discriminator_logits(d, real, cond).float()
        adv = self.g_loss(discriminator_logits(d, fake, cond).float(), real_logits)
        return adv, {"g_adv": adv.detach()}


@LOSSES.register("minimax")
@dataclass(frozen=True)
class Minimax(GANLoss):
    """The original saturating game (Goodfellow et al. 2014, eq. 1).

    V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))];
    D maximises V (minimises -V), G minimises E_z[log(1 - D(G(z)))].
    """

    def value(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """V(D, G) itself (scalar, <= 0); equals -log 4 at D* = 1/2 when p_g = p_data.

        Args:
            real_logits: D's logits on a real batch, ``(N,)`` or ``(N, ...)``.
            fake_logits: D's logits on a generated batch, same shape.
        """
        return -F.softplus(-real_logits).mean() - F.softplus(fake_logits).mean()

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """-V(D, G) = E[softplus(-l_real)] + E[softplus(l_fake)] (scalar)."""
        return -self.value(real_logits, fake_logits)

    def g_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        """E[log(1 - D(G(z)))] = -E[softplus(l_fake)] (scalar; ``real_logits`` unused)."""
        return -F.softplus(fake_logits).mean()  # = E[log(1 - D(G(z)))]


@LOSSES.register("non_saturating")
@dataclass(frozen=True)
class NonSaturating(Minimax):
    """Same D as the minimax game; G maximises E[log D(G(z))] instead (Goodfellow 2014, sec. 3).

    g_loss = -E[log D(G(z))] = E[softplus(-l)]: strong gradients when D rejects the fakes.
    """

    def g_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        """-E[log D(G(z))] = E[softplus(-l_fake)] (scalar; ``real_logits`` unused)."""
        return F.softplus(-fake_logits).mean()


@LOSSES.register("wasserstein")
@dataclass(frozen=True)
class Wasserstein(GANLoss):
    """WGAN critic loss (Arjovsky et al. 2017) with gradient penalty (Gulrajani et al. 2017).

    d_loss = E[D(G(z))] - E[D(x)] (+ gp_weight * GP), g_loss = -E[D(G(z))]. The default
    ``gp_weight=10`` is WGAN-GP; use ``n_critic=5`` in the trainer as the paper does.
    """

    gp_weight: float = 10.0

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """E[D(G(z))] - E[D(x)] on the raw critic outputs (scalar; the penalty is added by
        :meth:`discriminator_objective`)."""
        return fake_logits.mean() - real_logits.mean()

    def g_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        """-E[D(G(z))] (scalar; ``real_logits`` unused)."""
        return -fake_logits.mean()


@LOSSES.register("hinge")
@dataclass(frozen=True)
class Hinge(GANLoss):
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018).

    d_loss = E[relu(1 - D(x))] + E[relu(1 + D(G(z)))], g_loss = -E[D(G(z))].
    """

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """E[relu(1 - D(x))] + E[relu(1 + D(G(z)))] (scalar, >= 0)."""
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()

    def g_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        """-E[D(G(z))] (scalar; ``real_logits`` unused)."""
        return -fake_logits.mean()


@LOSSES.register("least_squares")
@dataclass(frozen=True)
class LeastSquares(GANLoss):
    """LSGAN (Mao et al. 2017, eq. 2) with a=0 (fake), b=1 (real), c=1 (G's target).

    d_loss = 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2], g_loss = 1/2 E[(D(G(z)) - 1)^2],
    on the raw discriminator output (no sigmoid).
    """

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2] (scalar, >= 0)."""
        return 0.5 * (real_logits - 1).pow(2).mean() + 0.5 * fake_logits.pow(2).mean()

    def g_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        """1/2 E[(D(G(z)) - 1)^2] (scalar, >= 0; ``real_logits`` unused)."""
        return 0.5 * (fake_logits - 1).pow(2).mean()


@LOSSES.register("relativistic")
@dataclass(frozen=True)
class Relativistic(GANLoss):
    """Relativistic pairing GAN, RpGAN (Jolicoeur-Martineau 2019; Sun et al. 2020), with
    R1 and R2 as in R3GAN (Huang et al. 2024, eq. 2 and sec. 2.2):

        L_D = E_{x, z}[f(D(G(z)) - D(x))],   L_G = E_{x, z}[f(D(x) - D(G(z)))],
        f(t) = softplus(t) = -log sigmoid(-t),

    real and fake samples paired by their index in the batch. D only learns *how much more
    real* x looks than G(z), so every fake is pushed towards the real it is paired with:
    this removes the mode-dropping optima of the non-saturating game. R1 alone does not
    make RpGAN converge locally; R1 + R2 does (Huang et al., Theorem 2). Defaults:
    gamma = 0.1 for both (R3GAN uses 0.05-2 by data set; ``medgan.recipes`` picks it).
    """

    r1_weight: float = 0.1
    r2_weight: float = 0.1
    needs_real_logits: ClassVar[bool] = True

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """E[softplus(D(G(z)) - D(x))] over the index-paired batches (scalar, >= 0)."""
        return F.softplus(fake_logits - real_logits).mean()

    def g_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        """E[softplus(D(x) - D(G(z)))] over the index-paired batches (scalar, >= 0);
        ConfigError when ``real_logits`` is None."""
        if real_logits is None:
            raise ConfigError("the relativistic loss needs D's logits on the paired real batch")
        return F.softplus(real_logits - fake_logits).mean()

    def overfit_signal(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """Only differences of logits carry meaning here (D(x) + c is the same D), so the
        adaptive-augmentation signal is E[sign(D(x) - D(G(z)))] over the pairs."""
        return torch.sign((real_logits - fake_logits).detach().float()).mean()


def build_loss(name: str, **kwargs: Any) -> GANLoss:
    """Build a registered loss by name, e.g. ``build_loss("hinge", r1_weight=1.0)``.

    Args:
        name: a registered loss (``available()`` lists them).
        **kwargs: the loss's fields (its weights), validated by the loss.
    """
    return LOSSES.build(name, **kwargs)


# the one registry API, as in medgan.models and medgan.data
register = LOSSES.register
available = LOSSES.available
build = build_loss


@dataclass(frozen=True)
class WithAdversarial(GANLoss):
    """Base of losses that add task terms to a registered adversarial loss (``adversarial``
    names it; its ``d_loss``/``g_loss`` are used). Subclasses list their weights in
    ``_weights`` so they are validated (>= 0) in one place.

    The penalty weights ``r1_weight``/``r2_weight``/``gp_weight`` left at None take the
    adversarial loss's own defaults (so ``adversarial="wasserstein"`` trains with its
    gradient penalty, ``gp_weight=10``); a number overrides them.

    Args:
        adversarial: the registered loss whose adversarial terms and default penalty
            weights are used.
        r1_weight: gamma of R1 on real data (adds ``gamma / 2 * R1``); None takes the
            ``adversarial`` loss's default.
        r2_weight: gamma of R2 on generated data; None takes the ``adversarial`` loss's
            default.
        gp_weight: lambda of the WGAN-GP term; None takes the ``adversarial`` loss's default.
        reg_every: lazy regularisation: the penalties are computed on one D update in
            ``reg_every``, weighted ``reg_every`` times (:class:`GANLoss`).
    """

    adversarial: str = "non_saturating"
    r1_weight: float | None = None  # type: ignore[assignment]
    r2_weight: float | None = None  # type: ignore[assignment]
    gp_weight: float | None = None  # type: ignore[assignment]

    def __post_init__(self) -> None:
        defaults = LOSSES.get(self.adversarial)()  # unknown names fail here, listing the known
        for name in ("r1_weight", "r2_weight", "gp_weight"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, getattr(defaults, name))
        super().__post_init__()
        # built once (unknown names fail here, listing the known ones), not on every step
        object.__setattr__(self, "_adv", LOSSES.get(self.adversarial)())

    def d_loss(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """The ``adversarial`` loss's ``d_loss`` (scalar)."""
        return self._adv.d_loss(real_logits, fake_logits)

    def g_loss(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
        """The ``adversarial`` loss's ``g_loss`` (scalar), without the task terms."""
        return self._adv.g_loss(fake_logits, real_logits)

    @property
    def needs_real_logits(self) -> bool:  # type: ignore[override]
        """Whether the ``adversarial`` loss's ``g_loss`` reads D's logits on the real batch."""
        return self._adv.needs_real_logits

    def overfit_signal(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """The ``adversarial`` loss's adaptive-augmentation signal r_t (scalar tensor)."""
        return self._adv.overfit_signal(real_logits, fake_logits)


@LOSSES.register("pix2pix")
@dataclass(frozen=True)
class Pix2Pix(WithAdversarial):
    """Paired image-to-image loss (Isola et al. 2017, eq. 4):

    G* = arg min_G max_D adv_weight * L_adv(G, D) + l1_weight * E[||y - G(x)||_1]
         (+ ssim_weight * (1 - SSIM) + perceptual_weight * perceptual distance).

    ``adversarial`` names the registered loss giving the adversarial terms (its penalties
    apply too); the reconstruction terms compare G's output with the paired target. The
    perceptual distance is measured on the shipped domain encoder's feature maps
    (:func:`medgan.metrics.domain.perceptual_distance`; 2D images).

    Args:
        l1_weight: weight of the mean absolute error between G's output and the target,
            both in [-1, 1] (100 in Isola et al.).
        ssim_weight: weight of ``1 - SSIM`` (data range 2, for [-1, 1] images); 0 = off.
        perceptual_weight: weight of the perceptual distance (2D images only); 0 = off
            (and the encoder is not loaded).
        adv_weight: weight of G's adversarial term (1 in Isola et al.); 0 trains G on the
            reconstruction terms alone (the L1-only baseline of an ablation: D is not run
            in G's update, and what it learns is unused).
        adversarial: as in :class:`WithAdversarial`; r1_weight, r2_weight, gp_weight and
            reg_every too.
    """

    l1_weight: float = 100.0
    ssim_weight: float = 0.0
    perceptual_weight: float = 0.0
    adv_weight: float = 1.0
    _weights: ClassVar[tuple[str, ...]] = (
        "l1_weight",
        "ssim_weight",
        "perceptual_weight",
        "adv_weight",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        encoder = None
        if self.perceptual_weight:
            from medgan.metrics.domain import DomainEncoderFeatures

            encoder = DomainEncoderFeatures().net  # frozen, eval mode
        object.__setattr__(self, "_encoder", encoder)

    def generator_objective(
        self,
        d: nn.Module,
        real: Tensor | None,
        fake: Tensor,
        cond: Cond = None,
        g_net: nn.Module | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        if real is None:
            raise ValueError("pix2pix needs the paired target image")
        if self.adv_weight:
            adv, logs = super().generator_objective(d, real, fake, cond)
            total = self.adv_weight * adv
        else:
            total, logs = fake.new_zeros((), dtype=torch.float32), {}
        l1 = _l1(fake, real)
        total = total + self.l1_weight * l1
        logs["l1"] = l1.detach()
        if self.ssim_weight:
            from medgan.metrics.image_quality import ssim

            s = ssim(fake.float(), real.float(), data_range=2.0)
            total = total + self.ssim_weight * (1 - s.float())
            logs["ssim"] = s.detach().float()
        if self._encoder is not None:
            from medgan.metrics.domain import perceptual_distance

            if fake.dim() != 4:
                raise ConfigError("pix2pix perceptual_weight works on 2D images (N, C, H, W)")
            p = perceptual_distance(self._encoder.to(fake.device), fake, real)
            total = total + self.perceptual_weight * p
            logs["perceptual"] = p.detach()
        return total, logs


@LOSSES.register("cycle_gan")
@dataclass(frozen=True)
class CycleGAN(WithAdversarial):
    """Unpaired translation loss (Zhu et al. 2017, eqs. 1-3 and the identity term of sec. 5.2):

    L = L_adv(G_AB, D_B) + L_adv(G_BA, D_A)
        + cycle_weight * (E||G_BA(G_AB(a)) - a||_1 + E||G_AB(G_BA(b)) - b||_1)
        + identity_weight * (E||G_AB(b) - b||_1 + E||G_BA(a) - a||_1),

    here with every pair of terms averaged instead of summed (the whole objective / 2).
    The adversarial terms default to least squares, as in the paper (sec. 4, "Training
    details"); ``adversarial`` picks any registered loss.
    Needs a :class:`~medgan.models.cycle.CycleGenerator` and a
    :class:`~medgan.models.cycle.CycleDiscriminator`, with batches ``cat([a, b], 1)``
    (:class:`~medgan.batches.Unpaired`). The paper's weights are cycle 10 and identity
    0.5 * 10; the identity term needs domains with equal channel counts (set it to 0
    otherwise).

    Args:
        cycle_weight: weight of the cycle-consistency L1 term (lambda = 10 in Zhu et al.).
        identity_weight: weight of the identity L1 term; 0 = off (required when the two
            domains' channel counts differ).
        adversarial: as in :class:`WithAdversarial` (default least squares); r1_weight,
            r2_weight, gp_weight and reg_every too.
    """

    adversarial: str = "least_squares"
    cycle_weight: float = 10.0
    identity_weight: float = 5.0
    _weights: ClassVar[tuple[str, ...]] = ("cycle_weight", "identity_weight")

    def generator_objective(
        self,
        d: nn.Module,
        real: Tensor | None,
        fake: Tensor,
        cond: Cond = None,
        g_net: nn.Module | None = None,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        total, logs = super().generator_objective(d, real, fake, cond)
        if real is None or g_net is None or not hasattr(g_net, "split"):
            raise ConfigError(
                "cycle_gan needs the real batch cat([a, b], 1) and a cycle_generator "
                "(use medgan.batches.Unpaired and models 'cycle_generator'/'cycle_discriminator')"
            )
        a, b = g_net.split(real)
        fake_a, fake_b = g_net.split(fake)
        rec_a, rec_b = g_net.split(g_net(fake_a, fake_b))  # (G_BA(G_AB a), G_AB(G_BA b))
        cycle = 0.5 * (_l1(rec_a, a) + _l1(rec_b, b))
        total = total + self.cycle_weight * cycle
        logs["cycle"] = cycle.detach()
        if self.identity_weight:
            if a.shape[1] != b.shape[1]:
                raise ConfigError(
                    f"cycle_gan identity term needs equal channel counts, got {a.shape[1]} "
                    f"and {b.shape[1]}; set identity_weight=0"
                )
            idt_a, idt_b = g_net.split(g_net(b, a))  # (G_BA(a), G_AB(b))
            identity = 0.5 * (_l1(idt_a, a) + _l1(idt_b, b))
            total = total + self.identity_weight * identity
            logs["identity"] = identity.detach()
        return total, logs
