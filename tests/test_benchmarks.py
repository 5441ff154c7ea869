"""Offline benchmarks: SplitDigits and MNIST from local IDX files."""

from __future__ import annotations

from collections import Counter

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
