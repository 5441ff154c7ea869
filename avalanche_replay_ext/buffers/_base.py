"""What this package's buffers share: slots, an own generator, and every way to offer samples."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from avalanche.benchmarks.utils import AvalancheDataset
from avalanche.training.storage_policy import ExemplarsBuffer

from .._checks import as_labels, check_seed, check_size, make_generator
from ._format import (
    COUNTERS,
    STATE_VERSION,
    Stored,
    check_counters,
    check_extra_fill,
    check_slots,
    check_version,
    migrate_slots,
)
from ._slots import SlotStore

GROUPBY = {"class": "targets", "task": "tasks", "experience": "experiences"}
"""What a buffer records per stored sample (the tutorial's ``groupby`` names) -> its slot field."""
_PICKLED_FORMAT = "state format"  # key of (kind, version) in a pickle: no attribute has that name


class SlotBuffer(ExemplarsBuffer):
    """Base of the buffers: subclasses only decide, in :meth:`_offer`, which offered samples
    enter and which slots they take. Dataset samples are kept by reference; tensor minibatches
    are copied into rows that grow with the samples held. Arguments are checked before any change,
    and every update runs as a transaction: if anything inside it fails, the buffer is put back
    exactly as it was. ``max_size`` has no upper bound: the bookkeeping grows with the samples held.
    A state (``load_state_dict``) or pickle of another kind, of a version this package does not
    read or that contradicts itself is refused before anything changes; version 2 is migrated.

    Each stored sample can carry *extras*, per-sample tensors offered with it (the ``extras``
    argument of :meth:`update_from_dataset` and :meth:`update_from_batch`; the logits of Dark
    Experience Replay, say): rows stored detached, on the CPU, in the dtype given, next to their
    sample through every replacement, resize, state and pickle, read with :meth:`stored_extras`.
    A buffer that holds samples takes the same extras names (possibly none), each in the dtype
    stored, on every update; an empty one takes any. Rows of one name may differ in width between
    updates (a classifier that grew): all are stored as wide as the widest seen, each row keeping
    its own units and NaN beyond them, so compare on the stored units (mask the NaN).

    :param max_size: number of slots, a positive int.
    :param seed: seed of the buffer's own ``torch.Generator``; ``None`` draws it from the global
        torch RNG.
    """

    STATE_KIND = "slots"  # what `state_dict` says it is; a subclass with more state names its own
    STATE_VERSION = STATE_VERSION  # 2: per-slot experiences; 3: slots' extras always present (see _format)
    _SLOT_EXTRA: dict[str, float | int] = {}  # per-slot values a subclass keeps next to the samples
    _STATE_EXTRA: tuple[str, ...] = ()  # what a subclass adds to `state_dict`
    _DERIVED: tuple[str, ...] = ()  # attributes a subclass derives from the slots: None until rebuilt

    def __init__(self, max_size: int, seed: int | None = None) -> None:
        max_size = check_size("max_size", max_size)
        super().__init__(max_size)
        self.seed = check_seed(seed)
        self.generator = make_generator(self.seed)
        self.n_seen = 0
        self.experience = 0
        """The experience samples arrive in when an update names none: the last one named (0 at first)."""
        self._slots = SlotStore(max_size, self._SLOT_EXTRA)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """Run the block as one transaction over the buffer and its slot store: if anything raises
        before it has returned (an interrupt while the store commits included), both are put back
        exactly as they were (counters, generator, slots, sources, rows, cached views). The store
        commits as the last step, and its savepoint still undoes a commit, so no exception can
        leave the store updated under the buffer's old counters."""
        attributes, rng, store = dict(self.__dict__), self.generator.get_state(), self._slots
        point = store.begin()
        try:
            yield
            store.commit()
        except BaseException:
            store.rollback(point)
            self.__dict__.clear()
            self.__dict__.update(attributes)
            self.generator.set_state(rng)
            self._forget_derived()  # they may hold the failed update's changes
            raise

    def _forget_derived(self) -> None:
        for name in self._DERIVED:
            setattr(self, name, None)

    def __len__(self) -> int:
        """Number of samples stored (O(1); ``len(buffer.buffer)`` builds the view first)."""
        return self._slots.size

    def __bool__(self) -> bool:
        return True  # a buffer is an object, not a container: an empty one is not falsy

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
        """Add the experience's dataset (Avalanche 0.6 hook; ``update(strategy)`` calls it),
        recording its index in the stream (the origin experience's, for online streams). It offers
        no extras, so a buffer whose samples carry extras refuses it (``ValueError``)."""
        self.update_from_dataset(exp.dataset, experience=experience_index(exp))

    def update_from_dataset(
        self, new_data: AvalancheDataset, indices: Any = None, *, experience: Any = None, extras: Any = None
    ) -> None:
        """Offer samples of ``new_data`` (all, or the given ``indices``), kept by reference.

        Passing the indices of each current minibatch gives a per-minibatch (online) update that
        copies nothing.

        :param experience: the experience these samples arrive in (an int >= 0), recorded per
            stored sample for ``BalancedRetrieval(groupby="experience")``; ``None``: the last one
            named (:attr:`experience`).
        :param extras: None, or a dict name (str) -> floating point tensor ``[samples, width]``
            with one row per sample offered (in the order of ``indices``, or of ``new_data``):
            each entering sample's rows are stored with it (see the class docstring). A buffer
            that holds samples must be given the names its samples carry, in the dtype stored.
        """
        experience = self._check_experience(experience)
        offer = self._slots.resolve(new_data)
        n = len(offer.targets)
        indices = np.arange(n) if indices is None else _positions("indices", indices, n, " for this dataset")
        extras = self._slots.check_extras(extras, len(indices))
        if not len(indices):
            return
        self._slots.check_dataset(offer, new_data, int(indices[0]))
        with self._transaction():
            self.experience = experience
            entering, slots, extra = self._offer(offer.targets[indices])
            rows = _entering_rows(extras, entering)
            self._slots.write_refs(slots, offer, indices[entering], rows, experiences=experience, **extra)

    def update_from_batch(
        self, x: torch.Tensor, y: Any, t: Any = None, *, experience: Any = None, extras: Any = None
    ) -> None:
        """Offer a tensor minibatch ``(x, y, t)``; entering samples are copied (detached, CPU).

        :param x: inputs, first dimension is the batch.
        :param y: integer class labels (>= 0), one per sample.
        :param t: task labels (>= 0): a sequence, one int for all, or None (task 0).
        :param experience: as in :meth:`update_from_dataset`.
        :param extras: as in :meth:`update_from_dataset`, one row per sample of ``x``.
        """
        experience = self._check_experience(experience)
        if not isinstance(x, torch.Tensor) or x.dim() < 1:
            raise TypeError(f"x must be a tensor with a batch dimension, got {type(x).__name__}")
        y = as_labels("y", y, len(x)).numpy()
        t = torch.as_tensor(0 if t is None else t)
        t = as_labels("t", t.expand(len(x)) if t.dim() == 0 else t, len(x)).numpy()
        extras = self._slots.check_extras(extras, len(x))
        if not len(x):
            return
        self._slots.check_batch(x)
        with self._transaction():
            self.experience = experience
            entering, slots, extra = self._offer(y)
            rows = x[torch.from_numpy(entering)].detach().to("cpu")
            extra_rows = _entering_rows(extras, entering)
            self._slots.write_rows(slots, rows, y[entering], t[entering], extra_rows, experiences=experience, **extra)

    def _check_experience(self, experience: Any) -> int:
        if experience is None:
            return self.experience
        if isinstance(experience, bool) or not isinstance(experience, (int, np.integer)) or experience < 0:
            raise ValueError(f"experience must be None or an int >= 0, got {experience!r}")
        return int(experience)

    # ---- reads ---------------------------------------------------------------------------
    def stored_groups(self, groupby: str) -> torch.Tensor:
        """Each stored sample's class, task label or experience (``groupby``: ``"class"``,
        ``"task"`` or ``"experience"``), in the order :attr:`buffer` lists the samples."""
        if groupby not in GROUPBY:
            raise ValueError(f"groupby must be one of {list(GROUPBY)}, got {groupby!r}")
        return torch.from_numpy(getattr(self._slots, GROUPBY[groupby])[self._view_slots()].copy())

    @property
    def extra_names(self) -> tuple[str, ...]:
        """The names of the extras the stored samples carry, sorted (empty: none)."""
        return tuple(sorted(self._slots.extras)) if self._slots.size else ()

    def stored_extras(self, name: str, positions: Any = None) -> torch.Tensor:
        """The extras rows named ``name`` of the stored samples, in the order :attr:`buffer`
        lists them, or of those at ``positions`` (a flat sequence of positions in that order).
        A new tensor: later updates do not change it. Rows narrower than the widest stored end
        in NaN (see the class docstring). Raises ``KeyError`` for a name the samples do not carry."""
        if name not in self.extra_names:
            raise KeyError(f"no extras named {name!r}: the stored samples carry {list(self.extra_names)}")
        slots = self._view_slots() if positions is None else self._slots_at(positions)
        return self._slots.extras[name][torch.from_numpy(slots)]

    def buffer_subset(self, positions: Any) -> AvalancheDataset:
        """``buffer.subset(positions)`` without building :attr:`buffer`: the stored samples at
        ``positions`` (a flat sequence of positions in :attr:`buffer`'s order, repeats allowed) as
        one Avalanche dataset with their labels, in that order. A snapshot: later updates do not
        change it. It costs O(len(positions)) whatever the number stored, so a replay loader
        reads each step's memory samples this way."""
        return self._slots.dataset(self._slots_at(positions))

    def group_positions(self, groupby: str) -> dict[int, Sequence[int]]:
        """Group (class, task label or experience, as ``groupby`` names) -> the positions of its
        samples in :attr:`buffer`'s order, ascending, for the groups present, in ascending order.
        Kept up to date as samples enter after it is first asked for (O(len log len) once, then
        O(log len) per entering sample), so a balanced draw never reads all the labels. Live
        sequences: read them before the next update."""
        if groupby not in GROUPBY:
            raise ValueError(f"groupby must be one of {list(GROUPBY)}, got {groupby!r}")
        return self._slots.groups(GROUPBY[groupby]).members  # positions are slots here

    def _view_slots(self) -> np.ndarray:
        """The occupied slots in the order :attr:`buffer` lists their samples."""
        return np.arange(self._slots.size)

    def _slots_at(self, positions: Any) -> np.ndarray:
        """The slots of the samples at ``positions`` of :attr:`buffer` (checked: an int sequence in range)."""
        return _positions("positions", positions, self._slots.size, ": the stored samples")

    def _offer(self, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Count the offered samples (class labels ``targets``) as seen; return the positions
        of those entering, the slots they take (distinct; each ``< max_size``) and the values of
        the subclass's per-slot extras for them. Runs in a transaction: may change the buffer."""
        raise NotImplementedError

    # ---- state ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Sampling state (counters, generator) and slot contents, for exact resumption."""
        return {
            "kind": self.STATE_KIND,
            "version": self.STATE_VERSION,
            **self._counters(),
            "slots": self._slots.state_dict(),
            **self._extra_state(),
        }

    def _counters(self) -> dict[str, Any]:
        """The buffer's own entries of :meth:`state_dict` (``_format.COUNTERS``)."""
        return {
            "max_size": self.max_size,
            "seed": self.seed,
            "n_seen": self.n_seen,
            "experience": self.experience,
            "generator": self.generator.get_state(),
        }

    def _extra_state(self) -> dict[str, Any]:
        """What a subclass adds to :meth:`state_dict` (the ``_STATE_EXTRA`` entries)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` of a buffer of the same kind; later updates continue
        exactly as the original would. A state of another kind, of a version this package does not
        read (it reads version 3 and migrates version 2, written before the extras existed: no
        extras) or whose entries contradict each other raises ``ValueError`` or ``TypeError``
        naming the entry, and changes nothing."""
        state = self._check_state(state)
        with self._transaction():
            slots = SlotStore(state["max_size"])
            slots.load_state_dict(state["slots"])
            self.generator.set_state(state["generator"])
            self.max_size, self.seed, self.n_seen = state["max_size"], state["seed"], state["n_seen"]
            self.experience = state["experience"]
            self._slots = slots
            self._load_extra(state)
            self._forget_derived()

    def _load_extra(self, state: dict[str, Any]) -> None:
        """Restore what a subclass adds to :meth:`state_dict` (checked by ``_check_state``)."""

    def _check_state(self, state: Any) -> dict[str, Any]:
        """Return ``state`` in the current format (version 2 migrated) if it is a complete and
        consistent state of this kind, else raise ``ValueError`` or ``TypeError`` naming the entry
        and what is allowed. Changes nothing; O(size log size + sources)."""
        name = type(self).__name__
        if not isinstance(state, dict) or "kind" not in state:
            raise ValueError(f"state must be the state_dict() of a {name}, got {type(state).__name__} without 'kind'")
        version = self._check_format(state["kind"], state.get("version"), "state")
        missing = {*COUNTERS, "slots", *self._STATE_EXTRA} - set(state)
        if missing:
            raise ValueError(f"state is incomplete for a {name}: no {sorted(missing)}")
        state = {**state, "slots": migrate_slots(state["slots"], version)}
        self._check_slot_extra(state["slots"].get("extra") if isinstance(state["slots"], dict) else None, "state")
        self._check_values(state, check_slots(state["slots"], "state's slots"), "state")
        return state

    def _check_format(self, kind: Any, version: Any, what: str) -> int:
        """The version of a state or pickle (``what``) of kind ``kind``, if this buffer reads it."""
        name = type(self).__name__
        if kind != self.STATE_KIND:
            raise ValueError(f"{what} is a {kind!r} buffer's state; a {name} loads {self.STATE_KIND!r} states")
        return check_version(what, name, version)

    def _check_slot_extra(self, extra: Any, what: str) -> None:
        if extra != self._SLOT_EXTRA:
            name = type(self).__name__
            raise ValueError(f"{what}'s slots hold {extra!r} per slot; a {name} holds {self._SLOT_EXTRA!r}")

    def _check_values(self, values: dict[str, Any], stored: Stored, what: str) -> None:
        """Raise unless the buffer's entries of a state (``values``: the counters and the
        ``_STATE_EXTRA`` entries, as :meth:`state_dict` gives them) agree with its slots ``stored``."""
        check_counters(values, stored, what)
        self._check_extra(values, stored, what)

    def _check_extra(self, values: dict[str, Any], stored: Stored, what: str) -> None:
        """Raise unless a subclass's entries of a state (and per-slot fields) are valid (none here)."""

    def __getstate__(self) -> dict[str, Any]:
        return {  # derived state is rebuilt when needed; the format is checked when unpickled
            **self.__dict__,
            **dict.fromkeys(self._DERIVED),
            _PICKLED_FORMAT: (self.STATE_KIND, self.STATE_VERSION),
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle with :meth:`load_state_dict`'s checks: kind, version (a pickle without them was
        written before version 3: version 2 if it has ``experience``, else 1) and every entry
        against the slots (themselves checked when unpickled, see ``SlotStore.__setstate__``)."""
        what, state = f"pickled {type(self).__name__}", dict(state)
        before = (self.STATE_KIND, 2 if "experience" in state else 1)
        self._check_format(*state.pop(_PICKLED_FORMAT, before), what)
        missing = {*COUNTERS, "_slots", *self._STATE_EXTRA} - set(state)
        if missing:
            raise ValueError(f"{what} is incomplete: no {sorted(missing)}")
        slots, generator = state["_slots"], state["generator"]
        if not isinstance(slots, SlotStore) or not isinstance(generator, torch.Generator):
            got = f"{type(slots).__name__} and {type(generator).__name__}"
            raise TypeError(f"{what} must hold a SlotStore (_slots) and a torch.Generator (generator), got {got}")
        self._check_slot_extra(check_extra_fill(slots.extra_fill(), what), what)
        self.__dict__.update(state)
        self._forget_derived()  # an older pickle may lack a derived attribute added since
        self._check_values({**self._counters(), **self._extra_state()}, slots.stored(), what)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(max_size={self.max_size}, size={self._slots.size}, n_seen={self.n_seen})"


def _positions(name: str, values: Any, n: int, where: str) -> np.ndarray:
    """``values`` as an int64 array of positions in ``[0, n)``, else raise naming ``name``."""
    positions = as_labels(name, values, nonnegative=False).numpy()
    if len(positions) and (positions.min() < 0 or positions.max() >= n):
        raise IndexError(f"{name} must lie in [0, {n}){where}")
    return positions


def _entering_rows(extras: dict[str, torch.Tensor] | None, entering: np.ndarray) -> dict[str, torch.Tensor] | None:
    """The extras rows of the entering samples (at positions ``entering`` of the offer), on the CPU."""
    if extras is None or not len(entering):
        return None
    index = torch.from_numpy(entering)
    return {name: rows.detach()[index].cpu() for name, rows in extras.items()}


def experience_index(exp: Any) -> int | None:
    """An experience's index in its stream (its origin experience's, for Avalanche's online
    streams), or None when it has none."""
    origin = getattr(exp, "origin_experience", None) or exp
    index = getattr(origin, "current_experience", None)
    return None if index is None else int(index)
