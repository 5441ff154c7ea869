"""Fixed-capacity slot table behind the buffers: samples are referenced, not copied."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from avalanche.benchmarks.utils import AvalancheDataset, _make_taskaware_tensor_classification_dataset
from avalanche.benchmarks.utils.data_attribute import DataAttribute
from avalanche.benchmarks.utils.flat_data import ConstantSequence, FlatData, LazyIndices
from avalanche.benchmarks.utils.utils import concat_datasets

from .._checks import as_labels

TENSOR_ROW = -1  # source id of a slot whose sample lives in the tensor rows
_FIELDS = ("source", "index", "targets", "tasks")  # slot-aligned int64 arrays


class SlotStore:
    """``capacity`` slots; slots ``[0, size)`` are occupied.

    A slot points either at ``(dataset, index)`` (a sample of a dataset the buffer saw, kept by
    reference, transforms included) or at a row of a slot-aligned tensor store (a sample that
    arrived as a tensor minibatch). Class and task labels are kept per slot, so counting and
    sampling never touch the data. The bookkeeping lives in small NumPy arrays (cheap to index
    per minibatch). ``dataset()`` builds the Avalanche view once per change, as a concatenation
    of one subset per source, so its depth never grows with the number of updates.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.size = 0
        self.source = np.full(capacity, TENSOR_ROW, dtype=np.int64)
        self.index = np.zeros(capacity, dtype=np.int64)
        self.targets = np.zeros(capacity, dtype=np.int64)
        self.tasks = np.zeros(capacity, dtype=np.int64)
        self.rows: torch.Tensor | None = None  # tensor samples, allocated on first tensor write
        self._sources: dict[int, tuple[AvalancheDataset, np.ndarray, np.ndarray]] = {}
        self._next_source = 0
        self._view: AvalancheDataset | None = None
        self.version = 0  # bumped on every change, for caches of derived views

    # ---- sources -------------------------------------------------------------------------
    def labels_of(self, dataset: Any) -> tuple[int, np.ndarray, np.ndarray]:
        """Source id, class targets and task labels of ``dataset``, registering it if new."""
        for sid, (known, targets, tasks) in self._sources.items():
            if known is dataset:
                return sid, targets, tasks
        self._prune()
        sid = self._next_source
        self._register(sid, dataset)
        self._next_source += 1
        return (sid, *self._sources[sid][1:])

    def _register(self, sid: int, dataset: Any) -> None:
        if not isinstance(dataset, AvalancheDataset) or not hasattr(dataset, "targets"):
            raise TypeError(
                "dataset must be an AvalancheDataset with class `targets` "
                f"(e.g. `experience.dataset`), got {type(dataset).__name__} without them"
            )
        targets = as_labels("dataset.targets", _gather(dataset.targets), len(dataset)).numpy()
        tl = getattr(dataset, "targets_task_labels", None)
        tasks = (
            np.zeros(len(dataset), dtype=np.int64)
            if tl is None
            else as_labels("dataset.targets_task_labels", _gather(tl), len(dataset)).numpy()
        )
        self._sources[sid] = (dataset, targets, tasks)

    def _prune(self) -> None:
        """Drop references to datasets no occupied slot points at any more."""
        used = set(np.unique(self.source[: self.size]).tolist())
        for sid in [s for s in self._sources if s not in used]:
            del self._sources[sid]

    # ---- writes --------------------------------------------------------------------------
    def check_rows(self, x: torch.Tensor) -> None:
        """Raise before any mutation if ``x`` cannot be written into the tensor rows."""
        if self.rows is not None and (x.shape[1:] != self.rows.shape[1:] or x.dtype != self.rows.dtype):
            raise ValueError(
                f"x samples have shape {tuple(x.shape[1:])} and dtype {x.dtype}, but this buffer "
                f"stores {tuple(self.rows.shape[1:])} {self.rows.dtype}"
            )

    def write_refs(self, slots: np.ndarray, sid: int, index: np.ndarray) -> None:
        """Point ``slots`` at samples ``index`` of registered source ``sid``."""
        if not len(slots):
            return
        _, targets, tasks = self._sources[sid]
        self.source[slots] = sid
        self.index[slots] = index
        self.targets[slots] = targets[index]
        self.tasks[slots] = tasks[index]
        self._grow_to(slots)

    def write_rows(self, slots: np.ndarray, x: torch.Tensor, y: np.ndarray, t: np.ndarray) -> None:
        """Store tensor samples ``x`` (labels ``y``, tasks ``t``) in ``slots``."""
        if not len(slots):
            return
        if self.rows is None:
            self.rows = torch.zeros((self.capacity, *x.shape[1:]), dtype=x.dtype)
        self.rows[torch.from_numpy(slots)] = x
        self.source[slots] = TENSOR_ROW
        self.index[slots] = slots
        self.targets[slots] = y
        self.tasks[slots] = t
        self._grow_to(slots)

    def _grow_to(self, slots: np.ndarray) -> None:
        if len(slots):
            self.size = max(self.size, int(slots.max()) + 1)
        self._changed()

    def _changed(self) -> None:
        self._view = None
        self.version += 1

    def keep(self, slots: np.ndarray, capacity: int) -> None:
        """Keep only ``slots`` (moved to the front, in that order) and set a new capacity."""
        n = len(slots)
        for name in _FIELDS:
            old = getattr(self, name)
            new = np.full(capacity, TENSOR_ROW if name == "source" else 0, dtype=np.int64)
            new[:n] = old[slots]
            setattr(self, name, new)
        if self.rows is not None:
            rows = torch.zeros((capacity, *self.rows.shape[1:]), dtype=self.rows.dtype)
            rows[:n] = self.rows[torch.from_numpy(np.asarray(slots, dtype=np.int64))]
            self.rows = rows
        # a tensor sample's index is its row, which moved with it
        self.index[:n] = np.where(self.source[:n] == TENSOR_ROW, np.arange(n), self.index[:n])
        self.capacity, self.size = capacity, n
        self._changed()
        self._prune()

    # ---- reads ---------------------------------------------------------------------------
    def dataset(self, slots: np.ndarray | None = None) -> AvalancheDataset:
        """The samples of ``slots`` (default: all occupied, cached until the next write) as one
        Avalanche dataset: one subset per source, so its depth never grows."""
        if slots is not None:
            return self._build_view(slots)
        if self._view is None:
            self._view = self._build_view(np.arange(self.size))
        return self._view

    def _build_view(self, slots: np.ndarray) -> AvalancheDataset:
        source, index = self.source[slots], self.index[slots]
        parts = []
        for sid, (dataset, _, _) in self._sources.items():
            mask = source == sid
            if mask.any():
                parts.append(dataset.subset(index[mask].tolist()))
        mask = source == TENSOR_ROW
        if mask.any():
            rows = index[mask]
            parts.append(
                _make_taskaware_tensor_classification_dataset(
                    self.rows[torch.from_numpy(rows)],
                    torch.from_numpy(self.targets[rows]),
                    task_labels=self.tasks[rows].tolist(),
                )
            )
        if not parts:  # empty, but still with `targets` and `targets_task_labels`
            no_labels = torch.zeros(0, dtype=torch.long)
            parts.append(_make_taskaware_tensor_classification_dataset(no_labels, no_labels, task_labels=no_labels))
        return concat_datasets(parts)

    # ---- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        self._prune()
        return {
            "capacity": self.capacity,
            "size": self.size,
            **{name: torch.from_numpy(getattr(self, name).copy()) for name in _FIELDS},
            "rows": None if self.rows is None else self.rows.clone(),
            "sources": {sid: dataset for sid, (dataset, _, _) in self._sources.items()},
            "next_source": self._next_source,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.capacity, self.size = state["capacity"], state["size"]
        for name in _FIELDS:
            setattr(self, name, state[name].numpy().astype(np.int64, copy=True))
        self.rows = None if state["rows"] is None else state["rows"].clone()
        self._sources = {}
        for sid, dataset in state["sources"].items():
            self._register(sid, dataset)
        self._next_source = state["next_source"]
        self._changed()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_view"] = None  # rebuilt on demand; keeps pickles small
        return state


def _gather(values: Any) -> Any:
    """An Avalanche data attribute's values in one array, read from the leaves of its FlatData
    tree with array indexing instead of one Python call per element (30x faster on a 1,536-sample
    SplitMNIST experience). Anything else is returned unchanged, for ``as_labels`` to convert."""
    try:
        return _leaves(values)
    except TypeError:
        return values


def _leaves(seq: Any) -> np.ndarray:
    if isinstance(seq, DataAttribute):
        return _leaves(seq.data)
    if isinstance(seq, ConstantSequence):
        return np.full(len(seq), seq[0]) if len(seq) else np.zeros(0, dtype=np.int64)
    if isinstance(seq, FlatData):
        parts = [_leaves(d) for d in seq._datasets]
        flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        indices = seq._indices
        if indices is None:
            return flat
        if isinstance(indices, LazyIndices):
            indices._to_eager()
            indices = indices._eager_list
        return flat[np.asarray(indices, dtype=np.int64)]
    if isinstance(seq, (list, tuple, np.ndarray, torch.Tensor)):
        array = np.asarray(seq.cpu() if isinstance(seq, torch.Tensor) else seq)
        if array.ndim != 1 or array.dtype.kind not in "iu":
            raise TypeError("not a flat integer sequence")  # as_labels reports it properly
        return array
    raise TypeError(f"unknown sequence type {type(seq).__name__}")
