"""Reservoir sampling buffer: a uniform sample of everything the stream has shown so far."""

from __future__ import annotations

import heapq
from typing import Any

import numpy as np
import torch

from .._checks import check_size
from ._base import SlotBuffer
from ._format import Stored


class ReservoirSamplingBuffer(SlotBuffer):
    """Replay buffer holding a uniform random sample of the whole stream.

    Every sample the buffer has been shown is in it with probability ``max_size / n_seen``
    (all of them while ``n_seen <= max_size``), however the stream was chunked: whole
    experiences (:meth:`post_adapt`, :meth:`update_from_dataset`), index subsets of a dataset,
    or tensor minibatches (:meth:`update_from_batch`). Each sample draws a uniform key and the
    buffer keeps the ``max_size`` largest keys (Vitter, "Random sampling with a reservoir",
    ACM TOMS 1985; the keyed form of Efraimidis & Spirakis, IPL 2006). A min-heap of the held
    keys gives the sample each entering one replaces, so an update costs O(batch log batch +
    entering log max_size), independent of ``max_size`` and of the updates before it; the heap is
    built, O(max_size), when the memory first fills and after a resize, a load or unpickling.

    Dataset samples are kept by reference (no copy; their transforms still apply); tensor
    minibatches are copied into rows that grow with the samples held. ``buffer`` is an
    ``AvalancheDataset`` view, rebuilt lazily after a change, usable as ``storage_policy`` of
    Avalanche's ``ReplayPlugin``.

    :param max_size: number of slots, a positive int.
    :param seed: seed of the buffer's own ``torch.Generator``; same seed and same stream give
        the same buffer whatever the global RNG state. ``None`` draws the seed from the global
        torch RNG.
    """

    STATE_KIND = "reservoir"
    _SLOT_EXTRA = {"keys": 0.0}  # each slot's reservoir key
    _DERIVED = ("_heap",)

    def __init__(self, max_size: int, seed: int | None = None) -> None:
        super().__init__(max_size, seed)
        self._heap: list[tuple[float, int]] | None = None  # (key, slot) of every held slot, once built

    def _offer(self, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        n_new = len(targets)
        keys = torch.rand(n_new, generator=self.generator, dtype=torch.float64).numpy()
        self.n_seen += n_new
        size, cap = self._slots.size, self.max_size
        if size + n_new <= cap:  # room for all
            self._heap = None  # built when the memory is full
            return np.arange(n_new), np.arange(size, size + n_new), {"keys": keys}
        heap, free = self._key_heap(), cap - size
        if not free and keys.max() <= heap[0][0]:  # the usual case late in a stream
            nothing = np.zeros(0, dtype=np.int64)
            return nothing, nothing, {"keys": keys[:0]}
        # the cap largest of the held and new keys: the `free` largest new keys take the free
        # slots; each next largest new key enters while it beats the smallest held key left
        order, evicted = np.argsort(-keys, kind="stable"), []
        for key in keys[order[free:]].tolist():
            if not heap or key <= heap[0][0]:
                break
            evicted.append(heapq.heappop(heap)[1])
        entering = np.sort(order[: free + len(evicted)])
        slots = np.concatenate([np.sort(np.array(evicted, dtype=np.int64)), np.arange(size, cap)])
        for key, slot in zip(keys[entering].tolist(), slots.tolist(), strict=True):
            heapq.heappush(heap, (key, slot))
        return entering, slots, {"keys": keys[entering]}

    def _key_heap(self) -> list[tuple[float, int]]:
        if self._heap is None:
            self._heap = list(zip(self._slots.keys[: self._slots.size].tolist(), range(self._slots.size), strict=True))
            heapq.heapify(self._heap)
        return self._heap

    def _check_extra(self, values: dict[str, Any], stored: Stored, what: str) -> None:
        keys = stored.fields["keys"]
        bad = keys[~((keys >= 0.0) & (keys < 1.0))]  # NaN included
        if len(bad):
            raise ValueError(f"{what}'s slots keys must hold reservoir keys in [0, 1), got {float(bad[0])!r}")

    def resize(self, strategy: Any, new_size: int) -> None:
        """Change ``max_size``. Shrinking keeps the samples with the largest keys, a uniform
        subset (exactly the buffer a ``new_size`` reservoir would hold); growing keeps all and
        lets later updates fill the new slots."""
        new_size = check_size("new_size", new_size)
        with self._transaction():
            order = np.argsort(-self._slots.keys[: self._slots.size], kind="stable")[:new_size]
            self._slots.keep(order, new_size)
            self.max_size = new_size
            self._heap = None
