"""An update reads the labels of the samples it offers, not of the dataset behind them: each
label leaf (the list, tensor or array of a whole dataset's targets) is converted once per buffer,
on every way Avalanche 0.6 builds the datasets a stream offers, and the labels stored are right.
Counts, not timings: a counting wrapper around ``compat._leaf_array``, the one function that
turns a leaf sequence into an array."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pytest
import torch
from avalanche.benchmarks.scenarios.dataset_scenario import DatasetExperience, benchmark_from_datasets
from avalanche.benchmarks.scenarios.deprecated.generators import nc_benchmark
from avalanche.benchmarks.scenarios.online import split_online_stream
from avalanche.benchmarks.scenarios.supervised import class_incremental_benchmark
from avalanche.benchmarks.utils import (
    _make_taskaware_classification_dataset,
    _make_taskaware_tensor_classification_dataset,
)
from avalanche.benchmarks.utils.utils import concat_datasets
from torch.utils.data import TensorDataset

from avalanche_replay_ext import ClassBalancedReservoirBuffer, GreedyClassBalancedBuffer, ReservoirSamplingBuffer
from avalanche_replay_ext import _avalanche_compat as compat

BUFFERS = [ReservoirSamplingBuffer, GreedyClassBalancedBuffer, ClassBalancedReservoirBuffer]
SMALL, LARGE = 500, 50_000  # samples in each dataset behind the offers
OFFERS, OFFER_SIZE = 50, 10
PER_SAMPLE = 4  # label elements an update may convert per sample offered (targets, task labels, slack)


def classes(ids: torch.Tensor) -> torch.Tensor:
    """The class of each sample id (a sample's single feature is its id)."""
    return (ids * 7) % 10


def samples(n: int, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.arange(offset, offset + n)
    return ids.float().unsqueeze(1), classes(ids)


def torchvision_like(n: int, kind: str = "tensor", offset: int = 0) -> Any:
    """A torch dataset with ``targets`` as a list, a tensor or an array, wrapped as benchmarks wrap one."""
    x, y = samples(n, offset)
    data = TensorDataset(x, y)
    data.targets = {"list": y.tolist(), "tensor": y, "ndarray": y.numpy()}[kind]
    return _make_taskaware_classification_dataset(data)


def tensor_dataset(n: int, offset: int = 0, task: int = 0) -> Any:
    return _make_taskaware_tensor_classification_dataset(*samples(n, offset), task_labels=task)


def shuffled_subset_of_subset(n: int) -> Any:
    order = np.random.default_rng(0).permutation(n).tolist()
    return tensor_dataset(n).subset(order).subset(range(n // 4, n))


def same_x(x: torch.Tensor) -> torch.Tensor:
    return x


SAME_X = {"train_transform": same_x, "eval_transform": same_x}
"""Transforms that keep a sample's id: datasets with transform groups of their own (as SplitMNIST's)."""


class Source(NamedTuple):
    """How to build the datasets a stream offers from: ``build(n)`` gives them (experiences'
    datasets, or one dataset), over ``behind * n`` samples in all; ``task(ids, n)`` is each
    sample's task label; ``copies``: offer ``.train()``/``.eval()`` copies in turn."""

    build: Callable[[int], list]
    behind: int = 1
    task: Callable[[torch.Tensor, int], torch.Tensor] = lambda ids, n: torch.zeros_like(ids)
    copies: bool = False


def _streams(benchmark: Any) -> list:
    return [exp.dataset for exp in benchmark.train_stream]


SOURCES = {
    "class_incremental_benchmark": Source(
        lambda n: _streams(
            class_incremental_benchmark({"train": torchvision_like(n), "test": torchvision_like(10)}, num_experiences=2)
        )
    ),
    "benchmark_from_datasets": Source(
        lambda n: _streams(
            benchmark_from_datasets(
                train=[torchvision_like(n, "list"), torchvision_like(n, "ndarray", offset=n)],
                test=[torchvision_like(10)],
            )
        ),
        behind=2,
    ),
    "nc_benchmark": Source(
        lambda n: _streams(
            nc_benchmark(torchvision_like(n), torchvision_like(10), 2, task_labels=False, seed=0, **SAME_X)
        )
    ),
    "tensor dataset": Source(lambda n: [tensor_dataset(n)]),
    "subset of subset": Source(lambda n: [shuffled_subset_of_subset(n)]),
    "list targets": Source(lambda n: [torchvision_like(n, "list")]),
    "tensor targets": Source(lambda n: [torchvision_like(n, "tensor")]),
    "ndarray targets": Source(lambda n: [torchvision_like(n, "ndarray")]),
    "concat_datasets": Source(
        lambda n: [concat_datasets([tensor_dataset(n), torchvision_like(n, "list", offset=n)])], behind=2
    ),
    "ds.concat, two tasks": Source(
        lambda n: [tensor_dataset(n).concat(tensor_dataset(n, offset=n, task=1))],
        behind=2,
        task=lambda ids, n: (ids >= n).long(),
    ),
    "train and eval copies": Source(lambda n: [tensor_dataset(n).eval()], copies=True),
    "wrapped subset": Source(
        lambda n: [_make_taskaware_classification_dataset(tensor_dataset(n).subset(range(n // 4, n)), transform=same_x)]
    ),
}


@functools.cache
def offers(name: str, n: int, form: str) -> tuple:
    """``OFFERS`` ten-sample datasets from ``SOURCES[name]`` over ``n`` samples, spread over
    its datasets: index ranges (``"subsets"``) or ``split_online_stream``'s mini-experiences."""
    source = SOURCES[name]
    datasets = source.build(n)
    per = -(-OFFERS // len(datasets))
    chosen = []
    for data in datasets:
        if form == "subsets":
            starts = np.linspace(0, len(data) - OFFER_SIZE, per).astype(int).tolist()
            chosen += [data.subset(range(s, s + OFFER_SIZE)) for s in starts]
        else:
            stream = split_online_stream([DatasetExperience(dataset=data)], OFFER_SIZE, shuffle=True, seed=0)
            chosen += [exp.dataset for exp, _ in zip(stream, range(per), strict=False)]
    chosen = chosen[:OFFERS]
    if source.copies:
        chosen = [d.train() if i % 2 else d.eval() for i, d in enumerate(chosen)]
    return tuple(chosen)


@pytest.fixture
def conversions(monkeypatch) -> list[int]:
    """The length of every leaf sequence converted to an array, in order."""
    counted, convert = [], compat._leaf_array

    def counting(seq: Any) -> np.ndarray:
        counted.append(len(seq))
        return convert(seq)

    monkeypatch.setattr(compat, "_leaf_array", counting)
    return counted


def check_stored(buf: Any, source: Source, n: int) -> None:
    """The classes and task labels the buffer records are those of the samples it holds."""
    data = buf.buffer
    ids = torch.tensor([int(data[i][0][0]) for i in range(len(data))], dtype=torch.long)
    assert len(ids) and buf.stored_groups("class").tolist() == classes(ids).tolist()
    assert buf.stored_groups("task").tolist() == source.task(ids, n).tolist()
    assert list(data.targets) == classes(ids).tolist()


@pytest.mark.parametrize("form", ["subsets", "mini-experiences"])
@pytest.mark.parametrize("name", list(SOURCES))
def test_an_update_reads_the_labels_it_offers_not_the_dataset_behind(name, form, conversions):
    """Fifty ten-sample offers over a dataset and over one a hundred times larger, into each
    buffer: the leaves' labels are converted once per buffer, then only the offered samples'."""
    source = SOURCES[name]
    for cls in BUFFERS:
        for n in (SMALL, LARGE):
            datasets = offers(name, n, form)
            buf = cls(30, seed=0)
            conversions.clear()
            for data in datasets:
                buf.update_from_dataset(data)
            offered = sum(len(d) for d in datasets)
            bound = 2 * source.behind * n + PER_SAMPLE * offered  # targets and task leaves, once
            assert sum(conversions) <= bound, (cls.__name__, n, sum(conversions), bound)
            assert buf.n_seen == offered
            check_stored(buf, source, n)


@pytest.mark.parametrize("cls", BUFFERS)
def test_labels_of_a_leaf_are_read_once_per_leaf_not_once_per_offer(cls, conversions):
    """Offered again, the same mini-experiences (and new subsets of the same leaves) convert no
    leaf: only the offered samples' labels."""
    name = "class_incremental_benchmark"
    datasets = offers(name, LARGE, "mini-experiences")
    buf = cls(30, seed=0)
    for data in datasets:
        buf.update_from_dataset(data)
    conversions.clear()
    again = [*datasets, *(d.subset([1, 0]) for d in datasets)]
    for data in again:
        buf.update_from_dataset(data)
    assert sum(conversions) <= PER_SAMPLE * sum(len(d) for d in again)
    check_stored(buf, SOURCES[name], LARGE)


def test_bad_labels_raise_the_same_errors_after_their_leaf_was_read():
    """A leaf read once still rejects what it rejected: negative labels the offer holds,
    non-integer labels, every time they are offered."""
    y = torch.arange(100) % 10
    y[57] = -3
    negative = _make_taskaware_tensor_classification_dataset(torch.zeros(100, 1), y)
    floats = TensorDataset(torch.zeros(100, 1), torch.zeros(100))
    floats.targets = [0.5] * 100
    floats = _make_taskaware_classification_dataset(floats)
    for cls in BUFFERS:
        buf = cls(20, seed=0)
        buf.update_from_dataset(negative.subset(range(10)))  # its leaf is read, its labels are fine
        for _ in range(2):
            with pytest.raises(ValueError, match="dataset.targets must hold labels >= 0, got -3"):
                buf.update_from_dataset(negative.subset(range(50, 60)))
            with pytest.raises(TypeError, match="dataset.targets must hold integer labels"):
                buf.update_from_dataset(floats.subset(range(10)))
        assert buf.n_seen == 10


def test_a_new_dataset_in_a_freed_one_s_place_gets_its_own_labels():
    """Datasets built and dropped one after another (whose objects may take a freed one's
    address): each offer's labels are its own dataset's, and the caches keep a few leaves."""
    for cls in BUFFERS:
        buf = cls(200, seed=0)
        for k in range(30):
            data = _make_taskaware_tensor_classification_dataset(
                torch.full((40, 1), float(k)), torch.full((40,), k % 10), task_labels=k % 3
            )
            buf.update_from_dataset(data.subset(range(k, k + 5)))
            del data  # freed at once (no cycles): the next dataset's objects may take its addresses
        stored = [int(x[0]) for x, *_ in (buf.buffer[i] for i in range(len(buf.buffer)))]
        assert buf.stored_groups("class").tolist() == [k % 10 for k in stored]
        assert buf.stored_groups("task").tolist() == [k % 3 for k in stored]
        table = buf._slots.sources
        assert len(table._labels._entries) <= table._labels.size  # the leaves of the latest few only
        assert len(table._signatures._entries) <= table._signatures.size
