"""Each assumption `_avalanche_compat` makes about Avalanche 0.6's private dataset internals, and
the public fallback the buffers take when one of them stops holding."""

from __future__ import annotations

import pickle

import numpy as np
import torch
from avalanche.benchmarks.scenarios.online import split_online_stream
from avalanche.benchmarks.utils.flat_data import LazyIndices, LazyRange
from avalanche.benchmarks.utils.utils import concat_datasets
from helpers import id_dataset

from avalanche_replay_ext import GreedyClassBalancedBuffer, ReservoirSamplingBuffer
from avalanche_replay_ext import _avalanche_compat as compat


def elements(dataset) -> list[tuple]:
    """Every element as (x as a list, y, task), read through Avalanche's own ``__getitem__``."""
    return [(s[0].tolist(), int(s[1]), int(s[2])) for s in (dataset[i] for i in range(len(dataset)))]


def test_label_gathering_matches_avalanche_element_reads(digits):
    """The fast label read (array indexing on the FlatData leaves, with and without the leaf cache,
    cold and warm) equals Avalanche's own element-by-element values on every shape of dataset a
    buffer meets."""
    exp0, exp1 = digits.train_stream[0].dataset, digits.train_stream[1].dataset
    two_tasks = id_dataset(torch.arange(9)).concat(id_dataset(torch.arange(9, 20), task=2))
    zeros = torch.utils.data.TensorDataset(torch.zeros(6, 1), torch.tensor([3, 1, 4, 1, 5, 9]))
    shapes = {
        "experience": exp0,
        "train view": exp1.train(),
        "subset": exp1.subset([5, 3, 3, 0]),
        "concat of subsets": exp0.subset(range(7, 40)).concat(exp1.subset([9, 1])).subset(range(3, 20)),
        "tensor dataset": id_dataset(torch.arange(10, 20), task=3),
        "two tasks, concatenated": two_tasks.subset([19, 0, 8, 9]),
        "array targets": compat.classification_dataset(zeros, np.array([3, 1, 4, 1, 5, 9])).subset([5, 1]),
        "subset of a dataset over a subset": compat.classification_dataset(exp1.subset(range(3, 30)), None).subset([7]),
        "empty": exp0.subset([]),
        "online mini-experience": next(iter(split_online_stream([digits.train_stream[2]], 10, seed=0))).dataset,
    }
    buf = ReservoirSamplingBuffer(50, seed=0)
    for ds in shapes.values():
        buf.update_from_dataset(ds)
    buf.update_from_batch(torch.zeros(3, 1, 8, 8), [1, 2, 3], 4)
    shapes["buffer view"] = buf.buffer
    cache = compat.LeafCache()
    for name, ds in shapes.items():
        for attribute in ("targets", "targets_task_labels"):
            values = getattr(ds, attribute)
            for gathered in (compat.gather(values), compat.gather(values, cache), compat.gather(values, cache)):
                assert type(gathered).__name__ == "ndarray", (name, attribute)  # the fast path, not the fallback
                assert gathered.tolist() == list(values), (name, attribute)


def test_index_lists_over_the_same_leaves_share_a_source(digits):
    exp = digits.train_stream[0].dataset
    mini = [s.dataset for s in split_online_stream([digits.train_stream[0]], 10, seed=0)]
    same = [exp, exp.subset([4, 2]), exp.train(), mini[0], mini[1].train(), digits.train_stream[3].dataset]
    key = compat.source_key(exp)
    assert key is not None
    for ds in same:
        assert compat.source_key(ds) == key and compat.same_transforms(exp, ds)
    # another transform group, or transforms replaced: not interchangeable
    assert not compat.same_transforms(exp, exp.eval())
    replaced = exp.replace_current_transform_group(lambda x: x + 1)
    assert compat.source_key(replaced) != key or not compat.same_transforms(exp, replaced)
    # other leaves, or an attribute the views could not rebuild: not this source
    assert compat.source_key(id_dataset(torch.arange(5))) != key
    assert compat.source_key(exp.update_data_attribute("weights", [1.0] * len(exp))) is None


def test_empty_transform_groups_compare_by_meaning(digits):
    """A subset's top node has empty transform groups whose dict gains keys as groups are read:
    a read subset and a fresh one must still be one source."""
    exp = digits.train_stream[0].dataset
    read, fresh = exp.subset([0, 1]), exp.subset([2, 3])
    read[0]  # noqa: B018 - reading inserts the current group's key
    assert compat.source_key(read) == compat.source_key(fresh) and compat.same_transforms(read, fresh)


def test_flat_positions_and_source_view_give_the_offered_samples(digits):
    """Any dataset of a source, rebuilt from the source's representative with its flat positions,
    has the same elements and labels; the view is no deeper than the representative."""
    rep = digits.train_stream[0].dataset
    mini = next(iter(split_online_stream([digits.train_stream[1]], 7, seed=0))).dataset
    for ds in (rep.subset([9, 0, 9, 4]), mini, mini.train(), digits.train_stream[4].dataset.subset(range(12))):
        positions = compat.flat_indices(ds)
        labels = {"targets": compat.gather(ds.targets), "targets_task_labels": compat.gather(ds.targets_task_labels)}
        view = compat.source_view(rep, positions, labels)
        assert elements(view) == elements(ds)
        assert list(view.targets) == list(ds.targets) and type(view) is type(rep)
        assert compat.depth(view) == compat.depth(rep)


def test_index_array_reads_every_avalanche_index_sequence():
    lazy = LazyIndices([3, 1], LazyRange(0, 3, offset=10), offset=2)
    assert compat.index_array(lazy).tolist() == list(lazy) == [5, 3, 12, 13, 14]
    assert compat.index_array(LazyRange(2, 5, offset=1)).tolist() == list(LazyRange(2, 5, offset=1))
    assert compat.index_array(range(4)).tolist() == [0, 1, 2, 3]


def stream_contents(cls, digits) -> list[tuple]:
    """A mixed stream (mini-experiences, index offers, train copies, tensor batches) into ``cls``."""
    buf = cls(60, seed=0)
    for exp in digits.train_stream:
        for i, sub in enumerate(split_online_stream([exp], 25, seed=1)):
            buf.update_from_dataset(sub.dataset if i % 2 else sub.dataset.train())
        buf.update_from_dataset(exp.dataset, torch.arange(0, len(exp.dataset), 7))
        buf.update_from_batch(torch.full((4, 1, 8, 8), float(exp.current_experience)), exp.dataset.targets[:4])
    return elements(buf.buffer)


def test_missing_internals_fall_back_to_the_public_path(digits, monkeypatch):
    """If Avalanche renames a flat-data attribute or class the buffers rely on, they use the
    public API (every offered dataset its own source, labels read element by element) and hold
    exactly the same samples in the same order."""
    for cls in (ReservoirSamplingBuffer, GreedyClassBalancedBuffer):
        fast = stream_contents(cls, digits)
        with monkeypatch.context() as m:
            m.setattr(compat, "_FLAT_ATTRIBUTES", (*compat._FLAT_ATTRIBUTES, "_renamed_in_a_later_avalanche"))
            m.setattr(compat, "FlatData", compat._Missing)
            m.setattr(compat, "LazyIndices", compat._Missing)
            assert compat.source_key(digits.train_stream[0].dataset) is None
            assert compat.gather(digits.train_stream[0].dataset.targets) is digits.train_stream[0].dataset.targets
            public = stream_contents(cls, digits)
        assert public == fast, cls.__name__


def test_classification_dataset_builds_what_the_tensor_dataset_builds():
    """The benchmarks' leaves go through ``classification_dataset``: the same dataset class, label
    attributes, transform groups and samples as ``tensor_classification_dataset`` over tensors."""
    x, y = torch.rand(6, 1, 2, 2), torch.tensor([3, 1, 4, 1, 5, 9])
    leaf = torch.utils.data.TensorDataset(x, y)
    ours = compat.classification_dataset(leaf, targets=y)
    theirs = compat.tensor_classification_dataset(x, y)
    assert type(ours) is type(theirs)
    assert {k: type(a.data) for k, a in ours._data_attributes.items()} == {
        k: type(a.data) for k, a in theirs._data_attributes.items()
    }
    assert list(ours.targets) == list(theirs.targets) and list(ours.targets_task_labels) == [0] * 6
    assert str(ours._flat_data._transform_groups) == str(theirs._flat_data._transform_groups)
    assert str(ours._flat_data._frozen_transform_groups) == str(theirs._flat_data._frozen_transform_groups)
    assert elements(ours) == elements(theirs)


def test_avalanche_operations_share_label_leaves_and_change_no_node(digits):
    """The label cache keys the children of a label node by identity and never invalidates an
    entry. The subsets, copies and mini-experiences of a dataset have label nodes over the very
    same children (so the cache is hit), and no operation changes an existing node, its children
    or the leaves under them (so an entry never goes stale)."""
    exp = digits.train_stream[0].dataset
    node = exp.targets.data
    children, indices = tuple(node._datasets), compat.index_array(node._indices).copy()
    leaves = [compat.gather(c).copy() for c in children]
    minis = [s.dataset for s in split_online_stream([digits.train_stream[0]], 7, seed=0)][:3]
    shared = [exp.subset([3, 1]), exp.train(), exp.eval(), exp.subset(range(9)).subset([2, 0]), *minis, minis[1].eval()]
    for ds in shared:
        assert all(a is b for a, b in zip(ds.targets.data._datasets, children, strict=True))
    built = [exp.concat(exp), concat_datasets([exp.subset([0]), exp]), exp.replace_current_transform_group(abs)]
    built += [exp.update_data_attribute("targets", [0] * len(exp)), exp.freeze_transforms(), minis[0].concat(minis[2])]
    for ds in built:
        assert len(compat.gather(ds.targets)) == len(ds)
    assert all(a is b for a, b in zip(node._datasets, children, strict=True)) and len(node._datasets) == len(children)
    assert compat.index_array(node._indices).tolist() == indices.tolist()
    assert all(compat.gather(c).tolist() == leaf.tolist() for c, leaf in zip(children, leaves, strict=True))


def test_leaf_cache_holds_its_objects_and_the_most_recent_few():
    """Entries are keyed by the identity of the objects (held, so their ids are not reused), a
    tuple as a whole; the oldest goes past ``size``; a pickled cache is empty."""
    cache, calls = compat.LeafCache(size=2), []

    def compute(nodes: tuple) -> int:
        calls.append(nodes)
        return len(calls)

    a, b = [1, 2], [1, 2]  # equal, but other objects
    assert cache.get((a,), compute) == cache.get((a,), compute) == 1
    assert cache.get((b,), compute) == 2 and cache.get((a, b), compute) == 3
    assert cache.get((a,), compute) == 4 and len(cache._entries) == 2  # (a,) went first
    assert all(entry[0][0] is a or entry[0][0] is b for entry in cache._entries.values())
    assert pickle.loads(pickle.dumps(cache))._entries == {}


def test_gathered_arrays_are_read_only_and_leave_the_dataset_s_own_writable():
    """A gathered array may be the cache's or the dataset's own: it comes read-only, and the
    array the dataset was given stays writable (the flag is a view's)."""
    targets = np.array([3, 1, 4, 1, 5, 9])
    data = compat.classification_dataset(torch.utils.data.TensorDataset(torch.zeros(6, 1)), targets)
    cache = compat.LeafCache()
    whole, part = compat.gather(data.targets, cache), compat.gather(data.subset([4, 0]).targets, cache)
    assert whole.tolist() == targets.tolist() and part.tolist() == [5, 3]
    assert not whole.flags.writeable and not cache.get((targets,), lambda nodes: None).flags.writeable
    assert targets.flags.writeable


def test_a_label_node_without_its_children_falls_back_to_the_public_path(digits, monkeypatch):
    sub = digits.train_stream[0].dataset.subset([4, 0, 2])
    monkeypatch.delattr(sub.targets.data, "_datasets")
    assert compat.gather(sub.targets, compat.LeafCache()) is sub.targets
