"""The buffers' state format: its version, what older versions become, and the checks a state (from
``load_state_dict`` or a pickle) passes before anything changes."""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import numpy as np
import torch

from .. import _avalanche_compat as compat
from .._checks import check_seed, check_size

STATE_VERSION = 3
"""Version of the format of ``SlotBuffer.state_dict()`` and of the buffers' pickles. Bumped with
every change of that format:

1. (issue 12) counters, generator and slots: per-slot ``source``, ``index``, ``targets``,
   ``tasks`` and the buffer's own fields, the sources, the tensor rows;
2. (issue 15) the buffer's ``experience`` and the slots' ``experiences`` field; the slots'
   ``extras`` came later (issue 16) under the same number, so a version 2 state may lack them;
3. (issue 23) the slots' ``extras`` always present; pickles record their kind and version.

Version 2 is migrated when read (no ``extras``: no extras); version 1 is refused, see ``_REFUSED``.
"""
MIGRATED = 2  # the one older version read
_REFUSED = {
    1: ": version 1 states do not record each stored sample's experience (added in version 2), so "
    "they cannot be migrated; rebuild the buffer from its stream"
}

ROW_SOURCE = -1  # source id of a slot whose sample is a tensor row of the RowStore
FIELDS = {"source": ROW_SOURCE, "index": 0, "targets": 0, "tasks": 0, "experiences": 0}
"""The slot-aligned int64 fields every store keeps, and their empty value; ``experiences``: the
experience each sample arrived in."""
_NONNEGATIVE = ("index", "targets", "tasks", "experiences")
_SLOTS_KEYS = ("capacity", "size", "extra", "fields", "sources", "rows")  # and "extras", named apart when missing
COUNTERS = ("max_size", "seed", "n_seen", "experience", "generator")
"""The buffer's own entries of a state, next to ``kind``, ``version`` and ``slots``."""


class Stored(NamedTuple):
    """What a buffer's checks read of the slots of a state: how many are occupied, the capacity,
    and each field's values for the occupied slots."""

    size: int
    capacity: int
    fields: dict[str, np.ndarray]


def check_version(what: str, reader: str, version: Any) -> int:
    """``version`` if this package reads it (the current one or ``MIGRATED``), else raise a
    ``ValueError`` naming it, the versions read and, if known, why it cannot be migrated."""
    if _is_int(version) and version in (STATE_VERSION, MIGRATED):
        return int(version)
    why = _REFUSED.get(version, "") if _is_int(version) else ""
    raise ValueError(
        f"{what} has version {version!r}; this {reader} reads version {STATE_VERSION} "
        f"(and migrates version {MIGRATED}){why}"
    )


def migrate_slots(slots: Any, version: int) -> Any:
    """A slots state of ``version`` in the current format: one of version 2 written before the
    extras existed has no ``extras`` entry, which means no extras (a new dict; ``slots`` is kept)."""
    if version == MIGRATED and isinstance(slots, dict) and "extras" not in slots:
        return {**slots, "extras": {}}
    return slots


def check_slots(slots: Any, what: str) -> Stored:
    """Raise ``ValueError`` or ``TypeError`` naming the entry and what is allowed unless ``slots``
    is a consistent ``SlotStore.state_dict()`` (``what``: how to name it, ``"state's slots"``);
    return what it stores. Reads every field once: O(size log size + sources)."""
    if not isinstance(slots, dict) or not set(_SLOTS_KEYS) <= set(slots):
        got = sorted(map(str, slots)) if isinstance(slots, dict) else type(slots).__name__
        raise ValueError(f"{what} must be a dict with the entries {list(_SLOTS_KEYS)}, got {got}")
    capacity, size = check_size(f"{what} capacity", slots["capacity"]), slots["size"]
    if not _is_int(size) or not 0 <= size <= capacity:
        error = ValueError if _is_int(size) else TypeError
        raise error(f"{what} size must be an int in [0, {capacity}], got {size!r}")
    fill = {**FIELDS, **check_extra_fill(slots["extra"], what)}
    fields = _check_fields(slots["fields"], fill, int(size), what)
    lengths = _check_sources(slots["sources"], what)
    _check_references(fields, lengths, _check_rows(slots["rows"], what), what)
    problem = extras_problem(slots.get("extras"), size)
    if problem:
        allowed = "a dict name -> 2-D floating tensor, one row per sample"
        raise ValueError(f"{what} extras {problem}; a buffer stores {allowed}")
    return Stored(int(size), capacity, fields)


def check_extra_fill(extra: Any, what: str) -> dict[str, float | int]:
    """``extra`` (a buffer's own per-slot fields: name -> empty value) if it is well formed."""
    if not isinstance(extra, dict) or any(
        not isinstance(k, str) or k in FIELDS or not isinstance(v, int | float) or isinstance(v, bool)
        for k, v in extra.items()
    ):
        raise TypeError(f"{what} extra must map new field names to an int or float (their empty value), got {extra!r}")
    return extra


def _check_fields(fields: Any, fill: dict[str, float | int], size: int, what: str) -> dict[str, np.ndarray]:
    """Each field as a NumPy array (no copy) if it is a 1-D CPU tensor of its dtype with one value per slot."""
    if not isinstance(fields, dict) or set(fields) != set(fill):
        got = list(fields) if isinstance(fields, dict) else type(fields).__name__
        raise ValueError(f"{what} fields must be a dict of the fields {sorted(fill)}, got {got}")
    out = {}
    for name, empty in fill.items():
        value, dtype = fields[name], torch.from_numpy(np.asarray(empty)).dtype
        if not _is_tensor(value, dtype, 1):
            raise TypeError(f"{what} {name} must be a 1-D {dtype} tensor on the CPU, got {_described(value)}")
        if len(value) != size:
            raise ValueError(f"{what} {name} has {len(value)} entries, expected {size} (its size)")
        out[name] = value.detach().numpy()
    for name in _NONNEGATIVE:
        if size and out[name].min() < 0:
            raise ValueError(f"{what} {name} must hold values >= 0, got {int(out[name].min())}")
    return out


def _check_sources(sources: Any, what: str) -> dict[int, int]:
    """Source id -> how many samples its slots may point at, if ``sources`` is well formed."""
    datasets = sources.get("datasets") if isinstance(sources, dict) else None
    resolved = sources.get("resolved") if isinstance(sources, dict) else None
    if not isinstance(datasets, dict) or not isinstance(resolved, dict) or datasets.keys() != resolved.keys():
        raise ValueError(
            f"{what} sources must map the same source ids (ints >= 0) to datasets (under 'datasets') and to "
            f"whether slots hold flat-data positions in them (under 'resolved', a bool each)"
        )
    lengths = {}
    for sid, dataset in datasets.items():
        if not _is_int(sid) or sid < 0 or not isinstance(resolved[sid], bool | np.bool_):
            got = f"{sid!r}: {resolved[sid]!r}"
            raise ValueError(f"{what} sources must map ints >= 0 to a dataset and a bool, got {got}")
        lengths[int(sid)] = _source_length(dataset, bool(resolved[sid]), f"{what} sources", int(sid))
    return lengths


def _source_length(dataset: Any, resolved: bool, what: str, sid: int) -> int:
    """How many samples slots may point at in a source: with ``resolved`` (slots hold flat-data
    positions, see ``SourceTable``) the source's flat-data children together, else its own length."""
    if not compat.is_avalanche_dataset(dataset):
        raise TypeError(f"{what} hold {type(dataset).__name__} for source {sid}: an AvalancheDataset was expected")
    if not resolved:
        return len(dataset)
    children = getattr(getattr(dataset, "_flat_data", None), "_datasets", None)
    if children is None:
        raise ValueError(f"{what} mark source {sid} as resolved, but its {type(dataset).__name__} has no flat data")
    return sum(len(child) for child in children)


def _check_rows(rows: Any, what: str) -> int:
    """The number of tensor rows, if ``rows`` (``RowStore.state_dict()``) is well formed."""
    if not isinstance(rows, dict) or not {"x", "y"} <= set(rows):
        raise ValueError(f"{what} rows must be a dict with 'x' and 'y' (both None, or the rows and their labels)")
    x, y = rows["x"], rows["y"]
    if x is None and y is None:
        return 0
    if not isinstance(x, torch.Tensor) or x.dim() < 1 or x.device.type != "cpu":
        raise TypeError(f"{what} rows x must be None or a CPU tensor of samples (one per row), got {_described(x)}")
    if not _is_tensor(y, torch.int64, 1):
        raise TypeError(f"{what} rows y must be a 1-D torch.int64 tensor on the CPU, got {_described(y)}")
    if len(y) != len(x):
        raise ValueError(f"{what} rows y has {len(y)} entries, expected {len(x)} (one per row of x)")
    return len(x)


def _check_references(fields: dict[str, np.ndarray], lengths: dict[int, int], n_rows: int, what: str) -> None:
    """Raise unless every slot's source exists and its index lies within that source (or the rows)."""
    source, index = fields["source"], fields["index"]
    if not len(source):
        return
    sids, inverse = np.unique(source, return_inverse=True)
    unknown = [s for s in sids.tolist() if s != ROW_SOURCE and s not in lengths]
    if unknown:
        raise ValueError(
            f"{what} source holds source id {unknown[0]}, but its sources are {sorted(lengths)} "
            f"(and {ROW_SOURCE}: tensor rows)"
        )
    bound = np.array([n_rows if s == ROW_SOURCE else lengths[s] for s in sids.tolist()], dtype=np.int64)
    inverse = inverse.reshape(-1)
    over = index >= bound[inverse]
    if over.any():
        k = int(inverse[np.argmax(over)])  # the first slot's source whose index is out of range
        held, sid, n = int(index[inverse == k].max()), int(sids[k]), int(bound[k])
        where = "the tensor rows, which are" if sid == ROW_SOURCE else f"source {sid}, which has"
        raise ValueError(f"{what} index holds {held} for {where} {n}{'' if sid == ROW_SOURCE else ' samples'}")


def extras_problem(extras: Any, size: Any) -> str | None:
    """What is wrong with a slots state's extras (name -> 2-D floating tensor, one row per stored
    sample), or None."""
    if not isinstance(extras, dict):
        return "are missing" if extras is None else f"are a {type(extras).__name__}"
    for key, rows in extras.items():
        if not isinstance(key, str) or not isinstance(rows, torch.Tensor) or not rows.is_floating_point():
            return f"hold {key!r} -> {type(rows).__name__}"
        if rows.dim() != 2 or len(rows) != size:
            return f"hold {key!r} of shape {tuple(rows.shape)} for {size!r} samples"
    return None


def check_counters(values: dict[str, Any], stored: Stored, what: str) -> None:
    """Raise ``ValueError`` or ``TypeError`` naming the entry unless a buffer's own entries of a
    state (``COUNTERS``, in ``values``) are valid and agree with its slots ``stored``."""
    max_size = check_size(f"{what}'s max_size", values["max_size"])
    if max_size < stored.size:
        raise ValueError(f"{what}'s max_size ({max_size}) is below the {stored.size} samples its slots hold")
    if stored.capacity != max_size:
        raise ValueError(f"{what}'s slots capacity ({stored.capacity}) differs from its max_size ({max_size})")
    check_seed(values["seed"], f"{what}'s seed")
    n_seen, experience = values["n_seen"], values["experience"]
    if not _is_int(n_seen) or n_seen < stored.size:
        allowed = f"an int >= {stored.size} (the samples stored)"
        raise (ValueError if _is_int(n_seen) else TypeError)(f"{what}'s n_seen must be {allowed}, got {n_seen!r}")
    if not _is_int(experience) or experience < 0:
        raise (ValueError if _is_int(experience) else TypeError)(
            f"{what}'s experience must be an int >= 0, got {experience!r}"
        )
    try:
        torch.Generator().set_state(values["generator"])
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(
            f"{what}'s generator must be a torch.Generator state (the uint8 tensor of get_state()), "
            f"got {type(values['generator']).__name__}"
        ) from None


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_tensor(value: Any, dtype: torch.dtype, dim: int) -> bool:
    """Whether ``value`` is a ``dim``-D tensor of ``dtype`` on the CPU."""
    if not isinstance(value, torch.Tensor):
        return False
    return value.dtype == dtype and value.dim() == dim and value.device.type == "cpu"


def _described(value: Any) -> str:
    """A tensor's dtype, shape and device, or another object's type, for error messages."""
    if isinstance(value, torch.Tensor):
        return f"{value.dtype} of shape {tuple(value.shape)} on {value.device}"
    return type(value).__name__
