"""Fixed-capacity slot table behind the buffers: samples are referenced, not copied."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, NamedTuple

import numpy as np
import torch
from avalanche.benchmarks.utils import AvalancheDataset

from .. import _avalanche_compat as compat
from ._format import FIELDS, ROW_SOURCE, STATE_VERSION, Stored, check_slots, check_version, migrate_slots
from ._groups import GroupIndex
from ._rows import RowStore, rows_dataset
from ._sources import Offered, SourceTable, part_view
from ._undo import UndoLog


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
    parts, placed, single = [], [], len(selection.parts) == 1
    for sid, (dataset, resolved) in selection.parts.items():
        where = np.arange(len(selection.source)) if single else np.flatnonzero(selection.source == sid)
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


class Savepoint(NamedTuple):
    """What :meth:`SlotStore.rollback` needs to put a store back as it was at :meth:`SlotStore.begin`:
    its attributes, the log of the entries overwritten since, and the source table's and rows' marks."""

    attributes: dict[str, Any]
    undo: UndoLog
    sources: dict[str, Any]
    rows: dict[str, Any]


class SlotStore:
    """Up to ``capacity`` slots; slots ``[0, size)`` are occupied.

    A slot points either at a sample of a dataset the buffer was offered (source id and position,
    see :class:`~._sources.SourceTable`; kept by reference, transforms included) or at a row of
    tensor samples (:class:`~._rows.RowStore`). Class and task labels are kept per slot, so
    counting and sampling never touch the data; the bookkeeping lives in small NumPy arrays
    (plus the ``extra`` per-slot values a buffer asks for), allocated as slots fill, so a huge
    ``capacity`` costs nothing until samples arrive. ``dataset()`` builds the Avalanche view once
    per change: one index list per source over that source's own flat-data children, so its depth
    and width stay those of the offered datasets. The changes made between :meth:`begin` and
    :meth:`commit` are all undone by :meth:`rollback` (before or after the commit: the buffer
    commits as the last step of its own transaction, so one rollback undoes both).

    A write costs what it writes, not the number of slots: the slots per source are counted as
    they change, a field's :meth:`groups` index (built on first use) is moved slot by slot, and a
    rollback writes back only the entries the transaction overwrote.

    Per-sample ``extras`` (name -> floating tensor of one row per slot, allocated with the slot
    arrays) live in a dict of their own, so no extras name can touch the bookkeeping. Rows are as
    wide as the widest row stored under that name; narrower rows are padded with NaN.
    """

    def __init__(self, capacity: int, extra: dict[str, float | int] | None = None) -> None:
        self.capacity = capacity
        self.size = 0
        self.fill = {**FIELDS, **(extra or {})}  # slot-aligned array name -> value of an empty slot
        for name, fill in self.fill.items():
            setattr(self, name, np.full(0, fill, dtype=np.asarray(fill).dtype))
        self.sources = SourceTable()
        self.rows = RowStore()
        self.extras: dict[str, torch.Tensor] = {}  # name -> per-slot rows (replaced on growth, written in place)
        self._view: AvalancheDataset | None = None
        self._pruned_at = 0  # number of sources after the last prune
        self._kinds: dict[int, tuple] = {}  # sid -> (shape, dtype) of its samples, once read (replaced, never changed)
        self.counts: dict[int, int] = {}  # source id (ROW_SOURCE: tensor rows) -> slots holding its samples (> 0)
        self._groups: dict[str, GroupIndex] = {}  # field -> its group index, once built (see `groups`)
        self._undo: UndoLog | None = None  # while in a transaction
        self.version = 0  # bumped on every change, for caches of derived views

    # ---- transactions --------------------------------------------------------------------
    def begin(self) -> Savepoint:
        """Log every later change (the store's writes and the source table's) until :meth:`commit`;
        return what :meth:`rollback` needs to undo them: O(1), not O(slots)."""
        attributes, undo = dict(self.__dict__), UndoLog()
        self._undo = undo
        return Savepoint(attributes, undo, self.sources.mark(undo), self.rows.mark())

    def commit(self) -> None:
        """Stop logging: the changes since :meth:`begin` stay (its savepoint can still undo them)."""
        self._undo = None
        self.sources.unmark()

    def rollback(self, point: Savepoint) -> None:
        """Put the store back exactly as it was when ``point`` was taken, committed or not."""
        point.undo.undo()
        self.__dict__.clear()
        self.__dict__.update(point.attributes)
        self._groups = {}  # they may hold the failed update's moves: rebuilt when next used
        self.sources.reset(point.sources)
        self.rows.reset(point.rows)

    # ---- checks --------------------------------------------------------------------------
    def resolve(self, dataset: Any) -> Offered:
        """Source, positions and labels of every sample of ``dataset`` (see ``SourceTable``)."""
        return self.sources.resolve(dataset)

    def check_batch(self, x: torch.Tensor) -> None:
        """Raise if tensor samples ``x`` could not be stored and collated next to those held
        (another shape or dtype than the rows or the dataset samples held)."""
        self.rows.check(x)
        held = self._dataset_kind()
        if held is not None:
            _same_kind("x samples", (tuple(x.shape[1:]), x.dtype), "dataset samples", held)

    def _dataset_kind(self) -> tuple | None:
        """The (shape, dtype) of the dataset samples held (None: none held), read from one of them
        once per source."""
        sids = [sid for sid in self.counts if sid != ROW_SOURCE]
        known = [sid for sid in sids if sid in self._kinds]
        if known or not sids:
            return self._kinds[known[0]] if known else None
        slot = np.flatnonzero(self.source[: self.size] == sids[0])[:1]  # once per source
        return self._kind(sids[0], lambda: self.dataset(slot)[0][0])

    def check_dataset(self, offer: Offered, dataset: Any, index: int) -> None:
        """Raise if ``dataset``'s samples (``dataset[index]`` read as one of them) could not be
        collated next to the tensor samples held (another shape or dtype)."""
        if self.counts.get(ROW_SOURCE):
            sid = offer.sid if offer.register is None else None
            kind = self._kind(sid, lambda: dataset[index][0])
            rows = self.rows.x
            _same_kind("dataset samples", kind, "tensor samples", (tuple(rows.shape[1:]), rows.dtype))

    def check_extras(self, extras: Any, n: int) -> dict[str, torch.Tensor] | None:
        """Raise unless ``extras`` (None or a dict name -> floating tensor ``[n, width]``) can be
        stored next to the extras held; return them (None: no extras)."""
        held = self.extras if self.size else {}
        if extras is None and not held:
            return None  # the usual case, kept cheap
        if extras is None:
            extras = {}
        if not isinstance(extras, dict):
            raise TypeError(f"extras must be None or a dict {{name: tensor}}, got {type(extras).__name__}")
        for name, value in extras.items():
            _check_extra(name, value, n)
        if self.size and extras.keys() != held.keys():
            raise ValueError(
                f"extras give the names {sorted(extras)}, but the samples this buffer holds carry "
                f"{sorted(held)}: every update must give the same names (an empty buffer takes any)"
            )
        for name, value in extras.items():
            if name in held and value.dtype != held[name].dtype:
                raise ValueError(
                    f"extras[{name!r}] has dtype {value.dtype}, but this buffer stores {name!r} as {held[name].dtype}"
                )
        return extras or None

    def _kind(self, sid: int | None, read: Any) -> tuple:
        """The (shape, dtype) of source ``sid``'s samples (``read()``: one of them), cached per
        source; a sample that is not a tensor gives (its type's name, None)."""
        if sid in self._kinds:
            return self._kinds[sid]
        sample = read()
        tensor = isinstance(sample, torch.Tensor)
        kind = (tuple(sample.shape), sample.dtype) if tensor else (type(sample).__name__, None)
        if sid is not None:
            self._kinds = {**self._kinds, sid: kind}
        return kind

    # ---- writes --------------------------------------------------------------------------
    def write_refs(
        self, slots: np.ndarray, offer: Offered, entering: np.ndarray, extras: Any = None, **extra: Any
    ) -> None:
        """Point ``slots`` at the offered samples at positions ``entering`` of ``offer``; ``extras``:
        None or name -> their extras rows (CPU, as checked by :meth:`check_extras`)."""
        if not len(slots):
            return
        self.sources.commit(offer)
        self._assign(
            slots,
            extras,
            source=offer.sid,
            index=offer.positions[entering],
            targets=offer.targets[entering],
            tasks=offer.tasks[entering],
            **extra,
        )
        if len(self.sources) > 2 * self._pruned_at + 4:  # amortised: forget unreferenced sources
            self._prune()

    def write_rows(
        self, slots: np.ndarray, x: torch.Tensor, y: np.ndarray, t: np.ndarray, extras: Any = None, **extra: Any
    ) -> None:
        """Store tensor samples ``x`` (CPU; labels ``y``, tasks ``t``) in ``slots``, with their
        ``extras`` rows as in :meth:`write_refs`."""
        if not len(slots):
            return
        rows, remap = self.rows.append(x, y, self._live_rows)
        if remap is not None:
            index, held = self.index.copy(), self.source[: self.size] == ROW_SOURCE
            index[: self.size][held] = remap[index[: self.size][held]]
            self.index = index
        self._assign(slots, extras, source=ROW_SOURCE, index=rows, targets=y, tasks=t, **extra)

    def _assign(self, slots: np.ndarray, extras: dict[str, torch.Tensor] | None = None, **values: Any) -> None:
        """Write per-slot ``values`` (one array or scalar per field) and ``extras`` rows into ``slots``."""
        end = int(slots.max()) + 1
        if not self.size and self.extras:
            self.extras = {}  # an empty store takes any extras names
        self._reserve(end)
        if extras:
            self._write_extras(slots, extras)
        held = slots < self.size  # the slots whose old values are replaced
        self._count(Counter(self.source[slots[held]].tolist()), -1)
        self._count(Counter(np.broadcast_to(values["source"], slots.shape).tolist()), +1)
        for name, value in values.items():
            array = getattr(self, name)
            if name in self._groups:
                self._regroup(self._groups[name], slots, held, array, value)
            if self._undo is not None:
                self._undo.record(array, slots)
            array[slots] = value
        self.size = max(self.size, end)
        self._changed()

    def _count(self, sources: Counter, sign: int) -> None:
        """Add ``sign`` times each source's number in ``sources`` to its slot count."""
        for sid, k in sources.items():
            if self._undo is not None:
                self._undo.record(self.counts, sid)
            total = self.counts.get(sid, 0) + sign * k
            if total:
                self.counts[sid] = total
            else:
                del self.counts[sid]

    @staticmethod
    def _regroup(index: GroupIndex, slots: np.ndarray, held: np.ndarray, array: np.ndarray, value: Any) -> None:
        """Move each of ``slots`` to its new group ``value`` in ``index`` (``held``: it had one before)."""
        new = np.broadcast_to(value, slots.shape).tolist()
        old = np.where(held, array[slots], -1).tolist()
        for slot, was, had, now in zip(slots.tolist(), old, held.tolist(), new, strict=True):
            index.move(slot, was if had else None, now)

    def groups(self, field: str, values: np.ndarray | None = None) -> GroupIndex:
        """The :class:`GroupIndex` of a per-slot field (``"targets"``, ``"tasks"``, ``"experiences"``):
        built on first use, O(size log size), from ``values`` if given (the values of slots
        ``0, 1, ...``), else from the occupied slots; then kept up to date by every write, so a
        buffer may also move slots in it ahead of the write that stores them."""
        index = self._groups.get(field)
        if index is None:
            index = GroupIndex(getattr(self, field)[: self.size] if values is None else values)
            self._groups = {**self._groups, field: index}
        return index

    def _reserve(self, n: int) -> None:
        """Allocate the slot arrays for at least ``n`` slots (doubling, up to the capacity)."""
        have = len(self.source)
        if n > have:
            length = min(self.capacity, max(n, 2 * have, 16))
            for name, fill in self.fill.items():
                array = np.full(length, fill, dtype=np.asarray(fill).dtype)
                array[:have] = getattr(self, name)
                setattr(self, name, array)
            self.extras = {
                name: _nan_rows(length, rows.shape[1], rows.dtype, rows) for name, rows in self.extras.items()
            }

    def _write_extras(self, slots: np.ndarray, extras: dict[str, torch.Tensor]) -> None:
        """Write each name's rows into ``slots``, widening that name's storage (NaN-padded) to
        the widest row seen; the old rows are recorded for a rollback."""
        index = torch.from_numpy(slots)
        for name, rows in extras.items():
            store = self.extras.get(name)
            if store is None or store.shape[1] != rows.shape[1]:
                store, rows = self._fit_extras(name, rows)
            if self._undo is not None:
                self._undo.record(store, index)
            store.index_copy_(0, index, rows)

    def _fit_extras(self, name: str, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The storage of ``name`` made at least as wide as ``rows`` (new storage, in a new dict,
        if it had to grow), and ``rows`` padded with NaN to its width."""
        store, width = self.extras.get(name), rows.shape[1]
        if store is None or store.shape[1] < width:
            store = _nan_rows(len(self.source), width, rows.dtype, store)
            self.extras = {**self.extras, name: store}
        elif store.shape[1] > width:
            rows = torch.nn.functional.pad(rows, (0, store.shape[1] - width), value=math.nan)
        return store, rows

    def _live_rows(self) -> np.ndarray:
        size = self.size
        return self.index[:size][self.source[:size] == ROW_SOURCE]

    def _changed(self) -> None:
        self._view = None
        self.version += 1

    def _prune(self) -> None:
        self.sources.retain(set(self.counts))
        self._pruned_at = len(self.sources)

    def _recount(self) -> None:
        """Count the slots per source and forget derived indices (after slots were moved wholesale)."""
        sids, n = np.unique(self.source[: self.size], return_counts=True)
        self.counts = dict(zip(sids.tolist(), n.tolist(), strict=True))
        self._groups = {}

    def keep(self, slots: np.ndarray, capacity: int) -> None:
        """Keep only ``slots`` (moved to the front, in that order) and set a new capacity."""
        for name in self.fill:
            setattr(self, name, getattr(self, name)[slots])
        kept = torch.from_numpy(np.asarray(slots, dtype=np.int64))
        self.extras = {name: rows[kept] for name, rows in self.extras.items()} if len(slots) else {}
        self.capacity, self.size = capacity, len(slots)
        self._compact_rows()
        self._recount()
        self._prune()
        self._changed()

    def _compact_rows(self) -> None:
        live, index = self._renumbered_rows()
        self.rows.load_state_dict(self.rows.state_dict(live))
        self.index = index

    def _renumbered_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The tensor rows in use, in slot order, and the slots' indices with those rows numbered
        0, 1, ... in that order (as a compacted row store holds them)."""
        size, live = self.size, self._live_rows()
        index = self.index[:size].copy()
        index[self.source[:size] == ROW_SOURCE] = np.arange(len(live))
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
        sids = [int(source[0])] if len(source) and source.min() == source.max() else np.unique(source).tolist()
        parts = {sid: self.sources.entry(sid) for sid in sids if sid != ROW_SOURCE}
        if ROW_SOURCE in sids:
            parts[ROW_SOURCE] = (self.rows.dataset(), True)  # last: the view takes the first part's group
        return Selection(source, self.index[slots], self.targets[slots], self.tasks[slots], parts)

    # ---- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Slot contents for exact resumption; holds the referenced datasets and the tensor rows
        in use, so it grows with what is stored, not with the capacity or the sources seen."""
        size, (live, index) = self.size, self._renumbered_rows()
        fields = {name: torch.from_numpy(getattr(self, name)[:size].copy()) for name in self.fill}
        return {
            "capacity": self.capacity,
            "size": size,
            "extra": self.extra_fill(),
            "fields": {**fields, "index": torch.from_numpy(index)},
            "sources": self.sources.state_dict(set(np.unique(self.source[:size]).tolist()) - {ROW_SOURCE}),
            "rows": self.rows.state_dict(live),
            "extras": {name: self.extras[name][:size].clone() for name in sorted(self.extras)} if size else {},
        }

    def extra_fill(self) -> dict[str, float | int]:
        """The per-slot fields a buffer added to :data:`FIELDS`, and their empty value."""
        return {name: fill for name, fill in self.fill.items() if name not in FIELDS}

    def stored(self) -> Stored:
        """The occupied slots' number and fields (views, not copies), and the capacity: what a
        buffer's state checks read."""
        return Stored(self.size, self.capacity, {name: getattr(self, name)[: self.size] for name in self.fill})

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (checked by the caller: see ``_format.check_slots``)."""
        self.__init__(state["capacity"], state["extra"])
        self.size = state["size"]
        for name in self.fill:
            setattr(self, name, state["fields"][name].numpy().copy())
        self.sources.load_state_dict(state["sources"])
        self.rows.load_state_dict(state["rows"])
        self.extras = {name: rows.clone() for name, rows in state["extras"].items()}
        self._recount()
        self._pruned_at = len(self.sources)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.state_dict(), "version": STATE_VERSION}  # a pickle holds what state_dict holds

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle: the version checked (a pickle without one was written before version 3:
        version 2 if its fields have ``experiences``, else 1), older versions migrated, and the
        state checked as ``load_state_dict`` checks it, before it is loaded."""
        state = dict(state)
        fields = state.get("fields")
        before = 2 if isinstance(fields, dict) and "experiences" in fields else 1
        version = check_version("pickled buffer's slots", "avalanche_replay_ext", state.pop("version", before))
        state = migrate_slots(state, version)
        check_slots(state, "pickled buffer's slots")
        self.load_state_dict(state)


def _check_extra(name: Any, value: Any, n: int) -> None:
    """Raise unless ``value`` can be the extras rows named ``name`` of ``n`` offered samples."""
    if not isinstance(name, str):
        raise TypeError(f"extras names must be str, got {name!r} of type {type(name).__name__}")
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"extras[{name!r}] must be a tensor, got {type(value).__name__}")
    if not value.is_floating_point():
        raise TypeError(f"extras[{name!r}] must be a floating point tensor, got dtype {value.dtype}")
    if value.dim() != 2:
        raise ValueError(f"extras[{name!r}] must be 2-D (one row per sample offered), got shape {tuple(value.shape)}")
    if len(value) != n:
        raise ValueError(f"extras[{name!r}] has {len(value)} rows, expected {n}: one per sample offered")


def _nan_rows(length: int, width: int, dtype: torch.dtype, rows: torch.Tensor | None = None) -> torch.Tensor:
    """``length`` rows of ``width`` NaN, with ``rows`` (if any) copied into the top left."""
    out = torch.full((length, width), math.nan, dtype=dtype)
    if rows is not None:
        out[: len(rows), : rows.shape[1]] = rows
    return out


def _same_kind(what: str, kind: tuple, held: str, held_kind: tuple) -> None:
    """Raise unless samples of (shape, dtype) ``kind`` collate with those held, of ``held_kind``."""
    (shape, dtype), (held_shape, held_dtype) = kind, held_kind
    if shape != held_shape:
        raise ValueError(
            f"{what} have shape {shape}, but this buffer holds {held} of shape {held_shape}: "
            "they could not be collated into one minibatch"
        )
    if dtype != held_dtype:
        raise ValueError(
            f"{what} have dtype {dtype}, but this buffer holds {held} of dtype {held_dtype}: "
            "they could not be collated into one minibatch"
        )
