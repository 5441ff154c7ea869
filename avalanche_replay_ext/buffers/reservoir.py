"""Reservoir sampling buffer: a uniform sample of everything the stream has shown so far."""

from __future__ import annotations

from typing import Any

import torch
from avalanche.benchmarks.utils import AvalancheDataset
from avalanche.training.storage_policy import ExemplarsBuffer

from .._checks import as_labels, check_seed, check_size, make_generator
from ._slots import SlotStore


class ReservoirSamplingBuffer(ExemplarsBuffer):
    """Replay buffer holding a uniform random sample of the whole stream.

    Every sample the buffer has been shown is in it with probability ``max_size / n_seen``
    (all of them while ``n_seen <= max_size``), however the stream was chunked: whole
    experiences (:meth:`post_adapt`, :meth:`update_from_dataset`), index subsets of a dataset,
    or tensor minibatches (:meth:`update_from_batch`). Each sample draws a uniform key and the
    buffer keeps the ``max_size`` largest keys (Vitter, "Random sampling with a reservoir",
    ACM TOMS 1985; the keyed form of Efraimidis & Spirakis, IPL 2006). One update costs
    O(max_size + batch), independent of how many updates came before it.

    Dataset samples are kept by reference (no copy; their transforms still apply); tensor
    minibatches are copied into preallocated rows. ``buffer`` is an ``AvalancheDataset`` view,
    rebuilt lazily after a change, usable as ``storage_policy`` of Avalanche's ``ReplayPlugin``.

    :param max_size: number of slots, a positive int.
    :param seed: seed of the buffer's own ``torch.Generator``; same seed and same stream give
        the same buffer whatever the global RNG state. ``None`` draws the seed from the global torch RNG.
    """

    def __init__(self, max_size: int, seed: int | None = None) -> None:
        max_size = check_size("max_size", max_size)
        super().__init__(max_size)
        self.seed = check_seed(seed)
        self.generator = make_generator(self.seed)
        self.n_seen = 0
        self._keys = torch.zeros(max_size, dtype=torch.float64)  # slot-aligned reservoir keys
        self._slots = SlotStore(max_size)

    @property
    def buffer(self) -> AvalancheDataset:
        """The stored samples as an ``AvalancheDataset`` (with ``targets`` and task labels)."""
        return self._slots.dataset()

    @buffer.setter
    def buffer(self, value: AvalancheDataset) -> None:
        raise AttributeError("ReservoirSamplingBuffer.buffer is read-only: use the update methods or resize()")

    # ---- updates -------------------------------------------------------------------------
    def update(self, strategy: Any, **kwargs: Any) -> None:
        """Add ``strategy.experience``'s dataset, as in the tutorial (Avalanche < 0.6 API)."""
        self.post_adapt(strategy, strategy.experience)

    def post_adapt(self, agent_state: Any, exp: Any) -> None:
        """Add the experience's dataset (Avalanche 0.6 hook; ``update(strategy)`` calls it)."""
        self.update_from_dataset(exp.dataset)

    def update_from_dataset(self, new_data: AvalancheDataset, indices: Any = None) -> None:
        """Offer samples of ``new_data`` (all, or the given ``indices``), kept by reference.

        Passing the indices of each current minibatch gives a per-minibatch (online) update that
        copies nothing.
        """
        sid, targets, _ = self._slots.labels_of(new_data)
        n = len(targets)
        if indices is None:
            indices = torch.arange(n)
        else:
            indices = as_labels("indices", indices)
            if len(indices) and (int(indices.min()) < 0 or int(indices.max()) >= n):
                raise IndexError(f"indices must lie in [0, {n}) for this dataset")
        entering, slots = self._admit(len(indices))
        self._slots.write_refs(slots, sid, indices[entering])

    def update_from_batch(self, x: torch.Tensor, y: Any, t: Any = None) -> None:
        """Offer a tensor minibatch ``(x, y, t)``; entering samples are copied (detached, CPU).

        :param x: inputs, first dimension is the batch.
        :param y: integer class labels, one per sample.
        :param t: task labels: a sequence, one int for all, or None (task 0).
        """
        if not isinstance(x, torch.Tensor) or x.dim() < 1:
            raise TypeError(f"x must be a tensor with a batch dimension, got {type(x).__name__}")
        y = as_labels("y", y, len(x))
        t = 0 if t is None else t
        t = torch.full((len(x),), t, dtype=torch.long) if isinstance(t, int) else as_labels("t", t, len(x))
        self._slots.check_rows(x)
        entering, slots = self._admit(len(x))
        self._slots.write_rows(slots, x.detach()[entering].to("cpu"), y[entering], t[entering])

    def _admit(self, n_new: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw keys for ``n_new`` stream samples; return (positions entering, their slots)."""
        keys = torch.rand(n_new, generator=self.generator, dtype=torch.float64)
        self.n_seen += n_new
        size, cap = self._slots.size, self.max_size
        if size + n_new <= cap:  # room for all
            slots = torch.arange(size, size + n_new)
            self._keys[slots] = keys
            return torch.arange(n_new), slots
        top = torch.cat([self._keys[:size], keys]).topk(cap).indices
        new = top >= size
        entering = top[new] - size
        kept = torch.zeros(size, dtype=torch.bool)
        kept[top[~new]] = True
        slots = torch.cat([(~kept).nonzero().squeeze(1), torch.arange(size, cap)])
        self._keys[slots] = keys[entering]
        return entering, slots

    def resize(self, strategy: Any, new_size: int) -> None:
        """Change ``max_size``. Shrinking keeps the samples with the largest keys, a uniform
        subset (exactly the buffer a ``new_size`` reservoir would hold); growing keeps all and
        lets later updates fill the new slots."""
        new_size = check_size("new_size", new_size)
        size = self._slots.size
        order = self._keys[:size].topk(min(size, new_size)).indices
        keys = torch.zeros(new_size, dtype=torch.float64)
        keys[: len(order)] = self._keys[order]
        self._slots.keep(order, new_size)
        self._keys, self.max_size = keys, new_size

    # ---- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Sampling state (keys, counters, generator) and slot contents, for exact resumption."""
        return {
            "max_size": self.max_size,
            "seed": self.seed,
            "n_seen": self.n_seen,
            "keys": self._keys.clone(),
            "generator": self.generator.get_state(),
            "slots": self._slots.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; later updates continue exactly as the original would."""
        slots = SlotStore(state["max_size"])
        slots.load_state_dict(state["slots"])
        self.generator.set_state(state["generator"])
        self.max_size, self.seed, self.n_seen = state["max_size"], state["seed"], state["n_seen"]
        self._keys, self._slots = state["keys"].clone(), slots

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_size={self.max_size}, size={self._slots.size}, n_seen={self.n_seen})"
