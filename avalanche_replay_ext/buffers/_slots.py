"""Fixed-capacity slot table behind the buffers: samples are referenced, not copied."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import torch
from avalanche.benchmarks.utils import AvalancheDataset

from .. import _avalanche_compat as compat
from ._rows import RowStore, rows_dataset
from ._sources import Offered, SourceTable, part_view

ROWS = -1  # source id of a slot whose sample is a tensor row of the RowStore
_FIELDS = ("source", "index", "targets", "tasks")  # slot-aligned int64 arrays


class Selection(NamedTuple):
    """Some slots' contents as they were when selected: their sources, positions and labels, and
    each source's ``(dataset, positions are flat-data positions)``."""

    source: np.ndarray
    index: np.ndarray
    targets: np.ndarray
    tasks: np.ndarray
    parts: dict[int, tuple[Any, bool]]


def build_view(selection: Selection) -> AvalancheDataset:
    """One part per source (an index list over its own data), concatenated, in slot order."""
    parts, placed = [], []
    for sid, (dataset, resolved) in selection.parts.items():
        where = np.flatnonzero(selection.source == sid)
        labels = {
            "targets": selection.targets[where].tolist(),
            "targets_task_labels": compat.task_values(selection.tasks[where]),
        }
        parts.append(part_view(dataset, resolved, selection.index[where], labels))
        placed.append(where)
    if not parts:  # empty, but still with `targets` and `targets_task_labels`
        return rows_dataset(torch.zeros(0), torch.zeros(0, dtype=torch.long))
    if len(parts) == 1:
        return parts[0]
    # slot order whatever the sources: a pickled buffer sees the datasets of a live stream as new
    # sources, and must still list its samples as the original does
    return compat.concat(parts).subset(np.argsort(np.concatenate(placed)).tolist())


class SlotStore:
    """``capacity`` slots; slots ``[0, size)`` are occupied.

    A slot points either at a sample of a dataset the buffer was offered (source id and position,
    see :class:`~._sources.SourceTable`; kept by reference, transforms included) or at a row of
    tensor samples (:class:`~._rows.RowStore`). Class and task labels are kept per slot, so
    counting and sampling never touch the data; the bookkeeping lives in small NumPy arrays.
    ``dataset()`` builds the Avalanche view once per change: one index list per source over that
    source's own flat-data children, so its depth and width stay those of the offered datasets.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.size = 0
        for name in _FIELDS:
            setattr(self, name, np.full(capacity, ROWS if name == "source" else 0, dtype=np.int64))
        self.sources = SourceTable()
        self.rows = RowStore()
        self._view: AvalancheDataset | None = None
        self._pruned_at = 0  # number of sources after the last prune
        self.version = 0  # bumped on every change, for caches of derived views

    # ---- writes --------------------------------------------------------------------------
    def resolve(self, dataset: Any) -> Offered:
        """Source, positions and labels of every sample of ``dataset`` (see ``SourceTable``)."""
        offer = self.sources.resolve(dataset)
        if len(self.sources) > 2 * self._pruned_at + 4:  # amortised: forget unreferenced sources
            self._prune(keep=offer.sid)
        return offer

    def write_refs(self, slots: np.ndarray, offer: Offered, entering: np.ndarray) -> None:
        """Point ``slots`` at the offered samples at positions ``entering`` of ``offer``."""
        if not len(slots):
            return
        self.source[slots] = offer.sid
        self.index[slots] = offer.positions[entering]
        self.targets[slots] = offer.targets[entering]
        self.tasks[slots] = offer.tasks[entering]
        self._grow_to(slots)

    def write_rows(self, slots: np.ndarray, x: torch.Tensor, y: np.ndarray, t: np.ndarray) -> None:
        """Store tensor samples ``x`` (CPU; labels ``y``, tasks ``t``) in ``slots``."""
        if not len(slots):
            return
        rows, remap = self.rows.append(x, y, self._live_rows())
        if remap is not None:
            mask = self.source[: self.size] == ROWS
            self.index[: self.size][mask] = remap[self.index[: self.size][mask]]
        self.source[slots], self.index[slots], self.targets[slots], self.tasks[slots] = ROWS, rows, y, t
        self._grow_to(slots)

    def _live_rows(self) -> np.ndarray:
        size = self.size
        return self.index[:size][self.source[:size] == ROWS]

    def _grow_to(self, slots: np.ndarray) -> None:
        self.size = max(self.size, int(slots.max()) + 1)
        self._changed()

    def _changed(self) -> None:
        self._view = None
        self.version += 1

    def _prune(self, keep: int | None = None) -> None:
        used = set(np.unique(self.source[: self.size]).tolist()) | {keep}
        self.sources.retain(used)
        self._pruned_at = len(self.sources)

    def keep(self, slots: np.ndarray, capacity: int) -> None:
        """Keep only ``slots`` (moved to the front, in that order) and set a new capacity."""
        n = len(slots)
        for name in _FIELDS:
            new = np.full(capacity, ROWS if name == "source" else 0, dtype=np.int64)
            new[:n] = getattr(self, name)[slots]
            setattr(self, name, new)
        self.capacity, self.size = capacity, n
        self._compact_rows()
        self._prune()
        self._changed()

    def _compact_rows(self) -> None:
        live, index = self._renumbered_rows()
        self.rows.load_state_dict(self.rows.state_dict(live))
        self.index[: self.size] = index

    def _renumbered_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The tensor rows in use, in slot order, and the slots' indices with those rows numbered
        0, 1, ... in that order (as a compacted row store holds them)."""
        size, live = self.size, self._live_rows()
        index = self.index[:size].copy()
        index[self.source[:size] == ROWS] = np.arange(len(live))
        return live, index

    # ---- reads ---------------------------------------------------------------------------
    def dataset(self, slots: np.ndarray | None = None) -> AvalancheDataset:
        """The samples of ``slots`` (default: all occupied, cached until the next write) as one
        Avalanche dataset with ``targets`` and ``targets_task_labels``."""
        if slots is not None:
            return build_view(self.select(slots))
        if self._view is None:
            self._view = build_view(self.select(np.arange(self.size)))
        return self._view

    def select(self, slots: np.ndarray) -> Selection:
        """What ``slots`` hold now, enough to build their view later whatever changes meanwhile."""
        source = self.source[slots]
        sids = np.unique(source).tolist()
        parts = {sid: self.sources.entry(sid) for sid in sids if sid != ROWS}
        if ROWS in sids:
            parts[ROWS] = (self.rows.dataset(), True)  # last: the view takes the first part's group
        return Selection(source, self.index[slots], self.targets[slots], self.tasks[slots], parts)

    # ---- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Slot contents for exact resumption; holds the referenced datasets and the tensor rows
        in use, so it grows with what is stored, not with the capacity or the sources seen."""
        size, (live, index) = self.size, self._renumbered_rows()
        return {
            "capacity": self.capacity,
            "size": size,
            **{name: torch.from_numpy(getattr(self, name)[:size].copy()) for name in ("source", "targets", "tasks")},
            "index": torch.from_numpy(index),
            "sources": self.sources.state_dict(set(np.unique(self.source[:size]).tolist()) - {ROWS}),
            "rows": self.rows.state_dict(live),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.__init__(state["capacity"])
        self.size = state["size"]
        for name in _FIELDS:
            getattr(self, name)[: self.size] = state[name].numpy()
        self.sources.load_state_dict(state["sources"])
        self.rows.load_state_dict(state["rows"])
        self._pruned_at = len(self.sources)

    def __getstate__(self) -> dict[str, Any]:
        return self.state_dict()  # a pickle holds what state_dict holds

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.load_state_dict(state)
