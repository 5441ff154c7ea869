"""Buffers fed the way Avalanche's streams feed them: many distinct small datasets (subsets,
online mini-experiences, `.train()` copies) behave as the same samples offered by index, with
bounded views, sources and state; tensor rows cost what they hold; large resizes and groups."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import torch
from avalanche.benchmarks.scenarios.online import split_online_stream
from avalanche.benchmarks.utils import AvalancheDataset
from avalanche.benchmarks.utils.classification_dataset import ClassificationDataset
from avalanche.benchmarks.utils.data_attribute import DataAttribute
from avalanche.benchmarks.utils.utils import concat_datasets
from scipy import stats
from torch.utils.data import TensorDataset

from avalanche_replay_ext import (
    ClassBalancedReservoirBuffer,
    GreedyClassBalancedBuffer,
    ReservoirSamplingBuffer,
    SplitDigits,
)
from avalanche_replay_ext import _avalanche_compat as compat

BUFFERS = [ReservoirSamplingBuffer, GreedyClassBalancedBuffer, ClassBalancedReservoirBuffer]


def contents(buf) -> list[tuple]:
    data = buf.buffer
    return [(round(data[i][0].sum().item(), 4), int(data[i][1]), int(y)) for i, y in enumerate(data.targets)]


def online(digits, size: int, shuffle: bool = True):
    """``split_online_stream`` of the whole SplitDigits training stream (a fixed shuffle)."""
    return split_online_stream(digits.train_stream, experience_size=size, shuffle=shuffle, seed=0)


@pytest.mark.parametrize("cls", BUFFERS)
@pytest.mark.parametrize("form", ["subsets", "mini-experiences", "train copies"])
def test_distinct_datasets_give_the_buffer_of_index_offers(cls, form, digits):
    """The same samples in the same order, offered as one distinct dataset per chunk or as index
    chunks of their experience, give identical buffers (same seed)."""
    by_index, by_dataset = cls(80, seed=3), cls(80, seed=3)
    start, origin = 0, None
    for sub in online(digits, 9, shuffle=False):  # mini-experience k holds samples [9k, 9k + 9) of its origin
        start = 0 if sub.origin_experience.dataset is not origin else start
        origin = sub.origin_experience.dataset
        indices = np.arange(start, start + len(sub.dataset))
        start += len(sub.dataset)
        by_index.update_from_dataset(origin, indices)
        if form == "subsets":
            by_dataset.update_from_dataset(origin.subset(indices.tolist()))
        elif form == "mini-experiences":
            by_dataset.post_adapt(None, sub)
        else:
            by_dataset.update_from_dataset(sub.dataset.train())
    assert by_dataset.n_seen == by_index.n_seen == 1437
    assert contents(by_dataset) == contents(by_index)


@pytest.mark.parametrize("cls", BUFFERS)
def test_views_and_sources_stay_bounded_over_1000_mini_experiences(cls, digits):
    """1437 one-sample mini-experiences through the stock path's calls: the buffer references one
    source, and its view is never deeper than an experience's own dataset."""
    buf = cls(100, seed=0)
    exp_depth = compat.depth(digits.train_stream[0].dataset)
    depths, sources = set(), set()
    for i, sub in enumerate(online(digits, 1)):
        buf.post_adapt(None, sub)
        if i % 50 == 0 or i > 1400:
            depths.add(compat.depth(buf.buffer))
            sources.add(len(buf._slots.sources))
    assert buf.n_seen == 1437 and max(depths) <= exp_depth and sources == {1}


@pytest.mark.parametrize("cls", BUFFERS)
def test_state_and_pickles_do_not_grow_with_the_sources_seen(cls, digits):
    by_index, by_dataset = cls(100, seed=0), cls(100, seed=0)
    for exp in digits.train_stream:
        by_index.update_from_dataset(exp.dataset, torch.arange(len(exp.dataset)))
    for sub in online(digits, 2):
        by_dataset.post_adapt(None, sub)
    sizes = [len(pickle.dumps(obj)) for b in (by_index, by_dataset) for obj in (b, b.state_dict())]
    assert max(sizes) < 1.1 * min(sizes), sizes  # one training set held, however it was offered


def test_samples_keep_the_transforms_of_the_dataset_they_came_in(digits):
    """Offered as a `.train()` copy, a sample is read with the train transform; as an `.eval()`
    copy, with the eval transform; `buffer.eval()` switches the whole view, as in Avalanche."""
    bm = SplitDigits(5, seed=0, train_transform=lambda x: x + 100, eval_transform=None)
    exp = bm.train_stream[0].dataset
    raw = exp.eval()[0][0]
    for copy, shift in ((exp.train(), 100), (exp.eval(), 0)):
        buf = ReservoirSamplingBuffer(10, seed=0)
        buf.update_from_dataset(copy, [0])
        assert torch.equal(buf.buffer[0][0], raw + shift)
        assert torch.equal(buf.buffer.eval()[0][0], raw)


def test_tensor_rows_cost_what_they_hold():
    """Ten samples in a 10,000-slot buffer: storage, state and pickle hold about ten rows; a view
    reads the rows without copying them; a view made earlier keeps its samples after evictions."""
    buf = ReservoirSamplingBuffer(10_000, seed=0)
    buf.update_from_batch(torch.randn(10, 3, 32, 32), torch.arange(10))
    rows, held = buf._slots.rows, 10 * 3 * 32 * 32 * 4  # bytes of the ten samples
    assert len(rows.x) <= 32 and buf.state_dict()["slots"]["rows"]["x"].shape[0] == 10
    saved = io.BytesIO()
    torch.save(buf.state_dict(), saved)
    assert saved.tell() < 1.5 * held and len(pickle.dumps(buf)) < 1.5 * held
    view = buf.buffer
    assert view[3][0].untyped_storage().data_ptr() == rows.x.untyped_storage().data_ptr()

    small = ReservoirSamplingBuffer(5, seed=0)
    small.update_from_batch(torch.arange(5.0).view(5, 1), torch.zeros(5, dtype=torch.long))
    before = small.buffer
    snapshot = [before[i][0].item() for i in range(5)]
    for start in range(5, 400, 5):  # many evictions and several compactions of the row storage
        small.update_from_batch(torch.arange(start, start + 5.0).view(5, 1), torch.zeros(5, dtype=torch.long))
    assert [before[i][0].item() for i in range(5)] == snapshot
    assert len(small._slots.rows.x) <= 32


def sequential_greedy_shrink(counts: list[int], k: int) -> list[int]:
    """The definition: ``k`` times, take one from the largest class, the earliest among ties."""
    counts = list(counts)
    for _ in range(k):
        counts[counts.index(max(counts))] -= 1
    return counts


def test_greedy_resize_matches_one_by_one_eviction(digits):
    """The closed-form shrink equals the one-by-one rule on random class counts, and evicts the
    members of a class uniformly (1000 seeds; each count within its 1e-4 binomial quantiles)."""
    gen = np.random.default_rng(0)
    for _ in range(200):
        counts = gen.integers(0, 12, size=gen.integers(1, 8))
        k = int(gen.integers(0, counts.sum() + 1)) if counts.sum() else 0
        from avalanche_replay_ext.buffers.class_balanced_reservoir import level_down

        assert level_down(counts, k, np.arange(len(counts))).tolist() == sequential_greedy_shrink(counts.tolist(), k)

    exp = digits.train_stream[0].dataset
    first_class = int(exp.targets[0])
    members = [i for i in range(len(exp)) if int(exp.targets[i]) == first_class][:6]
    others = [i for i in range(len(exp)) if int(exp.targets[i]) != first_class][:2]
    survived = np.zeros(6)
    for seed in range(1000):
        buf = GreedyClassBalancedBuffer(8, seed=seed)
        buf.update_from_dataset(exp, members + others)  # 6 of one class, 2 of the other
        buf.resize(None, 6)  # evicts 2 of the 6
        kept = {round(float(x[0].sum()), 4) for x in (buf.buffer[i] for i in range(6))}
        survived += [round(float(exp[m][0].sum()), 4) in kept for m in members]
    low, high = stats.binom.ppf([1e-4 / 12, 1 - 1e-4 / 12], 1000, 4 / 6)
    assert survived.min() >= low and survived.max() <= high, survived


def test_greedy_groups_and_counts_on_a_large_many_class_buffer():
    """100,000 slots, 1000 classes: class counts, groups and the class-ordered view agree."""
    buf = GreedyClassBalancedBuffer(100_000, seed=0)
    y = torch.randint(0, 1000, (100_000,), generator=torch.Generator().manual_seed(0))
    buf.update_from_batch(torch.zeros(100_000, 1), y)
    counts = buf.class_counts()
    assert counts == {c: int(n) for c, n in zip(*np.unique(y.numpy(), return_counts=True), strict=True)}
    groups = buf.buffer_groups
    assert [g.max_size for g in groups.values()] == list(counts.values())
    assert set(groups[7].buffer.targets) == {7} and len(groups[7].buffer) == counts[7]
    assert list(buf.buffer.targets)[: counts[int(y[0])]] == [int(y[0])] * counts[int(y[0])]
    buf.resize(None, 50_000)
    assert max(buf.class_counts().values()) - min(buf.class_counts().values()) <= 1


def test_tensor_rows_do_not_change_the_view_of_dataset_samples():
    """Tensor rows next to dataset samples: the view keeps the datasets' transform group and
    class, also for a dataset without task labels."""
    bm = SplitDigits(5, seed=0, train_transform=lambda x: x + 100, eval_transform=None)
    exp = bm.train_stream[0].dataset.eval()
    buf = ReservoirSamplingBuffer(10, seed=0)
    buf.update_from_dataset(exp, [0])
    buf.update_from_batch(torch.zeros(1, 1, 8, 8), torch.tensor([3]))
    assert torch.equal(buf.buffer[0][0], exp[0][0]) and len(buf.buffer) == 2

    x, y = torch.randn(6, 2), torch.arange(6)
    plain = ClassificationDataset([TensorDataset(x, y)], data_attributes=[DataAttribute(y.tolist(), "targets")])
    buf = ReservoirSamplingBuffer(10, seed=0)
    buf.update_from_dataset(plain)
    buf.update_from_batch(torch.ones(2, 2), torch.tensor([7, 8]))
    assert sorted(buf.buffer.targets) == [0, 1, 2, 3, 4, 5, 7, 8]


@pytest.mark.parametrize("cls", BUFFERS)
@pytest.mark.parametrize("with_rows", [False, True])
def test_multi_task_views_concatenate_with_avalanche_datasets(cls, with_rows):
    """A view holding several task labels concatenates with an experience either way round."""
    stream = SplitDigits(5, seed=0, return_task_id=True).train_stream
    buf = cls(1000, seed=0)  # room for all: every task is held
    buf.post_adapt(None, stream[0])
    buf.post_adapt(None, stream[1])
    if with_rows:
        buf.update_from_batch(torch.zeros(2, 1, 8, 8), torch.tensor([0, 1]), 4)
    assert set(buf.buffer.targets_task_labels) == ({0, 1, 4} if with_rows else {0, 1})
    tasks = sorted([*buf.buffer.targets_task_labels, *[2] * len(stream[2].dataset)])
    for joined in (concat_datasets([buf.buffer, stream[2].dataset]), concat_datasets([stream[2].dataset, buf.buffer])):
        assert sorted(joined.targets_task_labels) == tasks
        assert sorted(int(joined[i][2]) for i in range(len(joined))) == tasks


def test_class_groups_are_snapshots(digits):
    """Groups read before an update or a shrink, their datasets built only afterwards, hold the
    samples their class had when the groups were read."""
    e0, e1 = digits.train_stream[0].dataset, digits.train_stream[1].dataset
    reference = GreedyClassBalancedBuffer(20, seed=0)
    reference.update_from_dataset(e0)
    expected = {c: contents_of(g.buffer) for c, g in reference.buffer_groups.items()}
    buf = GreedyClassBalancedBuffer(20, seed=0)
    buf.update_from_dataset(e0)
    groups = buf.buffer_groups  # their datasets not built yet
    buf.update_from_dataset(e1)
    buf.resize(None, 3)
    assert {c: contents_of(g.buffer) for c, g in groups.items()} == expected


def contents_of(data) -> list[tuple]:
    return [(round(data[i][0].sum().item(), 4), int(data[i][1])) for i in range(len(data))]


def test_labels_are_read_as_the_dataset_serves_them():
    """After `update_data_attribute` on a plain AvalancheDataset, the buffer stores the labels the
    dataset's items carry (Avalanche leaves the old attribute on the instance)."""
    x, y = torch.randn(5, 2), torch.arange(5)
    task0 = DataAttribute([0] * 5, "targets_task_labels", use_in_getitem=True)
    ds = AvalancheDataset([TensorDataset(x, y)], data_attributes=[DataAttribute(y.tolist(), "targets"), task0])
    ds = ds.update_data_attribute("targets_task_labels", DataAttribute([7] * 5, "targets_task_labels", True))
    assert ds[0][2] == 7
    buf = ReservoirSamplingBuffer(10, seed=0)
    buf.update_from_dataset(ds)
    assert set(buf.buffer.targets_task_labels) == {7} and buf.buffer[0][2] == 7


def test_a_benchmark_built_again_resolves_to_the_source_of_the_first():
    """After a resume the benchmark is built again over the same leaves: its datasets resolve to
    the buffer's old source, which then takes the newest dataset as representative (the old tree
    is dropped), so neither the sources nor the pickle grow; other transforms stay apart."""
    import torchvision.transforms as T

    first = SplitDigits(5, seed=0)
    buf = ReservoirSamplingBuffer(200, seed=0)
    buf.post_adapt(None, first.train_stream[0])
    size = len(pickle.dumps(buf))
    again = SplitDigits(5, seed=0)
    buf.post_adapt(None, again.train_stream[1])
    (rep,) = buf._slots.sources.datasets.values()
    assert rep._flat_data._datasets[0] is again.train_stream[1].dataset._flat_data._datasets[0]
    assert abs(len(pickle.dumps(buf)) - size) < 512
    normalized = [SplitDigits(5, seed=0, train_transform=T.Normalize((m,), (0.2,))) for m in (0.5, 0.5, 0.4)]
    buf = ReservoirSamplingBuffer(200, seed=0)
    for bm in normalized:
        buf.post_adapt(None, bm.train_stream[0])
    assert len(buf._slots.sources) == 2  # equal transforms share a source, another mean does not
