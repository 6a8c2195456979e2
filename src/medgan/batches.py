"""Turn a data-loader batch into what G and D consume: one small hook, many GAN kinds.

The trainer calls an adapter ``adapter(batch, sample_noise) -> GANInputs`` for every
update; the same loop therefore trains unconditional, class-conditional, paired
image-to-image and unpaired (CycleGAN) GANs, in 2D and 3D. The adapter owns the noise:
it draws z with ``sample_noise`` and marks where it put it (``GANInputs.noise_arg``), so
the trainer redraws z for the generator update without knowing G's signature.

Batch forms every adapter reads (through :func:`unpack`), as a DataLoader collates them:

- a tensor ``(N, C, *spatial)`` of images;
- a tuple or list ``(first[, second])``: ``(images, labels)``, ``(source, target)``,
  ``(a, b)``;
- a dict (MONAI style): ``batch[first_key]`` and ``batch[second_key]``; the keys are
  arguments of the adapter (``image_key``/``label_key``, ``source_key``/``target_key``,
  ``a_key``/``b_key``);
- torchio: a value that is itself an image dict ``{"data": tensor, "affine": ...}`` (what
  a DataLoader makes of a ``tio.Subject``'s ``tio.ScalarImage``; ``tio.DATA == "data"``)
  stands for its ``"data"`` tensor;
- a list of such dicts (MONAI ``num_samples`` transforms, e.g.
  ``RandSpatialCropSamplesd(num_samples=2)``, make each item a list of dicts, which
  ``default_collate`` turns into a list of batched dicts): their tensors are concatenated
  along the batch axis, so a batch holds ``N * num_samples`` images.

Tensor subclasses (MONAI's ``MetaTensor``) are read as plain tensors: the GAN needs the
array, not the metadata (and metadata on every intermediate tensor slows each op down).
Floating-point images are cast to float32; intensities must already be in [-1, 1] (e.g.
MONAI ``ScaleIntensityd(minv=-1, maxv=1)``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from medgan.errors import ConfigError

NoiseFn = Callable[[int], Tensor]

#: the accepted batch forms, named in every error about a batch of another form
BATCH_FORMS = (
    "a tensor (N, C, *spatial), a tuple (images[, labels]) or (source, target), a dict "
    "(e.g. MONAI) holding the images under the adapter's key, a torchio batch "
    "{name: {'data': tensor, ...}}, or a list of such dicts (MONAI num_samples crops)"
)


@dataclass(frozen=True)
class GANInputs:
    """What one batch gives the generator and the discriminator.

    Args:
        real: target images ``(N, C, *spatial)`` in [-1, 1] (or points ``(N, D)``): what
            D sees as real and G should make.
        g_args: positional arguments of the generator, ``G(*g_args)``.
        cond: what D is conditioned on (labels ``(N,)``, a source image ``(N, C,
            *spatial)``), or None for an unconditioned D; D is called through
            :func:`call_discriminator`.
        noise_arg: the index in ``g_args`` of the noise z ``(N, latent_dim)`` the adapter
            drew with ``sample_noise``, which :meth:`renoise` redraws (the generator
            update uses fresh z); None when G takes no noise (paired, unpaired and
            segmentation adapters).
    """

    real: Tensor
    g_args: tuple[Any, ...]
    cond: Any = None
    noise_arg: int | None = None

    def renoise(self, sample_noise: NoiseFn) -> GANInputs:
        """These inputs with ``g_args[noise_arg]`` replaced by ``sample_noise(N)``; the
        same inputs when G takes no noise (``noise_arg`` None). ``sample_noise``: n -> z
        ``(n, latent_dim)`` (the trainer's noise generator)."""
        if self.noise_arg is None:
            return self
        args = list(self.g_args)
        args[self.noise_arg] = sample_noise(args[self.noise_arg].shape[0])
        return dataclasses.replace(self, g_args=tuple(args))

    def first(self, n: int) -> GANInputs:
        """The first ``n`` samples: every tensor in ``real``, ``g_args`` and ``cond`` cut
        along the batch axis (other values kept)."""

        def cut(v: Any) -> Any:
            return v[:n] if isinstance(v, Tensor) else v

        return dataclasses.replace(
            self, real=self.real[:n], g_args=tuple(map(cut, self.g_args)), cond=cut(self.cond)
        )


def call_discriminator(d: Callable[..., Any], x: Tensor, cond: Any = None) -> Any:
    """``d(x, cond)``, or ``d(x)`` when ``cond`` is None: the one way D is called with
    :attr:`GANInputs.cond` (an unconditioned D need not accept a second argument). Returns
    what D returns; :func:`medgan.losses.discriminator_logits` reads the logits from it.

    Args:
        d: the discriminator (any callable).
        x: D's input, images ``(N, C, *spatial)`` in [-1, 1] (or points ``(N, D)``).
        cond: class labels ``(N,)``, a conditioning image, or None.
    """
    return d(x) if cond is None else d(x, cond)


class BatchAdapter(Protocol):
    """``adapter(batch, sample_noise) -> GANInputs``: ``batch`` as the data loader makes it
    (on the training device); ``sample_noise(n)`` draws z ``(n, latent_dim)`` from the
    trainer's noise generator. An adapter that feeds noise to G sets ``noise_arg``."""

    def __call__(self, batch: Any, sample_noise: NoiseFn) -> GANInputs: ...


def unpack(batch: Any, first_key: str = "image", second_key: str = "label") -> tuple[Tensor, Any]:
    """``(first, second)`` of a batch in any of the module's forms; ``second`` is None when
    the batch has only one part (a tensor, a 1-tuple, a dict without ``second_key``).

    ``first`` is a plain float32 tensor ``(N, C, *spatial)`` (or ``(N, D)`` points);
    ``second`` is a tensor (labels ``(N,)`` or a second image) or what the batch holds.
    Raises ConfigError naming the type found and the accepted forms.

    Args:
        batch: a batch as a DataLoader collates it (the forms of the module docstring).
        first_key: the key of the first part (the images) in dict batches.
        second_key: the key of the second part (labels, a target image) in dict batches.
    """
    if isinstance(batch, Tensor):
        return _image(batch, "the batch"), None
    if isinstance(batch, Mapping):
        if first_key not in batch:
            raise ConfigError(
                f"the batch dict has keys {sorted(map(str, batch))} but no {first_key!r}: name "
                "the image keys on the adapter, e.g. NoiseToImage(image_key=...), "
                "Paired(source_key=..., target_key=...), Unpaired(a_key=..., b_key=...)"
            )
        second = _value(batch[second_key]) if second_key in batch else None
        return _image(batch[first_key], f"batch[{first_key!r}]"), second
    if isinstance(batch, list | tuple) and batch and all(isinstance(b, Mapping) for b in batch):
        parts = [unpack(b, first_key, second_key) for b in batch]  # num_samples crops
        return torch.cat([p[0] for p in parts]), _cat([p[1] for p in parts])
    if isinstance(batch, list | tuple) and 1 <= len(batch) <= 2:
        second = _value(batch[1]) if len(batch) == 2 else None
        return _image(batch[0], "batch[0]"), second
    raise ConfigError(f"a batch must be {BATCH_FORMS}; got {_describe(batch)}")


def _value(x: Any) -> Any:
    """A torchio image dict stands for its data; tensor subclasses become plain tensors."""
    if isinstance(x, Mapping) and "data" in x:
        x = x["data"]
    return x.as_subclass(Tensor) if isinstance(x, Tensor) else x


def _image(x: Any, where: str) -> Tensor:
    x = _value(x)
    if not isinstance(x, Tensor):
        raise ConfigError(
            f"{where} should hold the images as a tensor, got {_describe(x)}; a batch must "
            f"be {BATCH_FORMS}"
        )
    return x.float() if x.is_floating_point() and x.dtype != torch.float32 else x


def _cat(parts: list[Any]) -> Any:
    """Second parts of several dicts, joined along the batch axis (None when all are)."""
    if all(p is None for p in parts):
        return None
    if any(p is None for p in parts):
        raise ConfigError("some dicts of a list-of-dicts batch lack the second key, some have it")
    return torch.cat([torch.as_tensor(p) for p in parts])


def _describe(x: Any) -> str:
    kind = f"{type(x).__module__}.{type(x).__qualname__}".removeprefix("builtins.")
    if isinstance(x, list | tuple):
        inner = ", ".join(type(v).__name__ for v in x[:3]) + (", ..." if len(x) > 3 else "")
        return f"a {kind} of {len(x)} ({inner})"
    return f"a {kind}"


class NoiseToImage:
    """Unconditional or class-conditional GANs: G(z[, y]), D(x[, y]).

    Args:
        conditional: use labels (G(z, y), D(x, y)); labels present in the data are
            otherwise ignored.
        image_key: where dict batches hold the images ``(N, C, *spatial)`` in [-1, 1].
        label_key: where dict batches hold the integer class labels ``(N,)``.
    """

    def __init__(
        self, conditional: bool = False, image_key: str = "image", label_key: str = "label"
    ) -> None:
        self.conditional = conditional
        self.image_key, self.label_key = image_key, label_key

    @classmethod
    def for_generator(cls, generator: Any) -> NoiseToImage:
        """The adapter a generator asks for by medgan's generator contract: a noise-to-image
        G has an int ``latent_dim`` (the width of z), and a class-conditional one also a
        ``num_classes > 0`` (then G(z, y) and D(x, y)). A model without ``latent_dim``
        (e.g. a segmenter, whose ``num_classes`` counts its outputs) is unconditional here;
        pass an adapter to the Trainer to decide otherwise. ``generator``: the G network
        whose attributes are read."""
        takes_noise = getattr(generator, "latent_dim", None) is not None
        return cls(conditional=takes_noise and bool(getattr(generator, "num_classes", 0)))

    def __call__(self, batch: Any, sample_noise: NoiseFn) -> GANInputs:
        real, labels = unpack(batch, self.image_key, self.label_key)
        z = sample_noise(real.shape[0])
        if not self.conditional:
            return GANInputs(real, (z,), None, noise_arg=0)
        if labels is None:
            raise ConfigError(
                "a conditional GAN needs (image, label) batches (or dicts with the "
                f"label_key {self.label_key!r}); the data has no labels"
            )
        labels = torch.as_tensor(labels, device=real.device).long()
        return GANInputs(real, (z, labels), labels, noise_arg=0)


class Paired:
    """Image-to-image GANs (pix2pix): batches ``(source, target)``; G(source), D(x, source).

    Args:
        source_key: where dict batches hold the source images (G's input).
        target_key: where dict batches hold the target images (what G should make).
    """

    def __init__(self, source_key: str = "source", target_key: str = "target") -> None:
        self.source_key, self.target_key = source_key, target_key

    def __call__(self, batch: Any, sample_noise: NoiseFn) -> GANInputs:
        source, target = unpack(batch, self.source_key, self.target_key)
        if target is None:
            raise ConfigError(
                "paired training needs (source, target) batches (or dicts with the keys "
                f"{self.source_key!r} and {self.target_key!r})"
            )
        return GANInputs(_image(target, "the target"), (source,), source)


class Unpaired:
    """Unpaired translation (CycleGAN): batches ``(a, b)`` of images from two domains with the
    same spatial size; real = ``cat([a, b], 1)``, G(a, b), D(x) unconditioned.

    Args:
        a_key: where dict batches hold the images of domain A.
        b_key: where dict batches hold the images of domain B.
    """

    def __init__(self, a_key: str = "a", b_key: str = "b") -> None:
        self.a_key, self.b_key = a_key, b_key

    def __call__(self, batch: Any, sample_noise: NoiseFn) -> GANInputs:
        a, b = unpack(batch, self.a_key, self.b_key)
        if b is None:
            raise ConfigError(
                "unpaired training needs (domain A, domain B) batches (or dicts with the "
                f"keys {self.a_key!r} and {self.b_key!r})"
            )
        b = _image(b, "domain B")
        if a.shape[0] != b.shape[0] or a.shape[2:] != b.shape[2:]:
            raise ConfigError(
                f"domain A and B batches must match in size and spatial shape, got "
                f"{tuple(a.shape)} and {tuple(b.shape)}"
            )
        return GANInputs(torch.cat([a, b], 1), (a, b), None)
