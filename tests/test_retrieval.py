"""Retrieval policies: what each step replays, apart from what the buffer stores."""

from __future__ import annotations

import pickle

import pytest
import torch
from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset
from avalanche.training.plugins import SupervisedPlugin
from helpers import id_dataset, make_naive
from scipy import stats
from torch.utils.data import TensorDataset

from avalanche_replay_ext import AlphaReplayPlugin, BalancedRetrieval, DualMinibatchLoader, SplitDigits

SIZES = [900, 50, 30, 20]  # a memory that is 90% class 0


def skewed_memory() -> object:
    """1000 samples (x = their index), classes 0-3 in the counts of SIZES."""
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(SIZES)])
    return _make_taskaware_tensor_classification_dataset(torch.arange(1000.0).unsqueeze(1), labels, task_labels=0)


def replayed(retrieval, epochs: int = 5) -> torch.Tensor:
    """The classes of every memory sample replayed over ``epochs`` passes of a 600-sample current set."""
    loader = DualMinibatchLoader(id_dataset(torch.arange(600)), skewed_memory(), 10, seed=0, retrieval=retrieval)
    return torch.cat([mem[1] for _ in range(epochs) for _, mem in loader])


def test_balanced_retrieval_replays_every_class_equally_often():
    """3000 replayed samples; their class histogram against a flat one: chi-square below its
    0.9999 quantile (3 degrees of freedom). Without the policy the same loader replays class 0
    about 90% of the time, far above that bound."""
    bound = stats.chi2.ppf(0.9999, len(SIZES) - 1)
    for retrieval, flat in ((BalancedRetrieval("class"), True), (None, False)):
        counts = torch.bincount(replayed(retrieval), minlength=len(SIZES)).double()
        expected = counts.sum() / len(SIZES)
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        assert (chi2 < bound) == flat, (retrieval, counts.tolist(), chi2)


def test_within_a_group_samples_are_drawn_uniformly():
    """400 planned steps of 1000 draws: each class-0 member's count against a uniform share of its
    class's draws (chi-square below the 0.9999 quantile, 899 degrees of freedom), and every
    minibatch has the size asked for."""
    memory, generator = skewed_memory(), torch.Generator().manual_seed(0)
    policy = BalancedRetrieval("class")
    batches = [b for _ in range(400) for b in policy.plan(memory, 1000, generator)]
    assert {len(b) for b in batches} == {1000}
    drawn = torch.cat(batches)
    members = torch.bincount(drawn[drawn < SIZES[0]], minlength=SIZES[0]).double()
    expected = members.sum() / SIZES[0]
    assert float(((members - expected) ** 2 / expected).sum()) < stats.chi2.ppf(0.9999, SIZES[0] - 1)


def test_groupby_task_balances_task_labels():
    data = torch.arange(100.0).unsqueeze(1)
    memory = _make_taskaware_tensor_classification_dataset(
        data, torch.zeros(100, dtype=torch.long), task_labels=[0] * 95 + [1] * 5
    )
    (batch,) = BalancedRetrieval("task").plan(memory, 2000, torch.Generator().manual_seed(0))[:1]
    share = float((batch >= 95).double().mean())  # task 1's 5 samples, drawn for half of the slots
    assert abs(share - 0.5) < 4 * (0.25 / 2000) ** 0.5, share


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match=r"groupby must be one of \['class', 'task'\], got 'experience'"):
        BalancedRetrieval("experience")
    with pytest.raises(TypeError, match="retrieval must be None or a RetrievalPolicy"):
        DualMinibatchLoader(id_dataset(torch.arange(4)), id_dataset(torch.arange(4)), retrieval="balanced")
    with pytest.raises(TypeError, match="retrieval must be None or a RetrievalPolicy"):
        AlphaReplayPlugin(10, retrieval="balanced")
    plain = TensorDataset(torch.zeros(4, 1), torch.zeros(4, dtype=torch.long))
    loader = DualMinibatchLoader(id_dataset(torch.arange(4)), plain, 2, retrieval=BalancedRetrieval("class"))
    with pytest.raises(TypeError, match="groupby='class' needs a memory with `targets`"):
        next(iter(loader))


class MemoryClasses(SupervisedPlugin):
    """Records the classes of every memory minibatch the replay plugin forwards."""

    def __init__(self, replay: AlphaReplayPlugin) -> None:
        super().__init__()
        self.replay, self.classes = replay, []

    def before_forward(self, strategy, **kwargs):
        if self.replay.memory_minibatch is not None:
            self.classes.append(self.replay.memory_minibatch[1])


def test_alpha_replay_plugin_replays_through_the_policy():
    """A long-tailed stream (ratio 0.01): after the first experience the memory holds its two
    classes about 145 : 88; during the second, balanced retrieval replays them about 1 : 1
    (within 4 standard deviations of a fair coin), and the strategy pickles with its policy."""
    bm = SplitDigits(5, seed=0, imbalance_ratio=0.01)
    replay = AlphaReplayPlugin(200, retrieval=BalancedRetrieval("class"), seed=0)
    probe = MemoryClasses(replay)
    strategy = make_naive([replay, probe], mb_size=10, epochs=8)
    strategy.train(bm.train_stream[0])
    first = [int(c) for c in bm.classes_order_original_ids[:2]]
    stored = torch.as_tensor(list(replay.storage_policy.buffer.targets))  # what the second experience replays from
    assert set(stored.tolist()) == set(first) and float((stored == first[0]).double().mean()) > 0.55
    strategy.train(bm.train_stream[1])
    classes = torch.cat(probe.classes)
    assert set(classes.tolist()) == set(first)
    share = float((classes == first[0]).double().mean())
    assert abs(share - 0.5) < 4 * (0.25 / len(classes)) ** 0.5, (share, len(classes))
    restored = pickle.loads(pickle.dumps(strategy))
    assert isinstance(
        next(p for p in restored.plugins if isinstance(p, AlphaReplayPlugin)).retrieval, BalancedRetrieval
    )
