"""GDumb's greedy class-balanced sampler as an Avalanche buffer."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from avalanche.benchmarks.utils import AvalancheDataset

from .._checks import check_size
from ._base import SlotBuffer


class GreedyClassBalancedBuffer(SlotBuffer):
    """The greedy class-balanced sampler of GDumb (Prabhu, Torr & Dokania, "GDumb: A Simple
    Approach that Questions Our Progress in Continual Learning", ECCV 2020, Algorithm 1).

    Samples are offered one by one, in stream order. A sample enters while the memory has room.
    When it is full, a sample of class ``y`` enters only if ``y`` holds fewer than
    ``max_size / n_seen_classes`` slots; it then takes the slot of a random sample of the
    currently largest class (the earliest seen among ties). No class ever grows past its share
    by evicting, so the memory drifts towards equal class counts.

    Works per experience (:meth:`post_adapt`), per dataset or index subset
    (:meth:`update_from_dataset`) and per tensor minibatch (:meth:`update_from_batch`), with
    samples kept by reference as in :class:`ReservoirSamplingBuffer`. Like Avalanche's balanced
    buffers it exposes one group per class, ``buffer_groups[c].buffer`` and ``buffer_datasets``,
    for ``GroupBalancedDataLoader``; ``buffer`` lists the classes in the order first seen.

    :param max_size: number of slots, a positive int.
    :param seed: seed of the buffer's own ``torch.Generator`` (which sample of the largest class
        is evicted); ``None`` draws it from the global torch RNG.
    """

    def __init__(self, max_size: int, seed: int | None = None) -> None:
        super().__init__(max_size, seed)
        self.seen_classes: dict[int, None] = {}  # insertion-ordered set
        self._groups: tuple[int, dict[int, SimpleNamespace]] | None = None  # (slots version, groups)
        self._view: tuple[int, AvalancheDataset] | None = None  # (slots version, class-ordered view)

    def _offer(self, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        labels = targets.tolist()
        draws = torch.rand(len(labels), generator=self.generator, dtype=torch.float64).tolist()
        self.n_seen += len(labels)
        size, cap = self._slots.size, self.max_size
        slot_class = self._slots.targets[:cap].copy()  # class of each slot, updated as samples enter
        classes, n_per_class = np.unique(slot_class[:size], return_counts=True)
        counts: dict[int, int] = dict.fromkeys(self.seen_classes, 0)
        counts.update(zip(classes.tolist(), n_per_class.tolist(), strict=True))
        taken: dict[int, int] = {}  # slot -> position of the offered sample now in it
        for pos, (y, u) in enumerate(zip(labels, draws, strict=True)):
            if y not in counts:
                self.seen_classes[y] = None
                counts[y] = 0
            if size < cap:
                slot = size
                size += 1
            elif counts[y] < cap / len(counts):
                largest = max(counts, key=counts.__getitem__)  # first seen among ties
                members = np.flatnonzero(slot_class == largest)
                slot = int(members[int(u * len(members))])
                counts[largest] -= 1
            else:
                continue
            slot_class[slot] = y
            counts[y] += 1
            taken[slot] = pos
        return np.array(list(taken.values()), dtype=np.int64), np.array(list(taken), dtype=np.int64)

    # ---- per-class groups ----------------------------------------------------------------
    @property
    def buffer_groups(self) -> dict[int, SimpleNamespace]:
        """One group per stored class, in the order first seen: ``buffer_groups[c].buffer`` is
        the ``AvalancheDataset`` of class ``c``'s samples."""
        if self._groups is None or self._groups[0] != self._slots.version:
            targets = self._slots.targets[: self._slots.size]
            groups = {}
            for c in self.seen_classes:
                slots = np.flatnonzero(targets == c)
                if len(slots):
                    groups[c] = SimpleNamespace(buffer=self._slots.dataset(slots), max_size=len(slots))
            self._groups = (self._slots.version, groups)
        return self._groups[1]

    @property
    def buffer_datasets(self) -> list[AvalancheDataset]:
        """The class groups as a list of datasets (for ``GroupBalancedDataLoader``)."""
        return [g.buffer for g in self.buffer_groups.values()]

    @property
    def buffer(self) -> AvalancheDataset:
        """All stored samples, grouped by class in the order first seen."""
        if self._view is None or self._view[0] != self._slots.version:
            targets = self._slots.targets[: self._slots.size]
            order = [np.flatnonzero(targets == c) for c in self.seen_classes]
            self._view = (
                self._slots.version,
                self._slots.dataset(np.concatenate(order)) if order else self._slots.dataset(),
            )
        return self._view[1]

    @buffer.setter
    def buffer(self, value: AvalancheDataset) -> None:
        SlotBuffer.buffer.fset(self, value)

    def class_counts(self) -> dict[int, int]:
        """Number of stored samples per seen class (0 for classes evicted entirely)."""
        targets = self._slots.targets[: self._slots.size]
        return {c: int((targets == c).sum()) for c in self.seen_classes}

    # ---- size and state ------------------------------------------------------------------
    def resize(self, strategy: Any, new_size: int) -> None:
        """Change ``max_size``. Shrinking evicts random samples of the largest class, one at a
        time, until the rest fits; growing lets later samples fill the new slots."""
        new_size = check_size("new_size", new_size)
        slot_class = self._slots.targets[: self._slots.size].tolist()
        alive = list(range(len(slot_class)))
        while len(alive) > new_size:
            counts = {c: 0 for c in self.seen_classes}
            for s in alive:
                counts[slot_class[s]] += 1
            largest = max(counts, key=counts.__getitem__)
            members = [i for i, s in enumerate(alive) if slot_class[s] == largest]
            u = float(torch.rand(1, generator=self.generator, dtype=torch.float64))
            alive.pop(members[int(u * len(members))])
        self._slots.keep(np.array(alive, dtype=np.int64), new_size)
        self.max_size = new_size

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "seen_classes": list(self.seen_classes)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.seen_classes = dict.fromkeys(state["seen_classes"])
        self._groups = self._view = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_groups": None, "_view": None}
