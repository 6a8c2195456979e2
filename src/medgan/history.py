"""A history of generated images for the discriminator (Shrivastava et al. 2017, sec. 2.3;
used by CycleGAN, Zhu et al. 2017, sec. 4, with 50 images).

The discriminator is updated on a mix of the current generator's images and images of
earlier generators, so it does not forget the artefacts G made a while ago and G cannot
oscillate between them. For every image of a batch (Zhu et al.'s rule):

* while the history holds fewer than ``size`` images, the image is stored and used;
* afterwards, with probability 1/2 the image is used as it is; otherwise a stored image,
  chosen uniformly, is used in its place and the new image takes its slot.

A batch that travels as one tensor (CycleGAN's ``cat([fake_a, fake_b], 1)``) is stored item
by item, both domains together: each discriminator sees its own channels, so this is the
same as one history per domain with shared draws.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from medgan.errors import ConfigError


class FakeHistory:
    """A pool of up to ``size`` earlier generated images (see the module docstring): not the
    latest ones, but a random selection, as images that are not swapped in are never stored
    and stored ones may stay for long. It lives on the training device and goes into every
    checkpoint: ``size`` x the bytes of one generated item (50 CycleGAN pairs of 2 x 128^3
    float32 volumes are about 840 MB).

    Args:
        size: images kept (an integer >= 1; CycleGAN uses 50).
    """

    def __init__(self, size: int) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError(f"the fake-image history needs an integer size >= 1, got {size!r}")
        self.size = size
        # (size, C, *S) on the training device; slots from ``count`` on are empty (zeros)
        self.images: Tensor | None = None
        self.count = 0

    def query(self, fake: Tensor, rng: torch.Generator) -> Tensor:
        """The batch the discriminator sees instead of ``fake`` ``(N, C, *S)``: the same
        shape, each item either the new image or one from the history (which it replaces).

        Args:
            fake: the current generator's images (detached: the D step runs G without
                gradients).
            rng: draws which items are swapped and with which stored image (the trainer's
                auxiliary generator, on ``fake``'s device, whose state checkpoints keep).
        """
        fake = fake.detach()
        if self.images is None:
            self.images = fake.new_zeros((self.size, *fake.shape[1:]))
        elif self.images.shape[1:] != fake.shape[1:]:
            raise ConfigError(
                f"the fake-image history (TrainConfig.fake_history) holds images of shape "
                f"{tuple(self.images.shape[1:])}, got a batch of {tuple(fake.shape[1:])}: it "
                "needs generated images of one fixed shape (crop the data to one size, or set "
                "fake_history=0)"
            )
        n = fake.shape[0]
        # two draws per item, made for every item whatever the branch, so the number of
        # random numbers used depends only on the batch size (resume stays exact)
        swap = torch.rand(n, device=fake.device, generator=rng) < 0.5
        slot = torch.randint(0, self.size, (n,), device=fake.device, generator=rng)
        swap, slot = torch.stack([swap.long(), slot]).tolist()  # one host sync
        out = fake.clone()
        for i in range(n):  # a loop: later items may take slots earlier items just filled
            if self.count < self.size:
                self.images[self.count] = fake[i]
                self.count += 1
            elif swap[i]:
                j = slot[i]
                out[i] = self.images[j]
                self.images[j] = fake[i]
        return out

    def state_dict(self) -> dict[str, Any]:
        """The stored images (on the CPU) and how many slots are filled."""
        images = None if self.images is None else self.images[: self.count].cpu()
        return {"size": self.size, "count": self.count, "images": images}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        """Restore :meth:`state_dict`'s output, from a history of the same size (the
        trainer's checkpoint loading refuses another size before anything loads; here it is
        a ConfigError).

        Args:
            state: what :meth:`state_dict` returned.
            device: the training device the images go to.
        """
        if state["size"] != self.size:
            raise ConfigError(
                f"checkpoint has a fake-image history of {state['size']} images, this run "
                f"{self.size}"
            )
        self.count = int(state["count"])
        stored = state["images"]
        if stored is None:
            self.images = None
            return
        self.images = stored.new_zeros((self.size, *stored.shape[1:])).to(device)
        self.images[: self.count] = stored.to(device)
