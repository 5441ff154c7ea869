"""A loader yielding a current minibatch and a memory minibatch apart, for alpha-weighted replay."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import torch
from avalanche.training.storage_policy import ExemplarsBuffer
from torch.utils.data import DataLoader, Dataset, default_collate

from ._checks import check_seed, check_size, make_generator
from .buffers import SlotBuffer
from .retrieval import RetrievalPolicy, check_retrieval, memory_size

Minibatch = list[torch.Tensor]  # Avalanche's [x, y, t]


class DualMinibatchLoader:
    """One pass over ``current_data`` per epoch; each step yields ``(current_mb, memory_mb)``.

    Both minibatches are in Avalanche's ``[x, y, t]`` form. The memory minibatch comes from the
    memory only, chosen by the retrieval policy: by default reshuffled passes over the memory
    (:class:`~avalanche_replay_ext.retrieval.RandomRetrieval`), as many as needed, so a small
    memory keeps feeding a long epoch; every memory minibatch holds
    ``min(batch_size_mem, len(memory))`` samples. It is ``None`` while the memory is empty.
    ``memory_data`` may be a dataset or an Avalanche ``ExemplarsBuffer``, read again at the start
    of every cycle of about one pass (so a buffer updated during the epoch is seen from the next
    cycle on): an Avalanche buffer's ``buffer``, or, from one of this package's buffers, only the
    samples the cycle replays (``buffer_subset``), so that a cycle costs what it replays whatever
    the buffer's size. Each cycle, and each step while a buffer is empty,
    runs its own ``DataLoader``: with ``num_workers > 0`` pass ``buffer.buffer`` instead when the
    memory does not change during the epoch, so workers start once per cycle.

    Usable in a hand-written loop::

        for (x, y, t), mem in DualMinibatchLoader(exp.dataset, storage.buffer, batch_size=32):
            loss = F.cross_entropy(model(x), y)
            if mem is not None:
                loss = loss + alpha * F.cross_entropy(model(mem[0]), mem[1])

    :param current_data: the current experience's dataset.
    :param memory_data: the replay memory: a dataset or an ``ExemplarsBuffer``.
    :param batch_size: current minibatch size.
    :param batch_size_mem: memory minibatch size; ``None`` means ``batch_size``.
    :param shuffle: shuffle the current data each epoch (the memory is always shuffled).
    :param seed: seed of the loader's own generator (``None``: drawn from the global torch RNG).
    :param num_replicas: data-parallel processes sharing the work (``torch.distributed``'s world
        size), each with a loader of the same seed; each takes its ``rank``-th share of every
        pass over the current data and over the memory, padded like ``DistributedSampler`` so
        that all get the same number of steps.
    :param rank: this process's rank, in ``[0, num_replicas)``.
    :param retrieval: which memory samples form each memory minibatch (:mod:`~avalanche_replay_ext.retrieval`,
        e.g. ``BalancedRetrieval("class")``); ``None``: a new ``RandomRetrieval()``. Policies that
        need the model (``MIRRetrieval``) raise ``ValueError``: use them in ``AlphaReplayPlugin``.
    :param dataloader_kwargs: passed to both underlying ``DataLoader`` s (``num_workers``,
        ``pin_memory``, ``collate_fn``, ...); ``drop_last`` applies to the current data only.
        The collate function defaults to ``current_data``'s own ``collate_fn``; each step's
        current and memory samples are fetched and collated together, then split (so the
        collated minibatch must be a sequence of batch-first tensors, as Avalanche's is), or
        collated apart when memory samples have another number of fields.
    """

    def __init__(
        self,
        current_data: Dataset,
        memory_data: Dataset | ExemplarsBuffer,
        batch_size: int = 32,
        batch_size_mem: int | None = None,
        shuffle: bool = True,
        seed: int | None = None,
        *,
        num_replicas: int = 1,
        rank: int = 0,
        retrieval: RetrievalPolicy | None = None,
        **dataloader_kwargs: Any,
    ) -> None:
        _check_inputs(current_data, memory_data, dataloader_kwargs)
        self.current_data, self.memory_data = current_data, memory_data
        self.batch_size = check_size("batch_size", batch_size)
        self.batch_size_mem = (
            self.batch_size if batch_size_mem is None else check_size("batch_size_mem", batch_size_mem)
        )
        self.shuffle = shuffle
        self.num_replicas = check_size("num_replicas", num_replicas)
        if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < self.num_replicas:
            raise ValueError(f"rank must be an int in [0, num_replicas={self.num_replicas}), got {rank!r}")
        self.rank = rank
        self.retrieval = check_retrieval(retrieval, model=False)
        self.retrieval.check(memory_data)
        self.generator = make_generator(check_seed(seed))
        # the DataLoaders' worker seeds: from the loader's own seed too, not from the global RNG
        self._worker_seeds = torch.Generator().manual_seed(self.generator.initial_seed() ^ 0x5EED)
        self.drop_last = bool(dataloader_kwargs.pop("drop_last", False))
        self.kwargs = dataloader_kwargs
        self.current_indices: torch.Tensor | None = None
        """Indices (into ``current_data``) of the current minibatch last yielded."""
        self.fresh_indices: torch.Tensor | None = None
        """The same without the padding repeats of a sharded pass: over all replicas, each
        sample's index appears here once per epoch (except those ``drop_last`` leaves out)."""
        self.joint: Minibatch | None = None
        """The last step's collated minibatch, current samples first: both yielded minibatches
        are views of it (a strategy can forward it whole instead of concatenating). ``None``
        when the memory's samples have other fields than the current ones (collated apart)."""
        self.memory_extras: dict[str, torch.Tensor] | None = None
        """The per-sample extras (e.g. ``logits``) a buffer of this package stores with the samples
        of the last memory minibatch, row for row (``buffer.stored_extras``, read with the memory
        at the start of the cycle); ``{}`` when it stores none, ``None`` without a memory minibatch."""

    def __len__(self) -> int:
        n = -(-len(self.current_data) // self.num_replicas)  # this replica's share, padded
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Minibatch, Minibatch | None]]:
        n = len(self.current_data)
        order, n_fresh = self._share(n, self.shuffle)
        batches = self._split(order, self.batch_size, self.drop_last)
        step = start = 0  # step index; position of its first sample in this replica's order
        while step < len(batches):  # one memory cycle per round: about one pass over the memory
            plan, data, extras = self._cycle(batches[step:])
            joint = [b.tolist() if m is None else torch.cat([b, m + n]).tolist() for b, m in plan]
            for (indices, mem), batch in zip(plan, self._loader(data, joint), strict=True):
                self.current_indices, self.fresh_indices = indices, indices[: max(0, n_fresh - start)]
                start += len(indices)
                self.memory_extras = None if mem is None else {name: e[mem] for name, e in extras.items()}
                if isinstance(batch, _Apart):  # samples with other fields than the current ones
                    self.joint = None
                    yield batch.current, batch.memory
                else:
                    k, self.joint = len(indices), batch
                    yield [v[:k] for v in batch], None if mem is None else [v[k:] for v in batch]
            step += len(plan)
        self.joint = None

    def _cycle(self, batches: list[torch.Tensor]) -> tuple[list, Dataset, dict[str, torch.Tensor]]:
        """The next memory cycle: its steps (current indices, memory positions in the memory part
        of the dataset, or None), the dataset they index (current samples, then memory ones) and
        the memory samples' extras. With one of our buffers, the memory part holds only the
        samples the cycle replays (read with the buffer's ``buffer_subset``), so a cycle costs
        what it replays, not the buffer's size."""
        is_buffer, ours = isinstance(self.memory_data, ExemplarsBuffer), isinstance(self.memory_data, SlotBuffer)
        memory = self.memory_data if ours else self.memory_data.buffer if is_buffer else self.memory_data
        if memory_size(memory) == 0:  # no memory term; a buffer may fill during the epoch: look again next step
            return [(b, None) for b in batches[: 1 if is_buffer else len(batches)]], self.current_data, {}
        steps = min(len(batches), -(-memory_size(memory) // self.batch_size_mem))
        planned = self._memory_batches(memory, steps)  # our buffers tell the policy their groups
        extras: dict[str, torch.Tensor] = {}
        if ours:
            picked = torch.cat(planned)
            extras = {name: memory.stored_extras(name, picked) for name in memory.extra_names}
            if self.kwargs.get("pin_memory") and torch.cuda.is_available():  # copied to the GPU like the samples
                extras = {name: rows.pin_memory() for name, rows in extras.items()}
            memory = memory.buffer_subset(picked)
            planned = list(torch.arange(len(picked)).split([len(b) for b in planned]))
        return list(zip(batches[:steps], planned, strict=True)), _CurrentThenMemory(self.current_data, memory), extras

    def _memory_batches(self, memory: Dataset | SlotBuffer, steps: int) -> list[torch.Tensor]:
        """This replica's memory minibatches for the next ``steps`` steps. The policy plans the
        minibatches of all replicas together (``num_replicas`` times larger; every replica draws
        the same plan) and this replica takes every ``num_replicas``-th sample of each, padded
        (as ``DistributedSampler`` does) so that every replica gets as many."""
        planned = self.retrieval.plan(memory, self.batch_size_mem * self.num_replicas, steps, self.generator)
        if self.num_replicas == 1:
            return planned
        return [_padded(batch, self.num_replicas)[self.rank :: self.num_replicas] for batch in planned]

    def _share(self, n: int, shuffle: bool) -> tuple[torch.Tensor, int]:
        """This replica's share of a pass over ``n`` samples, and how many of its first samples
        are not padding. As in ``DistributedSampler``, the pass is padded by repeating it from the
        start until every replica gets ``ceil(n / num_replicas)`` samples."""
        order = torch.randperm(n, generator=self.generator) if shuffle else torch.arange(n)
        if self.num_replicas == 1 or n == 0:
            return order, n
        total = -(-n // self.num_replicas) * self.num_replicas
        order = order.repeat(-(-total // n))[:total]
        return order[self.rank :: self.num_replicas], len(range(self.rank, n, self.num_replicas))

    @staticmethod
    def _split(order: torch.Tensor, size: int, drop_last: bool) -> list[torch.Tensor]:
        batches = list(order.split(size)) if len(order) else []
        return batches[:-1] if drop_last and batches and len(batches[-1]) < size else batches

    def _loader(self, data: Dataset, batches: list[list[int]]) -> DataLoader:
        collate = self.kwargs.get("collate_fn") or getattr(self.current_data, "collate_fn", None) or default_collate
        if isinstance(data, _CurrentThenMemory):
            collate = _JointCollate(collate)
        kwargs = {**self.kwargs, "collate_fn": collate}
        return DataLoader(data, batch_sampler=batches, generator=self._worker_seeds, **kwargs)


def _check_inputs(current_data: Any, memory_data: Any, dataloader_kwargs: dict[str, Any]) -> None:
    """Raise unless both data arguments are usable and the DataLoader kwargs leave the loader's own alone."""
    for forbidden in ("batch_size", "shuffle", "sampler", "batch_sampler", "generator"):
        if forbidden in dataloader_kwargs:
            raise TypeError(f"DualMinibatchLoader sets {forbidden} itself; it cannot be passed in dataloader_kwargs")
    if not _is_dataset(current_data):
        raise TypeError(f"current_data must be a dataset (__len__, __getitem__), got {type(current_data).__name__}")
    if not (isinstance(memory_data, ExemplarsBuffer) or _is_dataset(memory_data)):
        raise TypeError(
            "memory_data must be a dataset (__len__, __getitem__) or an ExemplarsBuffer, "
            f"got {type(memory_data).__name__}"
        )


def _padded(batch: torch.Tensor, parts: int) -> torch.Tensor:
    """``batch`` repeated from its start up to a multiple of ``parts`` samples."""
    total = -(-len(batch) // parts) * parts
    return batch.repeat(-(-total // len(batch)))[:total]


def _is_dataset(data: object) -> bool:
    return hasattr(data, "__len__") and hasattr(data, "__getitem__")


class _CurrentThenMemory(Dataset):
    """Index ``i < len(current)`` is a current sample, the rest memory samples; each comes tagged."""

    def __init__(self, current: Dataset, memory: Dataset) -> None:
        self.current, self.memory, self.n = current, memory, len(current)

    def __len__(self) -> int:
        return self.n + len(self.memory)

    def __getitem__(self, i: int) -> tuple[bool, Any]:
        return (False, self.current[i]) if i < self.n else (True, self.memory[i - self.n])


class _Apart(NamedTuple):
    current: Minibatch
    memory: Minibatch


class _JointCollate:
    """Collate a step's current and memory samples as one minibatch, current first; apart when
    their samples have different fields (e.g. a memory of tensor-minibatch samples)."""

    def __init__(self, collate: Callable[[list], Any]) -> None:
        self.collate = collate

    def __call__(self, tagged: list[tuple[bool, Any]]) -> Any:
        current = [s for is_memory, s in tagged if not is_memory]
        memory = [s for is_memory, s in tagged if is_memory]
        if memory and _fields(memory[0]) != _fields(current[0]):
            return _Apart(self.collate(current), self.collate(memory))
        return self.collate(current + memory)


def _fields(sample: Any) -> int | None:
    return len(sample) if isinstance(sample, (list, tuple)) else None
