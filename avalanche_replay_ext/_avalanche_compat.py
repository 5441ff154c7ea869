"""Every use of Avalanche 0.6's private dataset internals, in one module.

The buffers read Avalanche's flat-data trees directly (class labels with array indexing, the leaves
and index list behind a subset) and build their views on those leaves, which makes updates and
views cheap whatever dataset objects a stream is made of. Each function here falls back to the
public API (slower, never wrong) when an attribute it relies on is missing, so a change inside
Avalanche costs speed, not correctness. ``tests/test_avalanche_compat.py`` checks each assumption.
"""

from __future__ import annotations

import functools
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import avalanche.benchmarks.utils as _utils
import avalanche.benchmarks.utils.flat_data as _flat_data
import avalanche.benchmarks.utils.transform_groups as _transform_groups
import numpy as np
import torch
from avalanche.benchmarks.utils import AvalancheDataset
from avalanche.benchmarks.utils.classification_dataset import (
    ClassificationDataset,
    TaskAwareClassificationDataset,
    TaskAwareSupervisedClassificationDataset,
)
from avalanche.benchmarks.utils.data_attribute import DataAttribute
from avalanche.benchmarks.utils.utils import concat_datasets


class _Missing:
    """Stands for a private class this Avalanche lacks: nothing is an instance of it."""


# private names, looked up so that a missing one disables its fast path instead of the import
ConstantSequence = getattr(_flat_data, "ConstantSequence", _Missing)
FlatData = getattr(_flat_data, "FlatData", _Missing)
LazyIndices = getattr(_flat_data, "LazyIndices", _Missing)
LazyRange = getattr(_flat_data, "LazyRange", _Missing)
EmptyTransformGroups = getattr(_transform_groups, "EmptyTransformGroups", _Missing)
DefaultTransformGroups = getattr(_transform_groups, "DefaultTransformGroups", _Missing)
_flatdata_depth = getattr(_flat_data, "_flatdata_depth", None)
_make_tensor_dataset = _utils._make_taskaware_tensor_classification_dataset
_make_classification_dataset = _utils._make_taskaware_classification_dataset

LABEL_ATTRIBUTES = ("targets", "targets_task_labels")
"""The data attributes a resolvable dataset may carry (the buffers keep both per slot)."""
_LABELS = frozenset(LABEL_ATTRIBUTES)
_VIEW_TYPES = (
    AvalancheDataset,
    ClassificationDataset,
    TaskAwareClassificationDataset,
    TaskAwareSupervisedClassificationDataset,
)
"""Dataset classes whose constructor the views may call with ``(flat_data, data_attributes, collate_fn)``."""


# ---- labels ------------------------------------------------------------------------------------
class LeafCache:
    """Values computed from tuples of Avalanche objects (the children of a flat-data node: their
    labels, or their signatures), kept for the ``size`` most recently used tuples and keyed by
    the objects' identity. The subsets and mini-experiences of one dataset share its children,
    so once these are read each one costs what it holds, not what the dataset behind it holds.

    An entry holds its objects, so their ids are not reused while it lives. Entries are never
    invalidated: Avalanche's data attributes, flat-data nodes and the label sequences under them
    are immutable by contract (each operation builds new ones); a leaf changed in place (say, a
    wrapped torch dataset's ``targets`` list edited afterwards) is not seen."""

    def __init__(self, size: int = 8) -> None:
        self.size, self._entries = size, OrderedDict()

    def get(self, nodes: tuple, compute: Callable[[tuple], Any]) -> Any:
        """``compute(nodes)``, computed once while ``nodes`` stay among the most recent."""
        key = tuple(map(id, nodes))
        hit = self._entries.get(key)
        if hit is not None:  # the entry holds its nodes, so these ids are theirs
            self._entries.move_to_end(key)
            return hit[1]
        value = compute(nodes)
        self._entries[key] = (nodes, value)
        if len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return value

    def __getstate__(self) -> dict:
        return {"size": self.size, "_entries": OrderedDict()}


def gather(values: Any, cache: LeafCache | None = None) -> Any:
    """A data attribute's values as one integer array, read from its FlatData leaves with array
    indexing instead of one Python call per element; anything else is returned unchanged (for
    ``as_labels`` to convert or reject). With a ``cache``, the leaves behind a subset are read
    once (per tuple of a node's children), so a subset's labels cost its length. The array may
    be the cache's (read-only) or the dataset's own: read it, never write to it."""
    try:
        return _gathered(values, cache)
    except (TypeError, AttributeError):
        return values


def _gathered(seq: Any, cache: LeafCache | None) -> np.ndarray:
    if _is(seq, DataAttribute):
        return _gathered(seq.data, cache)
    if not _is(seq, FlatData):
        return _leaf_array(seq)
    children = tuple(seq._datasets)
    if cache is None or len(seq) >= sum(map(len, children)):  # all it holds: nothing to save by caching
        flat = _children_labels(children)
    else:
        flat = cache.get(children, _children_labels)
    if flat is None:
        raise TypeError("not integer labels")  # as_labels reports it properly
    return flat if seq._indices is None else flat[index_array(seq._indices)]


def _children_labels(children: tuple) -> np.ndarray | None:
    """The labels of a flat-data node's children, concatenated (read-only); None where they are
    not integer labels (kept so, so that a bad leaf is not read again on every offer)."""
    try:
        parts = [_gathered(c, None) for c in children]
    except (TypeError, AttributeError):
        return None
    flat = parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    flat = flat.view()  # the flag is the view's: a leaf that is the caller's own array stays writable
    flat.flags.writeable = False
    return flat


def _leaf_array(seq: Any) -> np.ndarray:
    """A leaf label sequence (list, tuple, array, tensor, ``ConstantSequence``) as an integer array."""
    if _is(seq, ConstantSequence):
        return np.full(len(seq), seq[0]) if len(seq) else np.zeros(0, dtype=np.int64)
    if isinstance(seq, (list, tuple, np.ndarray, torch.Tensor)):
        array = np.asarray(seq.cpu() if isinstance(seq, torch.Tensor) else seq)
        if array.ndim != 1 or array.dtype.kind not in "iu":
            raise TypeError("not a flat integer sequence")  # as_labels reports it properly
        return array
    raise TypeError(f"unknown sequence type {type(seq).__name__}")


def is_avalanche_dataset(obj: Any) -> bool:
    """``isinstance(obj, AvalancheDataset)``, fast (see :func:`_is`)."""
    return _is(obj, AvalancheDataset)


def _is(obj: Any, cls: type) -> bool:
    """``isinstance`` by the class's MRO: Avalanche's dataset classes derive from a runtime-checkable
    ``Protocol``, whose ``isinstance`` costs microseconds per call."""
    return cls in type(obj).__mro__


def index_array(indices: Any) -> np.ndarray:
    """Avalanche's index sequences (list, ``LazyIndices``, ``LazyRange``, range) as an int64 array."""
    if isinstance(indices, list) and indices and isinstance(indices[0], torch.Tensor):  # as split_online_stream
        return np.fromiter(map(int, indices), dtype=np.int64, count=len(indices))  # np.asarray: slower, per __array__
    if isinstance(indices, (list, tuple, range, np.ndarray, torch.Tensor)):
        return np.asarray(indices, dtype=np.int64).reshape(-1)
    if _is(indices, LazyRange) and hasattr(indices, "_start"):
        return np.arange(indices._start, indices._end, dtype=np.int64) + indices._offset
    if _is(indices, LazyIndices) and hasattr(indices, "_to_eager"):
        indices._to_eager()
        return np.asarray(indices._eager_list, dtype=np.int64)
    return np.fromiter(iter(indices), dtype=np.int64, count=len(indices))  # any other sequence, one by one


# ---- sources: datasets that are index lists over the same leaves and transforms ------------------
_FLAT_ATTRIBUTES = (
    "_datasets",
    "_indices",
    "_can_flatten",
    "_transform_groups",
    "_frozen_transform_groups",
    "_shallow_clone_dataset",
)
"""What the views rely on in a dataset's top ``_FlatDataWithTransform`` node."""


def source_key(dataset: Any, signatures: LeafCache | None = None) -> tuple | None:
    """What makes two datasets interchangeable up to their index list: class, flat-data children
    (by :func:`node_signature`, which reads a child's whole index list: through the ``signatures``
    cache if given, once per tuple of children), flattening flag, label attributes and collate
    function. ``None`` when the dataset is not one this module can see through (the buffers then
    keep it as a source of its own)."""
    flat, attributes = getattr(dataset, "_flat_data", None), getattr(dataset, "_data_attributes", None)
    if type(dataset) not in _VIEW_TYPES or not isinstance(attributes, dict) or not attributes.keys() <= _LABELS:
        return None
    for name in _FLAT_ATTRIBUTES:
        if not hasattr(flat, name):
            return None
    labels = tuple((name, bool(a.use_in_getitem)) for name, a in attributes.items())
    children = tuple(flat._datasets)
    signs = _signatures(children) if signatures is None else signatures.get(children, _signatures)
    return type(dataset), signs, flat._can_flatten, labels, id(dataset.collate_fn)


def _signatures(children: tuple) -> tuple:
    return tuple(node_signature(c) for c in children)


def node_signature(node: Any) -> Any:
    """A flat-data child's shape, as far as what it serves goes: leaf datasets by identity;
    flat-data nodes by class, flattening flag, children, a digest of their index list, and their
    current groups (transforms are compared by :func:`equivalent_children`). So the same leaves
    rebuilt into a second tree (a benchmark built again after a resume) give the same signature."""
    if not _is(node, FlatData) or not all(hasattr(node, a) for a in ("_datasets", "_indices", "_can_flatten")):
        return id(node)
    indices = None
    if node._indices is not None:
        indices = hashlib.blake2b(index_array(node._indices).tobytes(), digest_size=16).digest()
    groups = tuple(getattr(getattr(node, g, None), "current_group", None) for g in _GROUPS)
    children = tuple(node_signature(c) for c in node._datasets)
    return type(node).__qualname__, node._can_flatten, indices, groups, children


_GROUPS = ("_transform_groups", "_frozen_transform_groups")


def equivalent_children(a: Any, b: Any) -> bool:
    """Whether datasets ``a`` and ``b`` (of one :func:`source_key`) have the same flat-data
    children, or children that serve the same samples alike: the same leaves, and equal
    transforms at every node."""
    return all(_same_node(x, y) for x, y in zip(a._flat_data._datasets, b._flat_data._datasets, strict=True))


def same_children(a: Any, b: Any) -> bool:
    """Whether datasets ``a`` and ``b`` have the very same flat-data children (not only equivalent ones)."""
    return all(x is y for x, y in zip(a._flat_data._datasets, b._flat_data._datasets, strict=True))


def _same_node(x: Any, y: Any) -> bool:
    if x is y:
        return True
    if not _is(x, FlatData) or type(x) is not type(y) or len(x._datasets) != len(y._datasets):
        return False
    groups = (_same_groups(getattr(x, g), getattr(y, g)) for g in _GROUPS if hasattr(x, g))
    return all(groups) and all(_same_node(c, d) for c, d in zip(x._datasets, y._datasets, strict=True))


def same_transforms(a: Any, b: Any) -> bool:
    """Whether datasets ``a`` and ``b`` (of one :func:`source_key`) transform a sample alike: the
    same transform groups and current group at their top flat node (the group their children use)."""
    fa, fb = a._flat_data, b._flat_data
    return _same_groups(fa._transform_groups, fb._transform_groups) and _same_groups(
        fa._frozen_transform_groups, fb._frozen_transform_groups
    )


def _same_groups(a: Any, b: Any) -> bool:
    if type(a) is not type(b) or a.current_group != b.current_group:
        return False
    if type(a) is EmptyTransformGroups:  # keys appear as groups are read
        return _all_none(a.transform_groups) and _all_none(b.transform_groups)
    ga, gb = dict(a.transform_groups), dict(b.transform_groups)
    if isinstance(a, DefaultTransformGroups):  # keys appear as groups are read: fill in the default
        fa, fb = a.transform_groups.default_factory, b.transform_groups.default_factory
        if not _same_transform(fa, fb):
            return False
        ga, gb = ({k: g[k] if k in g else f() for k in ga.keys() | gb.keys()} for g, f in ((ga, fa), (gb, fb)))
    return _same_transform(ga, gb)


def _same_transform(a: Any, b: Any, depth: int = 0) -> bool:
    """Whether two transforms (or their parts) transform alike: the same object, equal values,
    or objects of one class whose parts are alike (``functools.partial``, ``Compose``- and
    ``TupleTransform``-like ``transforms`` lists, plain attributes); a few levels deep."""
    if a is b:
        return True
    if type(a) is not type(b) or depth > 12:
        return False
    if isinstance(a, torch.Tensor):
        return a.shape == b.shape and bool(torch.equal(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_transform(a[k], b[k], depth + 1) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same_transform(x, y, depth + 1) for x, y in zip(a, b, strict=True))
    if isinstance(a, functools.partial):
        parts = (a.func, a.args, a.keywords), (b.func, b.args, b.keywords)
        return _same_transform(*parts, depth + 1)
    try:
        if a == b:
            return True
    except Exception:  # e.g. ambiguous comparisons
        return False
    return hasattr(a, "__dict__") and _same_transform(vars(a), vars(b), depth + 1)


def _all_none(groups: dict) -> bool:
    values = list(groups.values())
    return values.count(None) == len(values)


def flat_indices(dataset: Any) -> np.ndarray:
    """Position of each sample of ``dataset`` in the concatenation of its flat-data children."""
    flat = dataset._flat_data
    return np.arange(len(flat), dtype=np.int64) if flat._indices is None else index_array(flat._indices)


def task_values(values: np.ndarray) -> Any:
    """Per-sample task labels for a view: one ``ConstantSequence`` per task, as Avalanche's own
    datasets hold them (reads skip an index lookup), never a one-child ``FlatData``, which
    Avalanche 0.6 cannot concatenate a ``ConstantSequence`` after."""
    if not len(values) or ConstantSequence is _Missing or FlatData is _Missing:
        return values.tolist()
    if values.min() == values.max():  # the usual case: one task
        return ConstantSequence(int(values[0]), len(values))
    tasks, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    if len(tasks) == 1:
        return ConstantSequence(int(tasks[0]), len(values))
    order = np.argsort(inverse, kind="stable")  # positions grouped by task
    rank = np.empty(len(values), dtype=np.int64)
    rank[order] = np.arange(len(values))
    per_task = [ConstantSequence(int(t), int(c)) for t, c in zip(tasks, counts, strict=True)]
    return FlatData(per_task, indices=rank.tolist())


def label_attribute(dataset: Any, name: str) -> Any:
    """A dataset's label attribute as its ``__getitem__`` sees it: from ``_data_attributes`` (a
    plain ``AvalancheDataset`` keeps a stale instance attribute after ``update_data_attribute``)."""
    attributes = getattr(dataset, "_data_attributes", None)
    if isinstance(attributes, dict) and name in attributes:
        return attributes[name]
    return getattr(dataset, name, None)


def source_view(rep: Any, positions: Sequence[int], labels: dict[str, Sequence[int]]) -> AvalancheDataset:
    """The samples at ``positions`` (of :func:`flat_indices`) of any dataset of ``rep``'s source, as
    one dataset of ``rep``'s class: ``rep``'s top flat node with another index list, so the view is
    as deep as ``rep`` and each sample keeps ``rep``'s transforms. ``labels`` gives the values of
    each of ``rep``'s label attributes (task labels as :func:`task_values` gives them)."""
    flat = rep._flat_data._shallow_clone_dataset()
    flat._indices = np.asarray(positions, dtype=np.int64).tolist()
    attributes = [
        DataAttribute(labels[name], name, use_in_getitem=a.use_in_getitem) for name, a in rep._data_attributes.items()
    ]
    return type(rep)([flat], data_attributes=attributes, collate_fn=rep.collate_fn)


def relabel(dataset: AvalancheDataset, labels: dict[str, Sequence[int]]) -> AvalancheDataset:
    """``dataset`` with its label attributes replaced by ``labels`` (public API)."""
    for name in LABEL_ATTRIBUTES:
        if hasattr(dataset, name):
            use = getattr(dataset, name).use_in_getitem
            dataset = dataset.update_data_attribute(name, DataAttribute(labels[name], name, use_in_getitem=use))
    return dataset


def concat(parts: list[AvalancheDataset]) -> AvalancheDataset:
    """Concatenate views (Avalanche's public ``concat_datasets``; one part is returned as is)."""
    return parts[0] if len(parts) == 1 else concat_datasets(parts)


def tensor_classification_dataset(x: torch.Tensor, y: torch.Tensor, **kwargs: Any) -> AvalancheDataset:
    """Avalanche's tensor classification dataset (``targets`` from ``y``, task labels 0 unless
    ``task_labels=`` is given; other keyword arguments as Avalanche's)."""
    return _make_tensor_dataset(x, y, **kwargs)


def classification_dataset(data: Any, targets: Sequence[int]) -> AvalancheDataset:
    """Avalanche's classification dataset over ``data`` (a torch dataset of ``(x, int y)`` samples),
    built as :func:`tensor_classification_dataset` builds one over tensors: ``targets`` as given,
    task labels 0, transform group ``"train"``."""
    return _make_classification_dataset(data, targets=targets)


def depth(dataset: AvalancheDataset) -> int:
    """Depth of a dataset's flat-data tree (Avalanche's debugging helper)."""
    return _flatdata_depth(dataset._flat_data)
