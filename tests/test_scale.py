"""An update's work, and a replay step's, does not grow with the buffer's size: counted, not timed
(``helpers.WorkCounter``: per-slot array elements touched, tensor elements made, memory allocated),
on buffers of 1,000 and 100,000 slots, after the same number of updates into each."""

from __future__ import annotations

import pytest
import torch
from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
from avalanche.benchmarks.scenarios.online import split_online_stream
from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset
from helpers import WorkCounter

from avalanche_replay_ext import (
    BalancedRetrieval,
    ClassBalancedReservoirBuffer,
    DualMinibatchLoader,
    GreedyClassBalancedBuffer,
    RandomRetrieval,
    ReservoirSamplingBuffer,
)

SMALL, LARGE = 1_000, 100_000
BUFFERS = [ReservoirSamplingBuffer, GreedyClassBalancedBuffer, ClassBalancedReservoirBuffer]
WINDOW = 20  # updates or steps counted, after as many to warm up


def tensor_dataset(n: int, width: int = 2, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return _make_taskaware_tensor_classification_dataset(
        torch.randn(n, width, generator=gen), torch.randint(0, 10, (n,), generator=gen)
    )


@pytest.fixture(scope="module")
def big():
    """A dataset larger than the large buffer, and its stream of ten-sample mini-experiences."""
    data = tensor_dataset(LARGE + 5_000)
    bench = benchmark_from_datasets(train=[data], test=[data.subset(range(10))])
    return data, split_online_stream(bench.train_stream, experience_size=10, shuffle=False)


def full_buffer(kind, size: int, data):
    buffer = kind(size, seed=0)
    buffer.update_from_dataset(data, torch.arange(size + 100))
    return buffer


def updates(path: str, data, online):
    """2 * WINDOW update calls of ten samples each, as ``path`` offers them."""
    gen = torch.Generator().manual_seed(0)
    if path == "online":
        experiences = [exp for exp, _ in zip(online, range(2 * WINDOW), strict=False)]
        return [lambda b, e=e: b.post_adapt(None, e) for e in experiences]
    calls = []
    for _ in range(2 * WINDOW):
        idx = torch.randint(0, len(data), (10,), generator=gen)
        if path == "indices":
            calls.append(lambda b, i=idx: b.update_from_dataset(data, i))
        elif path == "subsets":
            subset = data.subset(idx.tolist())
            calls.append(lambda b, d=subset: b.update_from_dataset(d))
        elif path == "new datasets":  # each a source of its own
            fresh = tensor_dataset(10, seed=len(calls))
            calls.append(lambda b, d=fresh: b.update_from_dataset(d))
        else:
            x, y = torch.randn(10, 2, generator=gen), torch.randint(0, 10, (10,), generator=gen)
            calls.append(lambda b, x=x, y=y: b.update_from_batch(x, y))
    return calls


def assert_flat(work: dict) -> None:
    """The large buffer's counts exceed the small one's by at most a few elements per sample
    offered (the samples entering differ), its allocations by less than 32 KB (a sorted list's
    chunk): work proportional to the slots would add one element, and a byte, per slot: 100,000."""
    small, large, offered = work[SMALL], work[LARGE], 10 * WINDOW
    assert large.slot_elements <= small.slot_elements + 20 * offered, (small.slot_elements, large.slot_elements)
    assert large.torch_elements <= small.torch_elements + 20 * offered, (small.torch_elements, large.torch_elements)
    assert large.peak_bytes <= small.peak_bytes + 32 * 1024, (small.peak_bytes, large.peak_bytes)


@pytest.mark.parametrize("path", ["indices", "subsets", "new datasets", "online", "batches"])
@pytest.mark.parametrize("kind", BUFFERS, ids=lambda k: k.__name__)
def test_update_work_does_not_grow_with_max_size(kind, path, big):
    data, online = big
    work = {}
    for size in (SMALL, LARGE):
        buffer = full_buffer(kind, size, data)
        if path == "batches":  # a buffer of tensor rows
            buffer = kind(size, seed=0)
            buffer.update_from_batch(torch.randn(size + 100, 2), torch.arange(size + 100) % 10)
        if path == "new datasets":  # a buffer of samples from size / 100 sources
            buffer = kind(size, seed=0)
            for i in range(size // 100):
                buffer.update_from_dataset(tensor_dataset(101, seed=i))
        calls = updates(path, data, online)
        for call in calls[:WINDOW]:
            call(buffer)
        with WorkCounter(buffer) as work[size]:
            for call in calls[WINDOW:]:
                work[size].operation()
                call(buffer)
        assert len(buffer) == size
    assert_flat(work)


@pytest.mark.parametrize("retrieval", [RandomRetrieval, lambda: BalancedRetrieval("class")], ids=["random", "balanced"])
@pytest.mark.parametrize("kind", BUFFERS, ids=lambda k: k.__name__)
def test_replay_step_work_does_not_grow_with_max_size(kind, retrieval, big):
    """Online replay as ``AlphaReplayPlugin`` runs it on a stream of ten-sample experiences: one
    loader per experience, one step each, the buffer updated after it."""
    data, online = big
    work = {}
    for size in (SMALL, LARGE):
        buffer, policy, mini = full_buffer(kind, size, data), retrieval(), iter(online)

        def step(buffer=buffer, policy=policy, mini=mini):
            exp = next(mini)
            for (_x, y, _t), (_mx, my, _mt) in DualMinibatchLoader(exp.dataset, buffer, 10, seed=0, retrieval=policy):
                assert len(y) == len(my) == 10
            buffer.post_adapt(None, exp)

        for _ in range(WINDOW):
            step()
        with WorkCounter(buffer) as work[size]:
            for _ in range(WINDOW):
                work[size].operation()
                step()
    assert_flat(work)
