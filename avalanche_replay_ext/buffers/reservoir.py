"""Reservoir sampling buffer: a uniform sample of everything the stream has shown so far."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .._checks import check_size
from ._base import SlotBuffer


class ReservoirSamplingBuffer(SlotBuffer):
    """Replay buffer holding a uniform random sample of the whole stream.

    Every sample the buffer has been shown is in it with probability ``max_size / n_seen``
    (all of them while ``n_seen <= max_size``), however the stream was chunked: whole
    experiences (:meth:`post_adapt`, :meth:`update_from_dataset`), index subsets of a dataset,
    or tensor minibatches (:meth:`update_from_batch`). Each sample draws a uniform key and the
    buffer keeps the ``max_size`` largest keys (Vitter, "Random sampling with a reservoir",
    ACM TOMS 1985; the keyed form of Efraimidis & Spirakis, IPL 2006). One update costs
    O(max_size + batch), independent of how many updates came before it.

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

    def _offer(self, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        n_new = len(targets)
        keys = torch.rand(n_new, generator=self.generator, dtype=torch.float64).numpy()
        self.n_seen += n_new
        size, cap = self._slots.size, self.max_size
        held = self._slots.keys[:size]
        if size + n_new <= cap:  # room for all
            return np.arange(n_new), np.arange(size, size + n_new), {"keys": keys}
        if size == cap and keys.max(initial=-1.0) <= held.min():  # the usual case late in a stream
            nothing = np.zeros(0, dtype=np.int64)
            return nothing, nothing, {"keys": keys[:0]}
        everything = np.concatenate([held, keys])
        top = np.argpartition(everything, len(everything) - cap)[-cap:]  # the cap largest keys
        new = top >= size
        entering = np.sort(top[new] - size)
        kept = np.zeros(size, dtype=bool)
        kept[top[~new]] = True
        slots = np.concatenate([np.flatnonzero(~kept), np.arange(size, cap)])
        return entering, slots, {"keys": keys[entering]}

    def resize(self, strategy: Any, new_size: int) -> None:
        """Change ``max_size``. Shrinking keeps the samples with the largest keys, a uniform
        subset (exactly the buffer a ``new_size`` reservoir would hold); growing keeps all and
        lets later updates fill the new slots."""
        new_size = check_size("new_size", new_size)
        with self._transaction():
            order = np.argsort(-self._slots.keys[: self._slots.size], kind="stable")[:new_size]
            self._slots.keep(order, new_size)
            self.max_size = new_size
