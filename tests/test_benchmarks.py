"""Offline benchmarks: SplitDigits and MNIST from local IDX files."""

from __future__ import annotations

import gc
import pickle
import shutil
from collections import Counter
from pathlib import Path

import dill
import pytest
import torch

from avalanche_replay_ext.benchmarks import SplitDigits, SplitMNISTIdx, load_mnist_idx


def check_class_incremental(bm, n_train: int, n_test: int, n_exp: int = 5) -> None:
    train, test = list(bm.train_stream), list(bm.test_stream)
    assert len(train) == len(test) == n_exp
    assert sum(len(e.dataset) for e in train) == n_train
    assert sum(len(e.dataset) for e in test) == n_test
    classes = [set(e.classes_in_this_experience) for e in train]
    assert all(len(c) == 10 // n_exp for c in classes)
    assert set().union(*classes) == set(range(10))
    for exp_tr, exp_te, cls in zip(train, test, classes, strict=True):
        assert set(exp_tr.dataset.targets) == cls == set(exp_te.dataset.targets)


def test_split_digits_is_a_class_incremental_benchmark():
    bm = SplitDigits(5, seed=0)
    check_class_incremental(bm, 1437, 360)
    x, y, t = bm.train_stream[0].dataset[0]
    assert x.shape == (1, 8, 8) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0 and t == 0
    assert [e.task_label for e in bm.train_stream] == [0] * 5


def test_split_digits_task_ids_order_and_seed():
    bm = SplitDigits(5, return_task_id=True, seed=0)
    assert [e.task_label for e in bm.train_stream] == [0, 1, 2, 3, 4]
    assert set(bm.train_stream[3].dataset.targets_task_labels) == {3}
    order = [e.classes_in_this_experience for e in bm.train_stream]
    assert order == [e.classes_in_this_experience for e in SplitDigits(5, seed=0).train_stream]
    assert order != [e.classes_in_this_experience for e in SplitDigits(5, seed=1).train_stream]
    fixed = SplitDigits(2, fixed_class_order=list(range(10)))
    assert [sorted(e.classes_in_this_experience) for e in fixed.train_stream] == [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9]]


def test_mnist_idx_split_is_8000_2000_stratified(mnist_dir):
    images, labels = load_mnist_idx(mnist_dir)
    assert images.shape == (10_000, 1, 28, 28) and labels.shape == (10_000,)
    assert abs(float(images.mean())) < 0.1 and abs(float(images.std()) - 1) < 0.1  # normalised
    bm = SplitMNISTIdx(5, root=mnist_dir, seed=0)
    check_class_incremental(bm, 8000, 2000)
    full = Counter(labels.tolist())
    test = Counter(int(y) for e in bm.test_stream for y in e.dataset.targets)
    for c in range(10):  # stratified: each class's test share is 20% of its images, +-1
        assert abs(test[c] - full[c] * 0.2) <= 1, (c, test[c], full[c])
    again = SplitMNISTIdx(5, root=mnist_dir, seed=0)
    assert torch.equal(bm.test_stream[0].dataset[5][0], again.test_stream[0].dataset[5][0])


def test_mnist_idx_reads_the_environment_variable(mnist_dir, monkeypatch):
    monkeypatch.setenv("AVALANCHE_REPLAY_MNIST_DIR", mnist_dir)
    assert len(load_mnist_idx()[1]) == 10_000


def leaves(node) -> list:
    """The datasets at the bottom of an Avalanche dataset's flat-data tree."""
    children = getattr(getattr(node, "_flat_data", node), "_datasets", None)
    return [node] if children is None else [leaf for child in children for leaf in leaves(child)]


def test_split_digits_datasets_pickle_as_their_recipe_and_share_the_live_leaf():
    """A pickled experience holds no images; unpickled (plain pickle or dill) it reads the live
    benchmark's leaf, the one leaf of its recipe in this process, so a resumed buffer and a
    re-created benchmark hold the images once and checkpoints do not grow at each resume."""
    bm = SplitDigits(5, seed=0)
    data = bm.train_stream[2].dataset
    (leaf,) = set(map(id, leaves(data)))
    again = SplitDigits(5, seed=3)  # re-created (another class order): the same leaves
    assert {id(x) for e in again.train_stream for x in leaves(e.dataset)} == {leaf}
    (test_leaf,) = {id(x) for e in bm.test_stream for x in leaves(e.dataset)}
    assert test_leaf != leaf
    image_bytes = 1437 * 64 * 4
    for module in (pickle, dill):
        blob = module.dumps(data)
        assert len(blob) < image_bytes / 20, len(blob)  # index lists and labels, no image tensors
        restored = module.loads(blob)
        assert [id(x) for x in leaves(restored)] == [leaf]
        assert all(torch.equal(restored[i][0], data[i][0]) and restored[i][1:] == data[i][1:] for i in range(len(data)))
    assert {id(x) for x in leaves(SplitDigits(5, split_seed=1).train_stream[0].dataset)} != {leaf}


def test_a_split_without_a_reproducible_seed_pickles_its_images():
    data = SplitDigits(5, split_seed=None).train_stream[0].dataset
    assert len(pickle.dumps(data)) > 1437 * 64 * 4  # a recipe would not rebuild the same split
    assert leaves(data)[0] is not leaves(SplitDigits(5, split_seed=None).train_stream[0].dataset)[0]


def test_unpickling_a_part_whose_recipe_now_builds_other_data_is_an_error():
    part = leaves(SplitDigits(5, seed=0).train_stream[0].dataset)[0]
    factory, (recipe, name, digest) = part.__reduce__()
    assert factory(recipe, name, digest) is part
    with pytest.raises(ValueError, match="other data than when it was pickled"):
        factory(recipe, name, digest.replace(digest[-8:], "00000000"))


def test_mnist_idx_parts_name_their_folder_absolutely_and_pickle_small(mnist_dir, monkeypatch):
    monkeypatch.setenv("AVALANCHE_REPLAY_MNIST_DIR", mnist_dir)
    data = SplitMNISTIdx(5, seed=0).train_stream[0].dataset
    (part,) = leaves(data)
    assert part.recipe.args == (str(Path(mnist_dir).resolve()),)  # the same folder from any working directory
    assert len(pickle.dumps(data)) < 100_000 < 8000 * 784 * 4
    assert leaves(SplitMNISTIdx(5, root=Path(mnist_dir).resolve(), seed=1).train_stream[0].dataset) == [part]


def test_unpickling_a_part_whose_files_are_gone_is_a_clear_error(mnist_dir, tmp_path):
    root = tmp_path / "mnist"
    root.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(Path(mnist_dir) / name, root / name)
    blob = pickle.dumps(SplitMNISTIdx(5, root=root).train_stream[0].dataset)
    gc.collect()  # no benchmark holds the part any more: unpickling rebuilds it from the files
    shutil.rmtree(root)
    with pytest.raises(FileNotFoundError, match="names the files it was loaded from"):
        pickle.loads(blob)
