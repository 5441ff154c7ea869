"""Each assumption `_avalanche_compat` makes about Avalanche 0.6's private dataset internals, and
the public fallback the buffers take when one of them stops holding."""

from __future__ import annotations

import torch
from avalanche.benchmarks.scenarios.online import split_online_stream
from avalanche.benchmarks.utils.flat_data import LazyIndices, LazyRange
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
    shapes = {
        "experience": exp0,
        "train view": exp1.train(),
        "subset": exp1.subset([5, 3, 3, 0]),
        "concat of subsets": exp0.subset(range(7, 40)).concat(exp1.subset([9, 1])).subset(range(3, 20)),
        "tensor dataset": id_dataset(torch.arange(10, 20), task=3),
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
