"""GDumb's greedy class-balanced sampler as an Avalanche buffer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from avalanche.benchmarks.utils import AvalancheDataset

from .._checks import check_size
from ._base import SlotBuffer
from ._format import Stored
from ._slots import Selection, build_view
from .class_balanced_reservoir import level_down


class GreedyClassBalancedBuffer(SlotBuffer):
    """The greedy class-balanced sampler of GDumb (Prabhu, Torr & Dokania, "GDumb: A Simple
    Approach that Questions Our Progress in Continual Learning", ECCV 2020, Algorithm 1).

    Samples are offered one by one, in stream order. A sample enters while the memory has room.
    When it is full, a sample of class ``y`` enters only if ``y`` holds fewer than
    ``max_size / n_seen_classes`` slots; it then takes the slot of a random sample of the
    currently largest class (the earliest seen among ties). No class ever grows past its share
    by evicting, so the memory drifts towards equal class counts. An update costs O(batch x
    (classes + log max_size)): each class's slots are kept in a sorted index.

    Works per experience (:meth:`post_adapt`), per dataset or index subset
    (:meth:`update_from_dataset`) and per tensor minibatch (:meth:`update_from_batch`), with
    samples kept by reference as in :class:`ReservoirSamplingBuffer`. Like Avalanche's balanced
    buffers it exposes one group per class, ``buffer_groups[c].buffer`` and ``buffer_datasets``,
    for ``GroupBalancedDataLoader``; ``buffer`` lists the classes in the order first seen.

    :param max_size: number of slots, a positive int.
    :param seed: seed of the buffer's own ``torch.Generator`` (which sample of the largest class
        is evicted); ``None`` draws it from the global torch RNG.
    """

    STATE_KIND = "greedy"
    _STATE_EXTRA = ("seen_classes",)
    _DERIVED = ("_groups", "_view")

    def __init__(self, max_size: int, seed: int | None = None) -> None:
        super().__init__(max_size, seed)
        self.seen_classes: dict[int, None] = {}  # insertion-ordered set
        self._groups: tuple[int, dict[int, _ClassGroup]] | None = None  # (slots version, groups)
        self._view: tuple[int, AvalancheDataset] | None = None  # (slots version, class-ordered view)

    def _offer(self, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        labels = targets.tolist()
        draws = torch.rand(len(labels), generator=self.generator, dtype=torch.float64).tolist()
        self.n_seen += len(labels)
        size, cap = self._slots.size, self.max_size
        index = self._slots.groups("targets")  # each class's slots, moved as samples enter
        counts: dict[int, int] = dict.fromkeys(self.seen_classes, 0)
        counts.update(index.sizes())
        taken: dict[int, int] = {}  # slot -> position of the offered sample now in it
        for pos, (y, u) in enumerate(zip(labels, draws, strict=True)):
            counts.setdefault(y, 0)
            if size < cap:
                slot, was = size, None
                size += 1
            elif counts[y] < cap / len(counts):
                was = max(counts, key=counts.__getitem__)  # the largest class, first seen among ties
                members = index.members[was]
                slot = members[int(u * len(members))]
                counts[was] -= 1
            else:
                continue
            index.move(slot, was, y)
            counts[y] += 1
            taken[slot] = pos
        self.seen_classes = dict.fromkeys(counts)  # a new dict: the transaction keeps the old one
        return np.array(list(taken.values()), dtype=np.int64), np.array(list(taken), dtype=np.int64), {}

    # ---- per-class groups ----------------------------------------------------------------
    def _class_order(self) -> tuple[list[int], np.ndarray, np.ndarray]:
        """Seen classes (in the order first seen), stored samples per class, and the occupied
        slots grouped by class in that order (slot order within a class)."""
        classes = list(self.seen_classes)
        targets = self._slots.targets[: self._slots.size]
        stored, inverse = np.unique(targets, return_inverse=True)
        slot_rank = _ranks(classes, stored)[inverse.reshape(-1)]
        counts = np.bincount(slot_rank, minlength=len(classes))
        return classes, counts, np.argsort(slot_rank, kind="stable")

    @property
    def buffer_groups(self) -> dict[int, _ClassGroup]:
        """One group per stored class, in the order first seen: ``buffer_groups[c].buffer`` is
        the ``AvalancheDataset`` of class ``c``'s samples (built when first read)."""
        if self._groups is None or self._groups[0] != self._slots.version:
            classes, counts, order = self._class_order()
            bounds = np.concatenate([[0], np.cumsum(counts)])
            groups = {
                c: _ClassGroup(self._slots.select(order[bounds[i] : bounds[i + 1]]))
                for i, c in enumerate(classes)
                if counts[i]
            }
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
            self._view = (self._slots.version, self._slots.dataset(self._class_order()[2]))
        return self._view[1]

    @buffer.setter
    def buffer(self, value: AvalancheDataset) -> None:
        SlotBuffer.buffer.fset(self, value)

    def _view_slots(self) -> np.ndarray:
        return self._class_order()[2]

    def _class_starts(self) -> tuple[list[int], np.ndarray, dict]:
        """The stored classes in the order first seen, where each starts in :attr:`buffer`, and
        each class's slots (O(classes), from the class index)."""
        members = self._slots.groups("targets").members
        classes = [c for c in self.seen_classes if c in members]
        return classes, np.cumsum([0] + [len(members[c]) for c in classes]), members

    def _slots_at(self, positions: Any) -> np.ndarray:
        positions = super()._slots_at(positions)
        classes, starts, members = self._class_starts()
        which = (np.searchsorted(starts, positions, side="right") - 1).tolist()
        picked = [members[classes[w]][p - starts[w]] for w, p in zip(which, positions.tolist(), strict=True)]
        return np.array(picked, dtype=np.int64)

    def group_positions(self, groupby: str) -> dict[int, Sequence[int]]:
        if groupby != "class":  # by task or experience: from all the labels, O(size log size)
            groups = self.stored_groups(groupby).numpy()
            order = np.argsort(groups, kind="stable")
            labels, starts = np.unique(groups[order], return_index=True)
            return dict(zip(labels.tolist(), np.split(order, starts[1:]) if len(labels) else [], strict=True))
        classes, starts, _ = self._class_starts()  # the classes lie in consecutive ranges
        ranges = {c: range(int(starts[i]), int(starts[i + 1])) for i, c in enumerate(classes)}
        return dict(sorted(ranges.items()))

    def class_counts(self) -> dict[int, int]:
        """Number of stored samples per seen class (0 for classes evicted entirely)."""
        classes, counts, _ = self._class_order()
        return dict(zip(classes, counts.tolist(), strict=True))

    # ---- size and state ------------------------------------------------------------------
    def resize(self, strategy: Any, new_size: int) -> None:
        """Change ``max_size``. Shrinking evicts random samples of the largest class (the earliest
        seen among ties), one at a time, until the rest fits; growing lets later samples fill the
        new slots. The evictions are computed at once: O(size log size)."""
        new_size = check_size("new_size", new_size)
        with self._transaction():
            self._slots.keep(self._survivors(new_size), new_size)
            self.max_size = new_size

    def _survivors(self, new_size: int) -> np.ndarray:
        """The slots a resize to ``new_size`` keeps, in slot order (draws from the generator)."""
        size = self._slots.size
        alive = np.arange(size)
        if size > new_size:
            classes, counts, order = self._class_order()
            evict = counts - level_down(counts, size - new_size, np.arange(len(counts)))  # ties: the earliest seen
            keys = torch.rand(size, generator=self.generator, dtype=torch.float64).numpy()
            slot_rank = np.repeat(np.arange(len(classes)), counts)  # class rank of each slot of `order`
            by_key = order[np.lexsort((keys[order], slot_rank))]  # grouped by class, smallest keys first
            first = np.concatenate([[0], np.cumsum(counts)])[slot_rank]
            alive = np.sort(by_key[np.arange(size) - first >= evict[slot_rank]])
        return alive

    def _extra_state(self) -> dict[str, Any]:
        return {"seen_classes": list(self.seen_classes)}

    def _check_extra(self, values: dict[str, Any], stored: Stored, what: str) -> None:
        seen = values["seen_classes"]
        if (
            not isinstance(seen, list | tuple)
            or not all(isinstance(c, int | np.integer) and not isinstance(c, bool) and c >= 0 for c in seen)
            or len(set(seen)) != len(seen)
        ):
            raise ValueError(f"{what}'s seen_classes must be a list of distinct ints >= 0, got {seen!r}")
        missing = set(np.unique(stored.fields["targets"]).tolist()) - {int(c) for c in seen}
        if missing:
            raise ValueError(f"{what}'s seen_classes must hold every stored class: no {sorted(missing)}")

    def _load_extra(self, state: dict[str, Any]) -> None:
        self.seen_classes = dict.fromkeys(int(c) for c in state["seen_classes"])


class _ClassGroup:
    """One class's share of a greedy buffer, as Avalanche's group buffers expose it: a snapshot of
    the class's samples when ``buffer_groups`` was read, whose dataset is built when first read."""

    def __init__(self, selection: Selection) -> None:
        self._selection, self._buffer = selection, None
        self.max_size = len(selection.source)

    @property
    def buffer(self) -> AvalancheDataset:
        if self._buffer is None:
            self._buffer = build_view(self._selection)
        return self._buffer


def _ranks(classes: list[int], stored: np.ndarray) -> np.ndarray:
    """Position of each stored class in ``classes`` (the order first seen)."""
    position = {c: i for i, c in enumerate(classes)}
    return np.array([position[c] for c in stored.tolist()], dtype=np.int64)
