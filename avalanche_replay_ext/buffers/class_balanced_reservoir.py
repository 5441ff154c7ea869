"""Class-Balancing Reservoir Sampling (CBRS) as an Avalanche buffer."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._checks import check_size
from ._base import SlotBuffer
from ._format import Stored


class ClassBalancedReservoirBuffer(SlotBuffer):
    """Class-Balancing Reservoir Sampling (Chrysakis & Moens, "Online Continual Learning from
    Imbalanced Data", ICML 2020, Algorithm 1): a memory that tends to equal class counts however
    imbalanced the stream, and within each class a uniform sample of that class's stream.

    Samples are offered one by one, in stream order; each draws one uniform ``u`` in [0, 1) from
    the buffer's own generator. While the memory has room, every sample enters. Once it is full, a
    class is *full* if it is, or has ever been, one of the largest stored classes (the paper's
    definition: full classes are remembered, :attr:`full_classes`). Then a sample of class ``c``
    with ``n_c`` samples of ``c`` seen (this one included) and ``m_c`` stored:

    - ``c`` not full: it takes the slot of a stored sample drawn uniformly from *all* the stored
      samples of the largest classes together (Algorithm 1: "find all instances of the largest
      class(es), select from them an instance at random"): the ``floor(u * M)``-th of those ``M``
      samples, ordered by class label then slot;
    - ``c`` full: it enters with probability ``m_c / n_c`` (``floor(u * n_c) < m_c``), taking the
      slot of the ``floor(u * n_c)``-th stored sample of ``c`` in slot order, a uniform one
      (reservoir sampling within the class); otherwise it is dropped.

    A class that is not full is never evicted from, so all its samples are kept; a full class's
    samples are a uniform subset of its stream whatever the counts (every eviction and every
    replacement picks a uniform member). The result depends only on the samples offered and their
    order, not on how they were chunked: whole experiences (:meth:`post_adapt`, the tutorial's
    ``update``), datasets or index subsets (:meth:`update_from_dataset`), tensor minibatches
    (:meth:`update_from_batch`). Samples are kept by reference as in
    :class:`~avalanche_replay_ext.buffers.ReservoirSamplingBuffer`. Cost: O(1) for a dropped sample,
    O(log max_size) for a replacement within a class, O(classes + log max_size) for an eviction,
    plus O(classes) per update (the counts are copied, so a failed update leaves them as they
    were): the slots of each class are kept in a sorted index, built, O(max_size log max_size),
    after a resize, a load, unpickling or a failed update. A full class may hold no sample
    (possible when ``max_size`` is below the number of classes): the rule then drops its samples.

    :param max_size: number of slots, a positive int.
    :param seed: seed of the buffer's own ``torch.Generator``; same seed and same stream give the
        same buffer whatever the global RNG state. ``None`` draws the seed from the global torch RNG.
    """

    STATE_KIND = "class_balanced_reservoir"
    _STATE_EXTRA = ("seen_counts", "full_classes")

    def __init__(self, max_size: int, seed: int | None = None) -> None:
        super().__init__(max_size, seed)
        # these are replaced, never changed in place, so that a failed update restores them
        self.seen_counts: dict[int, int] = {}  # class -> samples of it offered so far, in the order first seen
        self.full_classes: dict[int, None] = {}  # ordered set: the full classes, in the order they became full
        self._stored: dict[int, int] = {}  # class -> samples of it stored (> 0), what the slots hold

    def _offer(self, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        labels = targets.tolist()
        draws = torch.rand(len(labels), generator=self.generator, dtype=torch.float64).tolist()
        self.n_seen += len(labels)
        step = _Step(self._slots, self.max_size, self._stored, self.full_classes)
        seen = dict(self.seen_counts)
        for pos, (y, u) in enumerate(zip(labels, draws, strict=True)):
            seen[y] = seen.get(y, 0) + 1
            step.offer(pos, y, u, seen[y])
        self.seen_counts, self._stored, self.full_classes = seen, step.stored, step.full
        return step.result()

    def class_counts(self) -> dict[int, int]:
        """Number of stored samples per seen class, in the order first seen (0 for classes with
        none stored)."""
        return {c: self._stored.get(c, 0) for c in self.seen_counts}

    # ---- size and state ------------------------------------------------------------------
    def resize(self, strategy: Any, new_size: int) -> None:
        """Change ``max_size``. Shrinking evicts, one at a time, a sample drawn uniformly from the
        stored samples of the largest classes (as a sample of a class that is not full does),
        computed at once in O(size log size); each class keeps a uniform subset of what it held.
        Growing lets later samples fill the new slots (while there is room every sample enters,
        so a class's later samples are then over-represented against its earlier ones). Full
        classes stay full either way; after a shrink the largest classes are full too.

        :param strategy: unused (Avalanche's ``ExemplarsBuffer.resize`` signature).
        :param new_size: the new number of slots, a positive int.
        """
        new_size = check_size("new_size", new_size)
        with self._transaction():
            self._slots.keep(self._survivors(new_size), new_size)
            self.max_size = new_size
            self._stored = _stored_counts(self._slots.targets[: self._slots.size])
            if self._slots.size == new_size:  # full: the largest classes are full classes
                self.full_classes = _with_largest(self.full_classes, self._stored)

    def _survivors(self, new_size: int) -> np.ndarray:
        """The slots a resize to ``new_size`` keeps, in slot order (draws from the generator)."""
        size = self._slots.size
        if size <= new_size:
            return np.arange(size)
        classes, inverse, counts = np.unique(self._slots.targets[:size], return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1)
        draws = torch.rand(len(classes) + size, generator=self.generator, dtype=torch.float64).numpy()
        final = level_down(counts, size - new_size, draws[: len(classes)])
        keys = draws[len(classes) :]
        order = np.lexsort((-keys, inverse))  # grouped by class, largest keys first
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])  # where each class's group starts in `order`
        rank = np.arange(size) - first[inverse[order]]
        return np.sort(order[rank < final[inverse[order]]])

    def _extra_state(self) -> dict[str, Any]:
        return {"seen_counts": dict(self.seen_counts), "full_classes": list(self.full_classes)}

    def _check_extra(self, values: dict[str, Any], stored: Stored, what: str) -> None:
        """seen_counts: class (int >= 0) -> count >= 1, at least the samples of it stored, summing
        to n_seen; full_classes: distinct classes of seen_counts."""
        seen, full = values["seen_counts"], values["full_classes"]
        if not isinstance(seen, dict) or not isinstance(full, list | tuple):
            raise ValueError(
                f"{what} of a {type(self).__name__} must hold seen_counts as a dict and full_classes as a list"
            )
        for c, n in seen.items():
            if not (_is_label(c) and _is_label(n) and n >= 1):
                raise ValueError(f"{what}'s seen_counts must map classes (ints >= 0) to counts >= 1, got {c!r}: {n!r}")
        for c, m in _stored_counts(stored.fields["targets"]).items():
            if seen.get(c, 0) < m:
                raise ValueError(
                    f"{what}'s seen_counts has {seen.get(c, 0)} samples of class {c} seen, but its slots hold {m}"
                )
        if sum(seen.values()) != values["n_seen"]:
            raise ValueError(
                f"{what}'s seen_counts sum to {sum(seen.values())}, but its n_seen is {values['n_seen']}: "
                "every sample seen is counted in both"
            )
        if len(set(full)) != len(full) or not all(_is_label(c) and c in seen for c in full):
            raise ValueError(f"{what}'s full_classes must be distinct classes of seen_counts, got {list(full)!r}")

    def _load_extra(self, state: dict[str, Any]) -> None:
        self.seen_counts = {int(c): int(n) for c, n in state["seen_counts"].items()}
        self.full_classes = dict.fromkeys(int(c) for c in state["full_classes"])
        self._stored = _stored_counts(self._slots.targets[: self._slots.size])

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, full_classes={list(self.full_classes)})"


class _Step:
    """The working state of one update of a :class:`ClassBalancedReservoirBuffer`: the rule applied
    sample by sample to a copy of the class counts and to the store's index of each class's slots,
    which it moves as samples enter (the update's write then finds it up to date; a failed update
    drops it)."""

    def __init__(self, slots: Any, cap: int, stored: dict, full: dict) -> None:
        self.index = slots.groups("targets")
        self.size, self.cap = slots.size, cap
        self.stored, self.full = dict(stored), full  # `full`: replaced on change
        self.taken: dict[int, int] = {}  # slot -> position of the offered sample now in it

    def offer(self, pos: int, y: int, u: float, n: int) -> None:
        """Apply the rule to the sample at ``pos`` (class ``y``, draw ``u``, ``n``-th of ``y``)."""
        if self.size < self.cap:  # room: every sample enters
            slot = self.size
            self.size += 1
            self.index.move(slot, None, y)
            self.stored[y] = self.stored.get(y, 0) + 1
            if self.size == self.cap:
                self.full = _with_largest(self.full, self.stored)
        elif y in self.full:  # reservoir sampling within the class
            j = min(int(u * n), n - 1)
            if j >= self.stored.get(y, 0):
                return
            slot = self.index.members[y][j]
        else:  # replaces a uniform sample of the largest classes
            slot = self._evict(u, y)
            self.full = _with_largest(self.full, self.stored)
        self.taken[slot] = pos

    def _evict(self, u: float, y: int) -> int:
        """Move a slot drawn uniformly from the largest classes' slots (by ``u``) to class ``y``."""
        top = max(self.stored.values())
        largest = sorted(c for c, m in self.stored.items() if m == top)
        k = min(int(u * top * len(largest)), top * len(largest) - 1)
        old, j = largest[k // top], k % top
        slot = self.index.members[old][j]
        self.index.move(slot, old, y)
        self.stored[old] -= 1
        if not self.stored[old]:
            del self.stored[old]
        self.stored[y] = self.stored.get(y, 0) + 1
        return slot

    def result(self) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Positions of the entering samples, the slots they take, no per-slot extras."""
        entering = np.fromiter(self.taken.values(), dtype=np.int64, count=len(self.taken))
        return entering, np.fromiter(self.taken, dtype=np.int64, count=len(self.taken)), {}


def _is_label(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= 0


def _stored_counts(targets: np.ndarray) -> dict[int, int]:
    """Class -> number of slots holding it."""
    classes, counts = np.unique(targets, return_counts=True)
    return dict(zip(classes.tolist(), counts.tolist(), strict=True))


def _with_largest(full: dict[int, None], stored: dict[int, int]) -> dict[int, None]:
    """``full`` with the largest stored classes added (a new dict if any is new; by label among ties)."""
    if not stored:
        return full
    top = max(stored.values())
    new = sorted(c for c, m in stored.items() if m == top and c not in full)
    return {**full, **dict.fromkeys(new)} if new else full


def level_down(counts: np.ndarray, k: int, tie_keys: np.ndarray) -> np.ndarray:
    """Class counts after ``k`` evictions, each of a sample drawn uniformly from the stored samples
    of the currently largest classes, without running them one by one: every class above some level
    ``L`` comes down to ``L``, then the ``r`` classes at ``L`` with the smallest ``tie_keys`` lose
    one more (random keys: a uniform subset; ``arange``: the earliest, as the greedy sampler's
    resize evicts)."""
    low, high = 0, int(counts.max())  # the smallest L with sum(max(0, counts - L)) <= k
    while low < high:
        mid = (low + high) // 2
        if np.maximum(counts - mid, 0).sum() <= k:
            high = mid
        else:
            low = mid + 1
    final = np.minimum(counts, low)
    extra = k - int((counts - final).sum())
    at_level = np.flatnonzero(final == low)
    final[at_level[np.argsort(tie_keys[at_level], kind="stable")[:extra]]] -= 1
    return final
