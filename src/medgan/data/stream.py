"""Where the training batches come from, and what resuming a run means for each source.

=======================  ====================================  ==================================
training data            who makes the batches                 what a resumed run sees
=======================  ====================================  ==================================
map-style ``Dataset``    medgan: :class:`ResumableSampler`,    bit-exact: the order is a function
(or a tensor of items)   ``config.batch_size`` (full batches)  of (seed, epoch, rank) and the
                         and ``config.num_workers``            position indexes it
``IterableDataset``      medgan: ``DataLoader(batch_size,      the pass restarts from the random
                         drop_last=True, num_workers)``        state it began with; the batches
                                                               consumed in it are read again and
                                                               skipped (see below)
``DataLoader``           the user's: its ``collate_fn``,       as for ``IterableDataset``
                         sampler, batch size and workers
=======================  ====================================  ==================================

The stream keeps its position ``(epoch, batch)``, the next batch to consume, and hands out
batches on the training device: :meth:`DataStream.peek` looks at the next one without
consuming it (a check before training, sample grids on a stream that cannot be indexed),
:meth:`DataStream.next` consumes it, :meth:`DataStream.seek` moves (resume, rollback).

For map-style data the resumed batches are the saved run's when each item is a function of
its index, or also of torch's, numpy's and python's global random states read in this
process (``num_workers=0``; worker seeds depend on where the loader was started). MONAI
random transforms keep their own ``RandomState``, which no checkpoint stores.

A *pass* is one ``iter()`` over the loader, i.e. an epoch; ``(epoch, batch)`` counts
passes and the batches consumed in the current one. For the last two forms medgan cannot
index the stream, so at the start of every pass it records the global random states
(torch, numpy, python) and the states of the loader's ``torch.Generator`` objects; a
resumed run sets those back, starts the pass, draws and discards the batches the saved run
had consumed (they are loaded, not trained on: this costs their loading time once), then
puts back the checkpoint's random states. The batches that follow are those of the saved
run when the stream is a function of those states: a shuffling sampler, worker seeds
(torch, numpy and python are reseeded in each worker from the loader's base seed) and
torch-based random transforms (torchio) in workers. Randomness kept elsewhere is not
restored: e.g. MONAI random transforms draw from their own ``RandomState``, and random
transforms in the main process (``num_workers=0``) that interleave with the model's draws
(dropout) see other states while the consumed batches are re-read. An endless stream
re-reads everything consumed since the start, so give it passes of a bounded length. A
sampler or data set with ``set_epoch(epoch)`` (``DistributedSampler``) is told each pass.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, IterableDataset, default_collate

from medgan import checkpoint as ckpt_io
from medgan.data.sampling import EndlessBatchSampler, ResumableSampler
from medgan.errors import ConfigError

log = logging.getLogger(__name__)

_END = object()
_MEMORY_FORMATS = {4: torch.channels_last, 5: torch.channels_last_3d}


class TensorItems(Dataset):
    """The items ``data[i]`` of a tensor ``data`` ``(N, ...)`` as a map-style data set."""

    def __init__(self, data: Tensor) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> Tensor:
        return self.data[i]


class DataStream:
    """Endless training batches from a data set or loader, from a resumable position.

    Args:
        data: a map-style data set (``__getitem__`` and ``__len__``, e.g. a torch, MONAI
            ``Dataset``/``CacheDataset`` or torchio ``SubjectsDataset``), a tensor
            ``(N, ...)`` of items, an ``IterableDataset``, or a ``DataLoader`` (used as it
            is: its collate_fn, sampler, batch size and workers; e.g. over a torchio
            ``Queue``). See the module docstring for what resuming means for each.
        batch_size: items per batch medgan makes (unused for a DataLoader).
        seed: seeds the data order (map-style) and the worker seeds of medgan's loaders.
        rank: this process's rank; with ``world_size``, its share of a map-style data set.
        world_size: number of processes. A DataLoader or IterableDataset is not sharded by
            medgan: give it a ``DistributedSampler`` or make it shard by rank itself.
        num_workers: worker processes of medgan's loaders (unused for a DataLoader).
        pin_memory: pin the batches of medgan's loaders (for CUDA training).
        device: where :meth:`peek`, :meth:`next` and :meth:`collate` put every tensor of a
            batch (containers rebuilt, other values kept).
        channels_last: 4D/5D tensors of a batch in channels-last(-3d) memory order.

    Attributes:
        dataset: the data set (a DataLoader's ``dataset``).
        loader: the DataLoader that is iterated pass after pass (the user's, or medgan's
            for an IterableDataset); None for a map-style data set.
        sampler, batch_sampler: medgan's :class:`ResumableSampler` and
            :class:`EndlessBatchSampler` for a map-style data set, else None.
        exact: True when resumption is bit-exact by construction (map-style data), which
            is also when items can be indexed (:meth:`collate`).
        epoch, batch: the position: the next batch to consume is batch ``batch`` of pass
            ``epoch`` (counted from 0).
    """

    def __init__(
        self,
        data: Any,
        *,
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
        pin_memory: bool = False,
        device: torch.device | str = "cpu",
        channels_last: bool = False,
    ) -> None:
        if isinstance(data, Tensor):
            data = TensorItems(data)
        self.seed, self.rank = seed, rank
        self.num_workers, self.pin_memory = num_workers, pin_memory
        self.device, self.channels_last = torch.device(device), channels_last
        self.epoch, self.batch = 0, 0
        self._upcoming: Peekable | None = None
        self.sampler: ResumableSampler | None = None
        self.batch_sampler: EndlessBatchSampler | None = None
        self.loader: DataLoader | None = None
        self._pass_states: dict[int, dict[str, Any]] = {}
        if isinstance(data, DataLoader):
            self.dataset, self.loader = data.dataset, data
            if data.batch_size is not None and data.batch_size != batch_size:
                log.warning(
                    "the DataLoader makes batches of %d but config.batch_size is %d, which "
                    "sets the EMA half-life's images per step; make them equal",
                    data.batch_size,
                    batch_size,
                )
        elif isinstance(data, IterableDataset):
            self.dataset = data
            self.loader = DataLoader(
                data,
                batch_size=batch_size,
                drop_last=True,  # full batches, as for map-style data
                num_workers=num_workers,
                pin_memory=pin_memory,
                generator=torch.Generator().manual_seed(hash((seed, rank)) & 0x7FFF_FFFF),
            )
        elif hasattr(data, "__getitem__") and hasattr(data, "__len__"):
            self.dataset = data
            if len(data) == 0:
                raise ConfigError("the training data set is empty")
            self.sampler = ResumableSampler(len(data), seed, True, rank, world_size)
            self.batch_sampler = EndlessBatchSampler(self.sampler, batch_size)
            if self.sampler.per_rank() < batch_size:
                raise ConfigError(
                    f"batch_size={batch_size} is larger than the {self.sampler.per_rank()} "
                    "samples each process sees per epoch; lower batch_size or add data"
                )
        else:
            raise ConfigError(
                f"training data must be a map-style Dataset (__getitem__ and __len__), a "
                f"tensor of items, an IterableDataset or a DataLoader; got "
                f"{type(data).__module__}.{type(data).__qualname__} (wrap a generator in an "
                "IterableDataset whose __iter__ starts a fresh pass)"
            )
        self.exact = self.loader is None
        if not self.exact:
            log.info(
                "training on a %s: medgan does not index it, so a resumed run restarts the "
                "current pass from the random states it began with and re-reads (skips) the "
                "batches consumed in it; exact only when the stream depends on no other "
                "randomness (see medgan.data.stream)",
                type(data).__name__,
            )
            if world_size > 1:
                log.warning(
                    "%d processes train on a %s: medgan does not shard it, so each process "
                    "reads the whole stream unless its sampler (DistributedSampler) or the "
                    "data set itself splits it by rank",
                    world_size,
                    type(data).__name__,
                )

    # ------------------------------------------------------------------ position

    def peek(self) -> Any:
        """The next batch, on the device, without consuming it: :meth:`next` returns it."""
        if self._upcoming is None:
            self._upcoming = Peekable(self.batches(self.epoch, self.batch))
        return self._upcoming.peek()[0]

    def next(self) -> Any:
        """Consume the next batch (on the device); the position then names the one after."""
        self.peek()
        assert self._upcoming is not None
        batch, (self.epoch, self.batch) = next(self._upcoming)
        return batch

    def seek(self, epoch: int, batch: int) -> None:
        """Continue from batch ``batch`` of pass ``epoch`` (brought in range by
        :meth:`normalise`); the peeked batch and those the workers prefetched are dropped."""
        self.epoch, self.batch = self.normalise(epoch, batch)
        self._upcoming = None

    def batches(self, epoch: int, batch: int) -> Iterator[tuple[Any, tuple[int, int]]]:
        """Endless ``(batch on the device, position after it)`` from batch ``batch`` of pass
        ``epoch`` (both from 0), the position naming the next batch to consume."""
        it = self._indexed(epoch, batch) if self.exact else self._passes(epoch, batch)
        for b, position in it:
            yield self.to_device(b), position

    # ------------------------------------------------------------------ items

    def collate(self, indices: Iterable[int], dataset: Any = None) -> Any:
        """The items ``indices`` of ``dataset`` (default: the training data set, which must
        then be map-style) collated into one batch on the device."""
        data = self.dataset if dataset is None else dataset
        if dataset is None and not self.exact:
            raise ConfigError(
                f"the training {type(data).__name__} cannot be indexed: read its next batch "
                "(peek) or pass a map-style data set"
            )
        return self.to_device(default_collate([data[int(i)] for i in indices]))

    def to_device(self, batch: Any) -> Any:
        """``batch`` with every tensor in it on the device (containers rebuilt, other values
        kept); 4D/5D tensors channels-last when :attr:`channels_last` is set."""
        if isinstance(batch, Tensor):
            batch = batch.to(self.device, non_blocking=True)
            if self.channels_last and batch.dim() in (4, 5):
                batch = batch.contiguous(memory_format=_MEMORY_FORMATS[batch.dim()])
            return batch
        if isinstance(batch, dict):  # also torchio's Subject and Image (dict subclasses)
            return {k: self.to_device(v) for k, v in batch.items()}
        if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple
            return type(batch)(*(self.to_device(v) for v in batch))
        if isinstance(batch, list | tuple):
            return type(batch)(self.to_device(v) for v in batch)
        return batch

    # ------------------------------------------------------------------ checkpoints

    def normalise(self, epoch: int, batch: int) -> tuple[int, int]:
        """A stored position (batch ``batch`` of pass ``epoch``) in range: an older format
        could store ``batch`` equal to the batches per epoch of a map-style data set; it is
        carried into the epoch."""
        if self.batch_sampler is None:
            return epoch, batch
        extra, batch = divmod(batch, self.batch_sampler.batches_per_epoch())
        return epoch + extra, batch

    def state_dict(self) -> dict[str, Any] | None:
        """What a checkpoint needs besides the position :attr:`epoch`, :attr:`batch`: the
        random states the current pass began with (None for map-style data or before the
        pass began)."""
        state = self._pass_states.get(self.epoch)
        return None if state is None else {"epoch": self.epoch, **state}

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Restore ``state``, :meth:`state_dict`'s output (None: nothing recorded)."""
        if state is not None and not self.exact:
            self._pass_states = {state["epoch"]: {k: state[k] for k in ("rng", "generators")}}

    # ------------------------------------------------------------------ map-style

    def _indexed(self, epoch: int, batch: int) -> Iterator[tuple[Any, tuple[int, int]]]:
        """One DataLoader over medgan's endless batch sampler, living across epochs."""
        assert self.batch_sampler is not None
        self.batch_sampler.set_position(epoch, batch)
        # A private generator seeds the workers, so building a loader never consumes
        # global RNG state (which would break bit-exact resumption).
        pos_seed = (self.seed, self.rank, epoch, batch)
        loader = DataLoader(
            self.dataset,
            batch_sampler=self.batch_sampler,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            generator=torch.Generator().manual_seed(hash(pos_seed) & 0x7FFF_FFFF),
        )
        per_epoch = self.batch_sampler.batches_per_epoch()
        for b in loader:
            batch += 1
            if batch >= per_epoch:
                epoch, batch = epoch + 1, 0
            yield b, (epoch, batch)

    # ------------------------------------------------------------------ streams

    def _passes(self, epoch: int, batch: int) -> Iterator[tuple[Any, tuple[int, int]]]:
        """Pass after pass over ``self.loader``; a pass started mid-way is replayed."""
        consumed = batch
        while True:
            self._set_epoch(epoch)
            it = self._replay(epoch, consumed) if consumed else self._start(epoch)
            n = consumed
            for b in it:
                n += 1
                yield b, (epoch, n)
            if n == 0:
                raise ConfigError(
                    f"the training {type(self.dataset).__name__} yielded no batch in a whole "
                    "pass (with drop_last, fewer items than batch_size); give it more data"
                )
            epoch, consumed = epoch + 1, 0
            self._pass_states = {k: v for k, v in self._pass_states.items() if k >= epoch - 1}

    def _start(self, epoch: int) -> Iterator[Any]:
        self._pass_states[epoch] = {
            "rng": ckpt_io.rng_state(),
            "generators": [g.get_state() for g in self._generators()],
        }
        return iter(self.loader)

    def _replay(self, epoch: int, consumed: int) -> Iterator[Any]:
        """An iterator over pass ``epoch`` after its first ``consumed`` batches, started
        from the random states the pass began with; the current states are kept."""
        now = ckpt_io.rng_state()
        state = self._pass_states.get(epoch)
        if state is None:
            log.warning(
                "no random state was recorded for pass %d of the training data (a checkpoint "
                "from an older medgan?): it restarts from the current one, so the batches "
                "after the %d skipped may differ from the saved run's",
                epoch,
                consumed,
            )
            state = self._pass_states[epoch] = {
                "rng": now,
                "generators": [g.get_state() for g in self._generators()],
            }
        ckpt_io.set_rng_state(state["rng"])
        for g, s in zip(self._generators(), state["generators"], strict=False):
            g.set_state(s.cpu())
        log.info("resuming pass %d of the training data: re-reading %d batches", epoch, consumed)
        it = iter(self.loader)
        for i in range(consumed):
            if next(it, _END) is _END:
                log.warning(
                    "pass %d of the training data ended after %d batches, but the checkpoint "
                    "had consumed %d: the data changed; continuing with the next pass",
                    epoch,
                    i,
                    consumed,
                )
                break
        ckpt_io.set_rng_state(now)  # the model's random states are the checkpoint's
        return it

    def _generators(self) -> list[torch.Generator]:
        """The loader's own generators (worker seeds; a sampler's shuffle), in a fixed order."""
        loader = self.loader
        found: list[torch.Generator] = []
        for owner in (loader, loader.sampler, getattr(loader.batch_sampler, "sampler", None)):
            g = getattr(owner, "generator", None)
            if isinstance(g, torch.Generator) and all(g is not f for f in found):
                found.append(g)
        return found

    def _set_epoch(self, epoch: int) -> None:
        """Tell samplers and data sets that reshuffle by epoch (``set_epoch``) the pass."""
        loader = self.loader
        seen: list[Any] = []
        for owner in (
            loader.sampler,
            loader.batch_sampler,
            getattr(loader.batch_sampler, "sampler", None),
            loader.dataset,
        ):
            if callable(getattr(owner, "set_epoch", None)) and all(owner is not s for s in seen):
                seen.append(owner)
                owner.set_epoch(epoch)


class Peekable:
    """An iterator whose next item can be looked at (:meth:`peek`) without consuming it;
    ``it`` is the iterator wrapped."""

    def __init__(self, it: Iterator[Any]) -> None:
        self._it, self._head = it, _END

    def peek(self) -> Any:
        """The next item, left to be returned by the next ``next()``; StopIteration when the
        iterator is exhausted."""
        if self._head is _END:
            self._head = next(self._it)
        return self._head

    def __iter__(self) -> Peekable:
        return self

    def __next__(self) -> Any:
        item = self.peek()
        self._head = _END
        return item
