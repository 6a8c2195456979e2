"""A seeded, shardable, resumable sampler: the data order is a pure function of
(seed, epoch, rank, world size), and a position inside an epoch can be restored."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class ResumableSampler(Sampler[int]):
    """Yields dataset indices for one epoch of one rank, starting at ``start``.

    The permutation of epoch ``e`` is ``randperm(n, seed + e)``; rank ``r`` of ``w`` takes
    every ``w``-th index from position ``r`` (the permutation is padded by wrapping so all
    ranks see the same number of samples, as DistributedSampler does).

    Args:
        n: the dataset's length (>= 1).
        seed: with the epoch, seeds the permutation.
        shuffle: permute each epoch; False yields ``0..n-1`` in order.
        rank: this process's rank, in ``[0, world_size)``.
        world_size: the number of processes sharing the data.
    """

    def __init__(
        self, n: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1
    ) -> None:
        if n < 1:
            raise ValueError("cannot sample from an empty dataset")
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.rank, self.world_size = rank, world_size
        self.epoch, self.start = 0, 0

    def set_position(self, epoch: int, start: int) -> None:
        """The next iteration yields epoch ``epoch``'s order for this rank from position
        ``start`` (the count of indices of that epoch already consumed)."""
        self.epoch, self.start = epoch, start

    def per_rank(self) -> int:
        """Indices per rank in a full epoch: ``ceil(n / world_size)``."""
        return -(-self.n // self.world_size)  # ceil

    def _order(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        total = self.per_rank() * self.world_size
        order = (order * (total // self.n + 1))[:total]
        return order[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[int]:
        return iter(self._order()[self.start :])

    def __len__(self) -> int:
        return self.per_rank() - self.start


class EndlessBatchSampler(Sampler[list[int]]):
    """Batches of ``batch_size`` indices forever, epoch after epoch, from a position.

    Epoch ``e`` is :class:`ResumableSampler`'s order for that epoch cut into
    ``batches_per_epoch()`` full batches (the incomplete tail is dropped, as with
    ``drop_last=True``). One DataLoader over this sampler lives for the whole run, so its
    workers are not restarted at every epoch; the trainer counts the batches it consumes,
    so ``(epoch, batch)`` always names the next batch, however far the workers prefetch.

    Args:
        sampler: gives each epoch's order for this rank (its own position is reset).
        batch_size: indices per batch.
    """

    def __init__(self, sampler: ResumableSampler, batch_size: int) -> None:
        self.sampler, self.batch_size = sampler, batch_size
        self.epoch, self.batch = 0, 0

    def batches_per_epoch(self) -> int:
        """Full batches per epoch on this rank: ``per_rank() // batch_size``."""
        return self.sampler.per_rank() // self.batch_size

    def set_position(self, epoch: int, batch: int) -> None:
        """The next iteration starts at batch ``batch`` (0-based) of epoch ``epoch``."""
        self.epoch, self.batch = epoch, batch

    def __iter__(self) -> Iterator[list[int]]:
        epoch, first, bs = self.epoch, self.batch, self.batch_size
        while True:
            self.sampler.set_position(epoch, 0)
            order = list(self.sampler)
            for b in range(first, self.batches_per_epoch()):
                yield order[b * bs : (b + 1) * bs]
            epoch, first = epoch + 1, 0
