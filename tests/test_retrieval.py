"""Retrieval policies: what each step replays, apart from what the buffer stores."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
import torch.nn.functional as F
from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset
from avalanche.training.plugins import ReplayPlugin, SupervisedPlugin
from avalanche.training.storage_policy import ParametricBuffer
from avalanche.training.storage_policy import ReservoirSamplingBuffer as AvalancheReservoir
from helpers import id_dataset, make_naive
from scipy import stats
from torch.utils.data import TensorDataset

from avalanche_replay_ext import (
    AlphaReplayPlugin,
    BalancedRetrieval,
    ClassBalancedReservoirBuffer,
    DualMinibatchLoader,
    MIRRetrieval,
    RandomRetrieval,
    SplitDigits,
)

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
    batches = policy.plan(memory, 1000, 400, generator)
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
    batches = BalancedRetrieval("task").plan(memory, 100, 20, torch.Generator().manual_seed(0))
    assert {len(b) for b in batches} == {100}
    share = float((torch.cat(batches) >= 95).double().mean())  # task 1's 5 samples, drawn for half of the slots
    assert abs(share - 0.5) < 4 * (0.25 / 2000) ** 0.5, share


def test_bad_arguments_raise():
    current = id_dataset(torch.arange(4))
    with pytest.raises(ValueError, match=r"groupby must be one of \['class', 'task', 'experience'\], got 'cluster'"):
        BalancedRetrieval("cluster")
    with pytest.raises(ValueError, match="candidates must be a positive int"):
        MIRRetrieval(0)
    for where in (
        lambda r: DualMinibatchLoader(current, current, retrieval=r),
        lambda r: AlphaReplayPlugin(10, retrieval=r),
    ):
        with pytest.raises(TypeError, match="retrieval must be None or a RetrievalPolicy"):
            where("balanced")
    with pytest.raises(
        ValueError, match=r"MIRRetrieval\(candidates=50\) chooses with the model: use it in AlphaReplayPlugin"
    ):
        DualMinibatchLoader(current, current, retrieval=MIRRetrieval())
    plain = TensorDataset(torch.zeros(4, 1), torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match="groupby='class' needs a memory with `targets`"):
        DualMinibatchLoader(current, plain, 2, retrieval=BalancedRetrieval("class"))
    for memory in (current, AvalancheReservoir(10)):  # a dataset, an Avalanche buffer
        with pytest.raises(TypeError, match="groupby='experience' needs one of this package's buffers"):
            DualMinibatchLoader(current, memory, 2, retrieval=BalancedRetrieval("experience"))
    with pytest.raises(TypeError, match="groupby='experience' needs one of this package's buffers"):
        AlphaReplayPlugin(10, storage_policy=ParametricBuffer(10), retrieval=BalancedRetrieval("experience"))
    strategy = make_naive([AlphaReplayPlugin(10, retrieval=MIRRetrieval())], criterion=lambda out, y: out.sum())
    with pytest.raises(TypeError, match="the strategy's criterion must be a torch loss with a `reduction`"):
        strategy.train(SplitDigits(5, seed=0).train_stream[0])


def policy_first(memory) -> list[int]:
    """The first minibatch (4 of 10) that RandomRetrieval draws with generator seed 0."""
    return RandomRetrieval().plan(memory, 4, 1, torch.Generator().manual_seed(0))[0].tolist()


def test_random_retrieval_resumes_its_pass_from_a_pickle():
    """A pickled policy continues the pass it was in: the next 6 draws finish that pass."""
    memory, policy = id_dataset(torch.arange(10)), RandomRetrieval()
    policy.plan(memory, 4, 1, torch.Generator().manual_seed(0))  # 4 of the first pass drawn
    copy, generator = pickle.loads(pickle.dumps(policy)), torch.Generator().manual_seed(1)
    state = generator.get_state()
    expected = policy.plan(memory, 4, 5, generator)
    assert [b.tolist() for b in copy.plan(memory, 4, 5, generator.set_state(state))] == [b.tolist() for b in expected]
    assert sorted(torch.cat(expected)[:6].tolist()) == sorted(set(range(10)) - set(policy_first(memory)))


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


def test_buffers_record_the_experience_each_sample_arrived_in():
    """Online updates (the plugin's) and whole experiences (Avalanche's ReplayPlugin) both record
    the arrival experience; in SplitDigits(5) it is the class's position in the class order // 2."""
    bm = SplitDigits(5, seed=0)
    experience_of = {int(c): i // 2 for i, c in enumerate(bm.classes_order_original_ids)}
    online = AlphaReplayPlugin(100, update_every="iteration", seed=0)
    stock = ReplayPlugin(100, storage_policy=ClassBalancedReservoirBuffer(100, seed=0))
    for plugin in (online, stock):
        strategy = make_naive([plugin], epochs=1)
        for exp in list(bm.train_stream)[:3]:
            strategy.train(exp)
        buffer = plugin.storage_policy
        classes, experiences = buffer.stored_groups("class"), buffer.stored_groups("experience")
        assert experiences.tolist() == [experience_of[c] for c in classes.tolist()]
        assert set(experiences.tolist()) == {0, 1, 2}
        assert classes.tolist() == list(buffer.buffer.targets)


def test_groupby_experience_replays_past_experiences_equally():
    """While training the fifth experience, a reservoir holds experiences 0-3 in proportion to
    their sizes, and also the one under way; replayed, each experience present has an equal share
    (chi-square below its 0.9999 quantile)."""
    bm = SplitDigits(5, seed=0, imbalance_ratio=0.05)
    replay = AlphaReplayPlugin(200, update_every="iteration", retrieval=BalancedRetrieval("experience"), seed=0)
    probe = MemoryClasses(replay)
    strategy = make_naive([replay, probe], epochs=1, mb_size=10)
    for exp in bm.train_stream:
        strategy.train(exp)
    experience_of = {int(c): i // 2 for i, c in enumerate(bm.classes_order_original_ids)}
    stored = replay.storage_policy.stored_groups("experience")
    assert torch.bincount(stored)[0] > 3 * torch.bincount(stored)[3]  # long-tailed storage
    last = torch.cat(probe.classes[-len(bm.train_stream[4].dataset) // 10 :])
    counts = torch.bincount(torch.tensor([experience_of[c] for c in last.tolist()]), minlength=5).double()
    expected = counts.sum() / 5
    assert float(((counts - expected) ** 2 / expected).sum()) < stats.chi2.ppf(0.9999, 4), counts.tolist()


def rows(x: torch.Tensor) -> set[tuple[float, ...]]:
    return {tuple(r.flatten().tolist()) for r in x}


class MIRCheck(SupervisedPlugin):
    """Registered before the replay plugin: at each step with a memory term, records what MIR must
    choose, computed as Avalanche's MIRPlugin does it (a deep copy stepped by ``p - lr * g``)."""

    def __init__(self, replay: AlphaReplayPlugin) -> None:
        super().__init__()
        self.replay, self.expected, self.params = replay, [], None

    def before_backward(self, strategy, **kwargs):
        candidates = self.replay.memory_minibatch
        if candidates is None:
            return
        grads = torch.autograd.grad(strategy.loss, list(strategy.model.parameters()), retain_graph=True)
        stepped = copy.deepcopy(strategy.model).eval()
        for p, g in zip(stepped.parameters(), grads, strict=True):
            p.data -= strategy.optimizer.param_groups[0]["lr"] * g
        with torch.no_grad():
            model = copy.deepcopy(strategy.model).eval()
            before = F.cross_entropy(model(candidates[0]), candidates[1], reduction="none")
            rise = F.cross_entropy(stepped(candidates[0]), candidates[1], reduction="none") - before
        self.expected.append(rows(candidates[0][torch.topk(rise, 10).indices]))
        self.params = [p.detach().clone() for p in strategy.model.parameters()]

    def after_backward(self, strategy, **kwargs):
        if self.replay.memory_minibatch is not None:
            chosen = self.replay.memory_minibatch[0]
            assert len(chosen) == 10 and rows(chosen) == self.expected[-1]
            assert all(torch.equal(p, q) for p, q in zip(self.params, strategy.model.parameters(), strict=True))
            assert strategy.model.training


def test_mir_replays_the_candidates_the_virtual_step_hurts_most():
    """Each step with a memory: the 10 samples chosen among 30 candidates are those whose loss an
    SGD step on the current minibatch raises most, computed independently, and choosing them
    leaves the model untouched and in training mode."""
    bm = SplitDigits(5, seed=0)
    replay = AlphaReplayPlugin(100, update_every="iteration", retrieval=MIRRetrieval(30), seed=0, batch_size_mem=10)
    check = MIRCheck(replay)
    strategy = make_naive([check, replay], epochs=1, mb_size=10)
    for exp in list(bm.train_stream)[:2]:
        strategy.train(exp)
    assert len(check.expected) > 30


def test_balanced_retrieval_reads_an_avalanche_buffer():
    """Avalanche's reservoir as storage (empty when the plugin is built): during the third
    experience the two earlier experiences' four classes are replayed equally often
    (chi-square below its 0.9999 quantile)."""
    bm = SplitDigits(5, seed=0, imbalance_ratio=0.05)
    replay = AlphaReplayPlugin(100, storage_policy=AvalancheReservoir(100), retrieval=BalancedRetrieval("class"))
    probe = MemoryClasses(replay)
    strategy = make_naive([replay, probe], epochs=2, mb_size=10)
    for exp in list(bm.train_stream)[:3]:
        probe.classes.clear()
        strategy.train(exp)
    classes = torch.cat(probe.classes)
    counts = torch.bincount(classes, minlength=10)[[int(c) for c in bm.classes_order_original_ids[:4]]].double()
    assert counts.sum() == len(classes)
    expected = counts.sum() / 4
    assert float(((counts - expected) ** 2 / expected).sum()) < stats.chi2.ppf(0.9999, 3), counts.tolist()


def test_a_memory_smaller_than_the_replicas_gives_each_a_full_share():
    memory = id_dataset(torch.arange(3))
    for rank in range(4):
        loader = DualMinibatchLoader(id_dataset(torch.arange(40)), memory, 5, seed=0, num_replicas=4, rank=rank)
        assert all(len(mem[1]) == 1 for _, mem in loader)
