"""The datasets a buffer's slots point into, each offered dataset resolved to a shared source."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from avalanche.benchmarks.utils import AvalancheDataset

from .. import _avalanche_compat as compat
from .._checks import as_labels, check_nonnegative
from ._undo import UndoLog


class Offered(NamedTuple):
    """A dataset resolved to a source: its samples are ``positions`` of source ``sid``. The arrays
    may be shared with the dataset or a cache: read them, never write to them. ``register`` is set
    when the source is new, or when its representative should become this dataset:
    :meth:`SourceTable.commit` does it once a sample enters, so an offer that changes nothing
    leaves the table as it was."""

    sid: int
    positions: np.ndarray
    targets: np.ndarray
    tasks: np.ndarray
    register: tuple | None  # (key, dataset, resolved): the source to register or renew on commit


class SourceTable:
    """Source id -> the dataset slots of that source point into.

    Datasets that differ only in their index list over the same Avalanche flat-data children and
    transforms (the subsets of one experience, ``split_online_stream``'s mini-experiences, an
    experience and its ``.train()`` copy) resolve to one source, a slot holding the sample's position
    in the source; so however many such datasets a stream offers, the buffer references a few
    sources. Any other dataset is a source of its own, a slot holding the sample's index in it.
    """

    def __init__(self) -> None:
        self.datasets: dict[int, AvalancheDataset] = {}  # sid -> representative dataset
        self.resolved: dict[int, bool] = {}  # sid -> positions are flat-data positions (else indices)
        self._by_key: dict[tuple, list[int]] = {}  # lists are replaced, never changed
        self._recent: OrderedDict[int, tuple] = OrderedDict()  # id(dataset) -> (dataset, what _read found)
        self._labels = compat.LeafCache()
        self._signatures = compat.LeafCache()  # flat-data children -> their compat.node_signature
        self._next = 0
        self.undo: UndoLog | None = None  # where writes are logged, during a transaction (see SlotStore)

    def __len__(self) -> int:
        return len(self.datasets)

    def resolve(self, dataset: Any) -> Offered:
        """The source of ``dataset`` (to be registered by :meth:`commit` if new) and its samples'
        positions and labels. Raises if ``dataset`` has no usable class labels; changes nothing
        but caches."""
        hit = self._recent.get(id(dataset))
        if hit is not None and hit[0] is dataset:
            self._recent.move_to_end(id(dataset))
            found = hit[1]
        else:
            found = self._read(dataset)
            if len(found[1]) >= 256:  # worth remembering: offered again by index, it costs nothing more
                self._recent[id(dataset)] = (dataset, found)
                if len(self._recent) > 4:
                    self._recent.popitem(last=False)
        positions, targets, tasks, key, resolved = found
        for sid in self._by_key.get(key, ()):
            rep = self.datasets[sid]
            if rep is dataset or (
                resolved and compat.same_transforms(rep, dataset) and compat.equivalent_children(rep, dataset)
            ):
                # equivalent children that are other objects (the benchmark built again after a
                # resume): the newest dataset becomes the representative, and the old tree is freed
                renew = rep is not dataset and not compat.same_children(rep, dataset)
                return Offered(sid, positions, targets, tasks, (key, dataset, resolved) if renew else None)
        return Offered(self._next, positions, targets, tasks, (key, dataset, resolved))

    def commit(self, offer: Offered) -> None:
        """Register ``offer``'s source if it is new, or make its dataset the representative of the
        source it matched (call once a sample of it enters)."""
        if offer.register is None:
            return
        key, dataset, resolved = offer.register
        if offer.sid in self.datasets:
            self._write(self.datasets, offer.sid, dataset)
        else:
            self.add(offer.sid, dataset, resolved, key)

    def _read(self, dataset: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple, bool]:
        """Positions, class and task labels, source key and whether positions are flat-data positions."""
        targets, tasks = self._labels_of(dataset)
        key = compat.source_key(dataset, self._signatures)
        if key is None:  # opaque: a source of its own, positions are its indices
            return np.arange(len(dataset)), targets, tasks, ("dataset", id(dataset)), False
        return compat.flat_indices(dataset), targets, tasks, key, True

    def _labels_of(self, dataset: Any) -> tuple[np.ndarray, np.ndarray]:
        targets = compat.label_attribute(dataset, "targets") if compat.is_avalanche_dataset(dataset) else None
        if targets is None:
            raise TypeError(
                "dataset must be an AvalancheDataset with class `targets` "
                f"(e.g. `experience.dataset`), got {type(dataset).__name__} without them"
            )
        n, tasks = len(dataset), compat.label_attribute(dataset, "targets_task_labels")
        targets = self._label_array("dataset.targets", targets, n)
        if tasks is None:
            return targets, np.zeros(n, dtype=np.int64)
        return targets, self._label_array("dataset.targets_task_labels", tasks, n)

    def _label_array(self, name: str, values: Any, n: int) -> np.ndarray:
        array = compat.gather(values, self._labels)
        if isinstance(array, np.ndarray) and array.shape == (n,) and array.dtype.kind in "iu":
            array = array.astype(np.int64, copy=False)  # read-only from here on (see compat.gather)
            check_nonnegative(name, array)
            return array
        return as_labels(name, array, n).numpy()

    def add(self, sid: int, dataset: Any, resolved: bool, key: tuple | None = None) -> None:
        """Register ``dataset`` as source ``sid`` (``resolved``: slots hold flat-data positions)."""
        key = key or (resolved and compat.source_key(dataset, self._signatures)) or ("dataset", id(dataset))
        self._write(self.datasets, sid, dataset)
        self._write(self.resolved, sid, resolved)
        self._write(self._by_key, key, [*self._by_key.get(key, ()), sid])
        self._next = max(self._next, sid + 1)

    def retain(self, used: set[int]) -> None:
        """Forget the sources not in ``used`` (no slot points into them any more): new dicts, so
        a rollback restores the old ones."""
        self.datasets = {sid: d for sid, d in self.datasets.items() if sid in used}
        self.resolved = {sid: r for sid, r in self.resolved.items() if sid in used}
        self._by_key = {k: kept for k, sids in self._by_key.items() if (kept := [s for s in sids if s in used])}

    def _write(self, table: dict, key: Any, value: Any) -> None:
        if self.undo is not None:
            self.undo.record(table, key)
        table[key] = value

    def entry(self, sid: int) -> tuple[AvalancheDataset, bool]:
        """Source ``sid``'s dataset, and whether slots hold flat-data positions in it (else indices)."""
        return self.datasets[sid], self.resolved[sid]

    def mark(self, undo: UndoLog) -> dict[str, Any]:
        """Log every later write to ``undo`` (until :meth:`unmark`); return what :meth:`reset`
        needs, once ``undo`` is undone, to put the table back as it is now: O(1), not O(sources)."""
        self.undo = undo
        return {**self.__dict__, "undo": None}

    def reset(self, mark: dict[str, Any]) -> None:
        self.__dict__.clear()
        self.__dict__.update(mark)

    def unmark(self) -> None:
        self.undo = None

    def state_dict(self, used: set[int]) -> dict[str, Any]:
        return {"datasets": {s: self.datasets[s] for s in used}, "resolved": {s: self.resolved[s] for s in used}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.__init__()
        for sid, dataset in state["datasets"].items():
            self.add(sid, dataset, state["resolved"][sid])

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_recent": OrderedDict(), "undo": None}


def part_view(
    dataset: AvalancheDataset, resolved: bool, positions: np.ndarray, labels: dict[str, Sequence[int]]
) -> AvalancheDataset:
    """The samples at ``positions`` of a source (see :meth:`SourceTable.entry`), with the given
    label attributes (the same kind of sequence in every part, so the parts concatenate)."""
    if resolved:
        return compat.source_view(dataset, positions, labels)
    return compat.relabel(dataset.subset(positions.tolist()), labels)
