"""What this package's buffers share: slots, an own generator, and every way to offer samples."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from avalanche.benchmarks.utils import AvalancheDataset
from avalanche.training.storage_policy import ExemplarsBuffer

from .._checks import as_labels, check_seed, check_size, make_generator
from ._slots import SlotStore


class SlotBuffer(ExemplarsBuffer):
    """Base of the buffers: subclasses only decide, in :meth:`_offer`, which offered samples
    enter and which slots they take. Dataset samples are kept by reference; tensor minibatches
    are copied into rows that grow with the samples held. Every check runs before any change, so
    a failing call leaves the buffer as it was.

    :param max_size: number of slots, a positive int.
    :param seed: seed of the buffer's own ``torch.Generator``; ``None`` draws it from the global
        torch RNG.
    """

    def __init__(self, max_size: int, seed: int | None = None) -> None:
        max_size = check_size("max_size", max_size)
        super().__init__(max_size)
        self.seed = check_seed(seed)
        self.generator = make_generator(self.seed)
        self.n_seen = 0
        self._slots = SlotStore(max_size)

    @property
    def buffer(self) -> AvalancheDataset:
        """The stored samples as an ``AvalancheDataset`` (with ``targets`` and task labels)."""
        return self._slots.dataset()

    @buffer.setter
    def buffer(self, value: AvalancheDataset) -> None:
        raise AttributeError(f"{type(self).__name__}.buffer is read-only: use the update methods or resize()")

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
        offer = self._slots.resolve(new_data)
        n = len(offer.targets)
        if indices is None:
            indices = np.arange(n)
        else:
            indices = as_labels("indices", indices).numpy()
            if len(indices) and (indices.min() < 0 or indices.max() >= n):
                raise IndexError(f"indices must lie in [0, {n}) for this dataset")
        entering, slots = self._offer(offer.targets[indices])
        self._slots.write_refs(slots, offer, indices[entering])

    def update_from_batch(self, x: torch.Tensor, y: Any, t: Any = None) -> None:
        """Offer a tensor minibatch ``(x, y, t)``; entering samples are copied (detached, CPU).

        :param x: inputs, first dimension is the batch.
        :param y: integer class labels, one per sample.
        :param t: task labels: a sequence, one int for all, or None (task 0).
        """
        if not isinstance(x, torch.Tensor) or x.dim() < 1:
            raise TypeError(f"x must be a tensor with a batch dimension, got {type(x).__name__}")
        y = as_labels("y", y, len(x)).numpy()
        t = torch.as_tensor(0 if t is None else t)
        t = as_labels("t", t.expand(len(x)) if t.dim() == 0 else t, len(x)).numpy()
        self._slots.rows.check(x)
        x = x.detach().to("cpu")  # before any change: a tensor that cannot be copied raises here
        entering, slots = self._offer(y)
        self._slots.write_rows(slots, x[torch.from_numpy(entering)], y[entering], t[entering])

    def _offer(self, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Count the offered samples (class labels ``targets``) as seen; return the positions
        of those entering and the slots they take (distinct; each ``< max_size``)."""
        raise NotImplementedError

    # ---- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Sampling state (counters, generator) and slot contents, for exact resumption."""
        return {
            "max_size": self.max_size,
            "seed": self.seed,
            "n_seen": self.n_seen,
            "generator": self.generator.get_state(),
            "slots": self._slots.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; later updates continue exactly as the original would."""
        slots = SlotStore(state["max_size"])
        slots.load_state_dict(state["slots"])
        self.generator.set_state(state["generator"])
        self.max_size, self.seed, self.n_seen = state["max_size"], state["seed"], state["n_seen"]
        self._slots = slots

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_size={self.max_size}, size={self._slots.size}, n_seen={self.n_seen})"
