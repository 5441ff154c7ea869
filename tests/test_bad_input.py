"""Bad input, everywhere in the public API: a clear exception naming the argument and what is
allowed, raised at construction where possible, and never a half-updated buffer."""

from __future__ import annotations

import copy
import math
import pickle
from functools import partial
from types import SimpleNamespace

import pytest
import torch
from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset
from avalanche.training.storage_policy import ClassBalancedBuffer
from helpers import assert_same_state, id_dataset, make_naive, with_fault

from avalanche_replay_ext import (
    AlphaReplay,
    AlphaReplayPlugin,
    ClassBalancedReservoirBuffer,
    ConstantAlpha,
    DualMinibatchLoader,
    GDumb,
    GDumbPlugin,
    GreedyClassBalancedBuffer,
    LinearAlpha,
    ReservoirSamplingBuffer,
    SplitDigits,
    SplitMNISTIdx,
)
from avalanche_replay_ext.benchmarks import load_mnist_idx
from avalanche_replay_ext.buffers import _slots
from avalanche_replay_ext.buffers._groups import GroupIndex
from avalanche_replay_ext.buffers._rows import RowStore
from avalanche_replay_ext.buffers._slots import SlotStore
from avalanche_replay_ext.buffers._sources import SourceTable
from avalanche_replay_ext.metrics import AlphaReplayMetric

BUFFERS = [ReservoirSamplingBuffer, GreedyClassBalancedBuffer, ClassBalancedReservoirBuffer]
NOT_SIZES = [
    (0, ValueError),
    (-3, ValueError),
    (2.5, TypeError),
    ("30", TypeError),
    (None, TypeError),
    (True, TypeError),
]
NOT_ALPHAS = [-1.0, math.nan, math.inf, -math.inf]


def contents(buf) -> list:
    data = buf.buffer
    return [(float(data[i][0].sum()), int(data[i][1]), int(data[i][2])) for i in range(len(data))]


# ---- sizes and seeds ----------------------------------------------------------------------
SIZED = {  # (argument name, build with that argument = v); None is allowed for batch_size_mem
    "buffer max_size": ("max_size", lambda v: ReservoirSamplingBuffer(v)),
    "greedy max_size": ("max_size", lambda v: GreedyClassBalancedBuffer(v)),
    "plugin mem_size": ("mem_size", lambda v: AlphaReplayPlugin(mem_size=v)),
    "plugin batch_size_mem": ("batch_size_mem", lambda v: AlphaReplayPlugin(batch_size_mem=v)),
    "gdumb mem_size": ("mem_size", lambda v: GDumbPlugin(v)),
    "gdumb T_0": ("T_0", lambda v: GDumbPlugin(10, T_0=v)),
    "loader batch_size": ("batch_size", lambda v: DualMinibatchLoader(id_dataset(torch.arange(4)), [], v)),
    "loader batch_size_mem": ("batch_size_mem", lambda v: DualMinibatchLoader(id_dataset(torch.arange(4)), [], 2, v)),
    "digits n_experiences": ("n_experiences", lambda v: SplitDigits(v)),
    "AlphaReplay mem_size": (
        "mem_size",
        lambda v: AlphaReplay(model=torch.nn.Linear(2, 2), optimizer=None, criterion=None, mem_size=v),
    ),
    "GDumb mem_size": (
        "mem_size",
        lambda v: GDumb(model=torch.nn.Linear(2, 2), optimizer=None, criterion=None, mem_size=v),
    ),
}


def assert_restored(cls, buf, before: dict, view, digits, label: str) -> None:
    """``buf`` holds ``before`` (its state) and ``view`` (its contents) again, and then continues
    exactly like an untouched twin."""
    assert_same_state(before, buf.state_dict(), label)
    assert contents(buf) == view, label
    twin = filled(cls, digits)
    for b in (buf, twin):
        b.update_from_dataset(digits.train_stream[3].dataset)
    assert_same_state(twin.state_dict(), buf.state_dict(), f"{label} then")
    assert contents(buf) == contents(twin), label


@pytest.mark.parametrize(("bad", "error"), NOT_SIZES)
@pytest.mark.parametrize("where", list(SIZED))
def test_sizes_must_be_positive_ints(where, bad, error):
    name, build = SIZED[where]
    if bad is None and where == "plugin batch_size_mem":
        assert build(None).batch_size_mem is None  # None: the strategy's train_mb_size
        return
    if bad is None and where == "loader batch_size_mem":
        assert build(None).batch_size_mem == 2  # None: batch_size
        return
    with pytest.raises(error, match=f"{name} must be a positive int"):
        build(bad)


@pytest.mark.parametrize(
    "build",
    [
        lambda: ReservoirSamplingBuffer(5, seed="a"),
        lambda: GreedyClassBalancedBuffer(5, seed=1.5),
        lambda: AlphaReplayPlugin(seed="0"),
        lambda: GDumbPlugin(10, seed=2.0),
        lambda: DualMinibatchLoader(id_dataset(torch.arange(4)), [], seed=True),
    ],
)
def test_seeds_must_be_ints_or_none(build):
    with pytest.raises(TypeError, match="seed must be None or an int"):
        build()


def test_split_digits_rejects_counts_that_do_not_divide_the_classes():
    with pytest.raises(ValueError, match="n_experiences must divide the 10 classes, got 3"):
        SplitDigits(3)


# ---- alpha and schedules ----------------------------------------------------------------
@pytest.mark.parametrize("bad", NOT_ALPHAS)
@pytest.mark.parametrize(
    ("name", "build"),
    [
        ("alpha", lambda v: AlphaReplayPlugin(alpha=v)),
        ("alpha", lambda v: ConstantAlpha(v)),
        ("alpha_base", lambda v: LinearAlpha(v)),
        ("alpha", lambda v: AlphaReplay(model=torch.nn.Linear(2, 2), optimizer=None, criterion=None, alpha=v)),
    ],
)
def test_alpha_must_be_finite_and_non_negative(name, build, bad):
    with pytest.raises(ValueError, match=f"{name} must be a finite number >= 0"):
        build(bad)


@pytest.mark.parametrize("bad", [None, "1", [1.0], True])
def test_alpha_of_a_wrong_type_names_the_allowed_forms(bad):
    with pytest.raises(TypeError, match="alpha must be a float >= 0, ConstantAlpha, LinearAlpha or a callable"):
        AlphaReplayPlugin(alpha=bad)


class TurnsBadAtTwo:
    """A schedule that is fine for t < 2 and returns ``bad`` from t = 2 on."""

    def __init__(self, bad: float) -> None:
        self.bad = bad

    def __call__(self, t: int) -> float:
        return 1.0 if t < 2 else self.bad


@pytest.mark.parametrize("bad", NOT_ALPHAS)
def test_a_schedule_turning_bad_fails_when_that_experience_starts_and_changes_nothing(digits, bad):
    replay = AlphaReplayPlugin(50, TurnsBadAtTwo(bad), seed=0)
    strategy = make_naive([replay], epochs=1)
    strategy.train(digits.train_stream[0])
    strategy.train(digits.train_stream[1])
    buf = replay.storage_policy
    before, n_seen, params = contents(buf), buf.n_seen, [p.clone() for p in strategy.model.parameters()]
    with pytest.raises(ValueError, match=r"alpha schedule .* at t=2 must be a finite number >= 0"):
        strategy.train(digits.train_stream[2])
    assert contents(buf) == before and buf.n_seen == n_seen
    assert all(torch.equal(a, b) for a, b in zip(params, strategy.model.parameters(), strict=True))


# ---- the other plugin and loader arguments ----------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"update_every": "epoch"}, ValueError, r"update_every must be one of \('experience', 'iteration'\)"),
        ({"storage_policy": ReservoirSamplingBuffer(50)}, ValueError, r"storage_policy.max_size \(50\) differs"),
        ({"storage_policy": "reservoir"}, TypeError, "storage_policy must be an avalanche ExemplarsBuffer"),
        ({"storage_policy": ClassBalancedBuffer(200), "update_every": "iteration"}, ValueError, "per-minibatch"),
    ],
)
def test_bad_alpha_replay_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        AlphaReplayPlugin(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"cutmix_prob": 1.5}, "cutmix_prob must be a finite number >= 0 and <= 1"),
        ({"cutmix_prob": -0.1}, "cutmix_prob must be a finite number >= 0 and <= 1"),
        ({"cutmix_alpha": 0.0}, "cutmix_alpha must be a finite number > 0"),
        ({"clip_grad_norm": -1.0}, "clip_grad_norm must be a finite number > 0"),
        ({"min_lr": math.nan}, "min_lr must be a finite number >= 0"),
        ({"warmup_factor": math.inf}, "warmup_factor must be a finite number"),
        ({"storage_policy": "class"}, "storage_policy must be an avalanche ExemplarsBuffer"),
    ],
)
def test_bad_gdumb_arguments(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        GDumbPlugin(10, **kwargs)


def test_bad_loader_arguments():
    data = id_dataset(torch.arange(5))
    with pytest.raises(TypeError, match="sets sampler itself"):
        DualMinibatchLoader(data, data, sampler=range(5))
    with pytest.raises(TypeError, match=r"current_data must be a dataset \(__len__, __getitem__\), got NoneType"):
        DualMinibatchLoader(None, data)
    with pytest.raises(TypeError, match=r"current_data must be a dataset .*, got ReservoirSamplingBuffer"):
        DualMinibatchLoader(ReservoirSamplingBuffer(3), data)
    with pytest.raises(TypeError, match=r"memory_data must be a dataset .* or an ExemplarsBuffer, got int"):
        DualMinibatchLoader(data, 3)
    for rank in (2, -1, 0.0, None):
        with pytest.raises(ValueError, match=r"rank must be an int in \[0, num_replicas=2\)"):
            DualMinibatchLoader(data, data, num_replicas=2, rank=rank)
    with pytest.raises(ValueError, match="num_replicas must be a positive int"):
        DualMinibatchLoader(data, data, num_replicas=0)
    with pytest.raises(ValueError, match="quantity must be one of"):
        AlphaReplayMetric("accuracy")


def test_missing_mnist_folder_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("AVALANCHE_REPLAY_MNIST_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="AVALANCHE_REPLAY_MNIST_DIR"):
        load_mnist_idx()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SplitMNISTIdx(5, root=tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="no MNIST IDX files"):
        load_mnist_idx(tmp_path)


# ---- buffer updates: errors leave the buffer exactly as it was --------------------------
@pytest.mark.parametrize("cls", BUFFERS)
def test_failing_updates_and_resizes_leave_the_buffer_unchanged(cls, digits):
    buf = cls(20, seed=0)
    buf.update_from_dataset(digits.train_stream[0].dataset, list(range(10)))
    buf.update_from_batch(torch.zeros(3, 1, 8, 8), torch.tensor([1, 2, 3]))  # room left: stored as rows
    buf.post_adapt(None, digits.train_stream[1])
    before, state = contents(buf), buf.state_dict()
    assert state["slots"]["rows"]["x"] is not None and len(before) == 20
    x = torch.zeros(3, 1, 8, 8)
    float_targets = _make_taskaware_tensor_classification_dataset(torch.zeros(3, 1), torch.tensor([0.5, 1.0, 2.0]))
    failing = [
        (
            TypeError,
            "AvalancheDataset with class `targets`",
            lambda: buf.update_from_dataset(torch.utils.data.TensorDataset(x)),
        ),
        (TypeError, "dataset.targets must hold integer labels", lambda: buf.update_from_dataset(float_targets)),
        (TypeError, "y must hold integer labels", lambda: buf.update_from_batch(x, [0.5, 1, 2])),
        (TypeError, "y must be a sequence of integer labels, got None", lambda: buf.update_from_batch(x, None)),
        (ValueError, "y has 2 entries, expected 3", lambda: buf.update_from_batch(x, [1, 2])),
        (ValueError, "t has 2 entries, expected 3", lambda: buf.update_from_batch(x, [1, 2, 3], [0, 1])),
        (TypeError, "t must hold integer labels", lambda: buf.update_from_batch(x, [1, 2, 3], 0.5)),
        (ValueError, "x samples have shape", lambda: buf.update_from_batch(torch.zeros(3, 64), [1, 2, 3])),
        (TypeError, "x must be a tensor", lambda: buf.update_from_batch([[0.0]] * 3, [1, 2, 3])),
        (
            IndexError,
            r"indices must lie in \[0, ",
            lambda: buf.update_from_dataset(digits.train_stream[1].dataset, [0, 10_000]),
        ),
        (IndexError, "indices must lie in", lambda: buf.update_from_dataset(digits.train_stream[1].dataset, [-1])),
        (
            TypeError,
            "indices must hold integer labels",
            lambda: buf.update_from_dataset(digits.train_stream[1].dataset, [0.5]),
        ),
        (ValueError, "new_size must be a positive int", lambda: buf.resize(None, 0)),
        (TypeError, "new_size must be a positive int", lambda: buf.resize(None, 2.5)),
        (TypeError, "new_size must be a positive int", lambda: buf.resize(None, None)),
    ]
    for error, match, call in failing:
        with pytest.raises(error, match=match):
            call()
        assert contents(buf) == before, match
        assert buf.n_seen == state["n_seen"] and torch.equal(buf.generator.get_state(), state["generator"]), match
        assert buf.max_size == 20
    with pytest.raises(AttributeError, match="read-only"):
        buf.buffer = digits.train_stream[0].dataset


# ---- documented no-ops and limits -------------------------------------------------------
@pytest.mark.parametrize("cls", BUFFERS)
def test_empty_offers_are_no_ops(cls, digits):
    buf = cls(20, seed=0)
    buf.post_adapt(None, digits.train_stream[0])
    before, n_seen, generator = contents(buf), buf.n_seen, buf.generator.get_state()
    empty_exp = SimpleNamespace(dataset=digits.train_stream[1].dataset.subset([]))  # an experience with no samples
    buf.post_adapt(None, empty_exp)
    buf.update_from_dataset(digits.train_stream[2].dataset, [])
    buf.update_from_batch(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long))
    assert contents(buf) == before and buf.n_seen == n_seen
    assert torch.equal(buf.generator.get_state(), generator)
    # and a loader over empty data yields nothing, over an empty memory no memory minibatch
    assert list(DualMinibatchLoader(empty_exp.dataset, buf, batch_size=4)) == []
    steps = list(DualMinibatchLoader(digits.train_stream[0].dataset, [], batch_size=100))
    assert steps and all(mem is None for _, mem in steps)


@pytest.mark.parametrize("cls", BUFFERS)
def test_a_memory_larger_than_the_stream_keeps_everything(cls, digits):
    n = sum(len(e.dataset) for e in digits.train_stream)
    buf = cls(5000, seed=0)
    for exp in digits.train_stream:
        buf.post_adapt(None, exp)
    assert len(buf.buffer) == buf.n_seen == n
    strategy = make_naive(
        [AlphaReplayPlugin(5000, storage_policy=cls(5000, seed=0), update_every="iteration", seed=0)], epochs=1
    )
    for exp in digits.train_stream:
        strategy.train(exp)
    assert len(strategy.plugins[0].storage_policy.buffer) == n


def test_gdumb_with_a_memory_larger_than_the_stream_trains_on_all_of_it(digits):
    plugin = GDumbPlugin(5000, seed=0)
    strategy = make_naive([plugin], epochs=1)
    for exp in list(digits.train_stream)[:2]:
        strategy.train(exp)
    assert len(plugin.memory) == sum(len(e.dataset) for e in list(digits.train_stream)[:2])


# ---- faults inside an update: whatever fails, the buffer is exactly as before -------------
FAULT_POINTS = {  # internal step -> (object patched, attribute)
    "generator draw": (torch, "rand"),
    "source registration": (SourceTable, "commit"),
    "slot allocation": (SlotStore, "_reserve"),
    "slot write": (SlotStore, "_assign"),
    "slot counts": (SlotStore, "_count"),
    "class index move": (GroupIndex, "move"),
    "source table write": (SourceTable, "_write"),
    "row copy": (RowStore, "append"),
    "source pruning": (SlotStore, "_prune"),
    "slot selection": (SlotStore, "keep"),
    "row compaction": (SlotStore, "_compact_rows"),
    "state load": (SlotStore, "load_state_dict"),
    "view build": (_slots, "build_view"),
}


def filled(cls, digits):
    """A full buffer holding dataset samples and tensor rows, from two sources."""
    buf = cls(20, seed=0)
    buf.update_from_dataset(digits.train_stream[0].dataset, list(range(12)))
    buf.update_from_batch(torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1)), [1, 2, 3, 4, 5, 6])
    buf.post_adapt(None, digits.train_stream[1])
    return buf


def other_source(n: int = 300):
    """A dataset of its own (a new source for the buffer), 8x8 images of every class."""
    x = torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    return _make_taskaware_tensor_classification_dataset(x, torch.arange(n) % 10)


OFFERS = {
    "dataset": lambda buf, digits: buf.update_from_dataset(other_source()),
    "indices": lambda buf, digits: buf.update_from_dataset(digits.train_stream[2].dataset, list(range(0, 280, 3))),
    "batch": lambda buf, digits: buf.update_from_batch(torch.rand(200, 1, 8, 8), torch.arange(200) % 10),
    "resize": lambda buf, digits: buf.resize(None, 7),
    "load": lambda buf, digits: buf.load_state_dict(filled(type(buf), digits).state_dict()),
}


@pytest.mark.parametrize("path", list(OFFERS))
@pytest.mark.parametrize("cls", BUFFERS)
def test_a_fault_at_any_step_of_an_update_leaves_the_buffer_exactly_as_before(cls, path, digits, monkeypatch):
    """For every internal step the update goes through, a failure right after that step leaves
    state_dict() and the view as they were, and the buffer then continues like an untouched twin."""
    reached = []
    for point, (owner, name) in FAULT_POINTS.items():
        buf = filled(cls, digits)
        if path == "load":
            filled(cls, digits)  # draws of the global RNG, as the other calls' arguments make them
        before, view = buf.state_dict(), contents(buf)
        if not with_fault(monkeypatch, owner, name, partial(OFFERS[path], buf, digits)):
            continue  # this path does not go through that step
        reached.append(point)
        assert_restored(cls, buf, before, view, digits, f"{path}/{point}")
    assert len(reached) >= {"dataset": 4, "indices": 4, "batch": 4, "resize": 3, "load": 1}[path], reached


def test_the_issue_reproducer_a_meta_batch_leaves_greedy_counts_intact():
    g = GreedyClassBalancedBuffer(40, seed=0)
    g.update_from_batch(torch.randn(40, 3), torch.arange(40) % 2)
    with pytest.raises(NotImplementedError):  # meta tensors hold no data to copy
        g.update_from_batch(torch.empty(8, 3, device="meta"), torch.arange(2, 10))
    g.update_from_batch(torch.randn(40, 3), torch.arange(40) % 2 + 2)
    assert g.class_counts() == {0: 10, 1: 10, 2: 10, 3: 10}


# ---- load_state_dict: the wrong state raises and changes nothing --------------------------
@pytest.mark.parametrize("cls", BUFFERS)
def test_loading_a_state_of_another_kind_or_version_raises_and_changes_nothing(cls, digits):
    buf = filled(cls, digits)
    other = GreedyClassBalancedBuffer if cls is ReservoirSamplingBuffer else ReservoirSamplingBuffer
    state, view = buf.state_dict(), buf.buffer
    foreign = filled(other, digits).state_dict()
    bad = [
        (foreign, f"state is a '{foreign['kind']}' buffer's state; a {cls.__name__} loads '{state['kind']}'"),
        ({**state, "version": 0}, f"state has version 0; this {cls.__name__} reads version 3"),
        ({k: v for k, v in state.items() if k != "kind"}, "without 'kind'"),
        ({k: v for k, v in state.items() if k != "slots"}, r"state is incomplete .* no \['slots'\]"),
        ("state", "must be the state_dict"),
    ]
    for wrong, match in bad:
        with pytest.raises(ValueError, match=match):
            buf.load_state_dict(wrong)
        assert_same_state(state, buf.state_dict(), match)
        assert buf.buffer is view  # the cached view still describes the slots
    assert sorted(buf.buffer.targets) == sorted(buf.state_dict()["slots"]["fields"]["targets"].tolist())


# ---- smaller holes ------------------------------------------------------------------------
@pytest.mark.parametrize("cls", BUFFERS)
def test_huge_sizes_cost_nothing_until_samples_arrive(cls, digits):
    buf = cls(10**12, seed=0)
    buf.post_adapt(None, digits.train_stream[0])
    buf.update_from_batch(torch.zeros(3, 1, 8, 8), [1, 2, 3])
    n = len(digits.train_stream[0].dataset) + 3
    assert len(buf.buffer) == buf.n_seen == n
    assert len(buf._slots.source) < 4 * n  # slot arrays follow the samples held, not max_size
    buf.resize(None, 10**15)
    assert len(buf.buffer) == n


def test_gdumb_accepts_huge_memories_and_cycles(digits):
    plugin = GDumbPlugin(10**12, T_0=10**12, seed=0)  # T_0 beyond the passes: one cosine cycle over all
    strategy = make_naive([plugin], epochs=3)
    strategy.train(digits.train_stream[0])
    assert len(plugin.memory) == len(digits.train_stream[0].dataset)
    assert plugin.min_lr <= strategy.optimizer.param_groups[0]["lr"] < 0.01


@pytest.mark.parametrize("seed", [2**64, 2**70, -1])
@pytest.mark.parametrize(
    "build",
    [
        lambda s: ReservoirSamplingBuffer(5, seed=s),
        lambda s: GreedyClassBalancedBuffer(5, seed=s),
        lambda s: AlphaReplayPlugin(seed=s),
        lambda s: GDumbPlugin(10, seed=s),
        lambda s: DualMinibatchLoader(id_dataset(torch.arange(4)), [], seed=s),
    ],
)
def test_seeds_must_fit_the_generator(build, seed):
    with pytest.raises(ValueError, match=r"seed must be None or an int in \[0, 2\*\*64\)"):
        build(seed)


@pytest.mark.parametrize("cls", BUFFERS)
def test_negative_labels_and_mismatched_samples_raise_before_any_change(cls, digits):
    buf = cls(20, seed=0)
    buf.post_adapt(None, digits.train_stream[0])
    state = buf.state_dict()
    negative = _make_taskaware_tensor_classification_dataset(torch.zeros(300, 1, 8, 8), torch.arange(300) % 10 - 1)
    x = torch.zeros(3, 1, 8, 8)
    failing = [
        ("y must hold labels >= 0, got -1", lambda: buf.update_from_batch(x, [0, -1, 2])),
        ("t must hold labels >= 0, got -2", lambda: buf.update_from_batch(x, [0, 1, 2], -2)),
        ("dataset.targets must hold labels >= 0, got -1", lambda: buf.update_from_dataset(negative)),
        (
            r"x samples have shape \(64,\), but this buffer holds dataset samples of shape \(1, 8, 8\)",
            lambda: buf.update_from_batch(torch.zeros(3, 64), [0, 1, 2]),
        ),
    ]
    for match, call in failing:
        with pytest.raises(ValueError, match=match):
            call()
        assert_same_state(state, buf.state_dict(), match)
    rows = cls(20, seed=0)
    rows.update_from_batch(torch.zeros(3, 64), [0, 1, 2])
    with pytest.raises(ValueError, match=r"dataset samples have shape \(1, 8, 8\), but this buffer holds tensor"):
        rows.update_from_dataset(digits.train_stream[0].dataset)


def test_gdumb_storage_policy_size_and_boolean_flags():
    with pytest.raises(ValueError, match=r"storage_policy.max_size \(50\) differs from mem_size \(10\)"):
        GDumbPlugin(10, storage_policy=GreedyClassBalancedBuffer(50))
    for flag in ("warmup", "cosine", "mask_unseen"):
        for bad in ("no", 0, None):
            with pytest.raises(TypeError, match=f"{flag} must be True or False, got {bad!r}"):
                GDumbPlugin(10, **{flag: bad})


@pytest.mark.parametrize("cls", BUFFERS)
def test_offers_that_store_nothing_leave_no_trace_in_the_state(cls, digits):
    """An empty offer, or one none of whose samples enters, registers no source: the state is
    the state of a buffer never offered them."""
    buf, twin = cls(5, seed=0), cls(5, seed=0)
    ones = _make_taskaware_tensor_classification_dataset(torch.zeros(5, 1, 8, 8), torch.ones(5, dtype=torch.long))
    for b in (buf, twin):
        b.update_from_dataset(ones)  # greedy: class 1 fills the memory
    buf.update_from_dataset(digits.train_stream[0].dataset.subset([]))
    if cls is GreedyClassBalancedBuffer:  # class 1 is at its share: more of it never enters
        buf.update_from_dataset(_make_taskaware_tensor_classification_dataset(torch.zeros(1, 1, 8, 8), [1]))
        twin.n_seen += 1
        twin.generator.set_state(buf.generator.get_state())
    for b in (buf, twin):
        b.update_from_dataset(digits.train_stream[1].dataset)
    assert_same_state(twin.state_dict(), buf.state_dict())


@pytest.mark.parametrize("cls", BUFFERS)
def test_an_experience_offered_twice_is_two_stream_items(cls, digits):
    """The documented choice: each offer is a presentation, so offering an experience again
    counts its samples again, and a memory with room stores each of them twice."""
    exp = digits.train_stream[0]
    buf = cls(5000, seed=0)
    buf.post_adapt(None, exp)
    buf.post_adapt(None, exp)
    n = len(exp.dataset)
    assert buf.n_seen == 2 * n and len(buf.buffer) == 2 * n
    assert sorted(buf.buffer.targets) == sorted(list(exp.dataset.targets) * 2)


@pytest.mark.parametrize("cls", BUFFERS)
def test_a_bad_experience_raises_and_changes_nothing(cls, digits):
    buf = filled(cls, digits)
    state = buf.state_dict()
    data = digits.train_stream[2].dataset
    for experience in (-1, 1.5, "2", True):
        with pytest.raises(ValueError, match=f"experience must be None or an int >= 0, got {experience!r}"):
            buf.update_from_dataset(data, range(10), experience=experience)
        with pytest.raises(ValueError, match="experience must be None or an int >= 0"):
            buf.update_from_batch(torch.zeros(2, 1, 8, 8), [0, 1], experience=experience)
        assert_same_state(state, buf.state_dict(), experience)
    with pytest.raises(ValueError, match=r"groupby must be one of \['class', 'task', 'experience'\], got 'tasks'"):
        buf.stored_groups("tasks")


# ---- states: versions, consistency, pickles (issue 23, item 3) ---------------------------
def small_filled(cls, digits):
    """18 of 20 slots used: 12 dataset samples, then 6 tensor rows (none evicted)."""
    buf = cls(20, seed=0)
    buf.update_from_dataset(digits.train_stream[0].dataset, list(range(12)), experience=0)
    buf.update_from_batch(torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(1)), [1, 2, 3, 4, 5, 6])
    return buf


def other_buffer(cls, digits):
    """A buffer with other contents than ``small_filled``'s: what a refused load must leave as it is."""
    buf = cls(30, seed=3)
    buf.post_adapt(None, digits.train_stream[2])
    return buf


def with_slots(state: dict, **changes) -> dict:
    return {**state, "slots": {**state["slots"], **changes}}


def with_field(state: dict, name: str, value) -> dict:
    return with_slots(state, fields={**state["slots"]["fields"], name: value})


def changed(tensor: torch.Tensor, where: torch.Tensor, value) -> torch.Tensor:
    """A copy of ``tensor`` with ``value`` at the first position where ``where`` holds."""
    out = tensor.clone()
    out[int(torch.nonzero(where)[0])] = value
    return out


def inconsistent_states(state: dict) -> list[tuple]:
    """(error, message, state) for states that contradict themselves (``state``: 18 samples in 20
    slots, dataset samples and tensor rows)."""
    fields, rows = state["slots"]["fields"], state["slots"]["rows"]
    is_row, is_data = fields["source"] == -1, fields["source"] >= 0
    return [
        (ValueError, r"state's max_size must be a positive int \(>= 1\), got -3", {**state, "max_size": -3}),
        (TypeError, r"state's max_size must be a positive int \(>= 1\), got 2.5", {**state, "max_size": 2.5}),
        (ValueError, r"state's max_size \(10\) is below the 18 samples its slots hold", {**state, "max_size": 10}),
        (ValueError, r"state's slots capacity \(30\) differs from its max_size \(20\)", with_slots(state, capacity=30)),
        (ValueError, r"state's slots size must be an int in \[0, 20\], got 21", with_slots(state, size=21)),
        (ValueError, r"state's n_seen must be an int >= 18 \(the samples stored\), got -1", {**state, "n_seen": -1}),
        (TypeError, r"state's n_seen must be an int >= 18 .*, got 18.0", {**state, "n_seen": 18.0}),
        (ValueError, r"state's experience must be an int >= 0, got -1", {**state, "experience": -1}),
        (TypeError, r"state's seed must be None or an int", {**state, "seed": "a"}),
        (ValueError, "state's generator must be a torch.Generator state", {**state, "generator": torch.zeros(3)}),
        (
            ValueError,
            r"state's slots targets must hold values >= 0, got -1",
            with_field(state, "targets", changed(fields["targets"], is_data, -1)),
        ),
        (
            ValueError,
            r"state's slots tasks must hold values >= 0, got -2",
            with_field(state, "tasks", changed(fields["tasks"], is_row, -2)),
        ),
        (
            ValueError,
            r"state's slots experiences must hold values >= 0",
            with_field(state, "experiences", changed(fields["experiences"], is_data, -5)),
        ),
        (
            ValueError,
            r"state's slots source holds source id 7, but its sources are \[0\] \(and -1: tensor rows\)",
            with_field(state, "source", changed(fields["source"], is_data, 7)),
        ),
        (
            ValueError,
            r"state's slots index holds 100000 for source 0, which has \d+ samples",
            with_field(state, "index", changed(fields["index"], is_data, 10**5)),
        ),
        (
            ValueError,
            r"state's slots index holds 6 for the tensor rows, which are 6",
            with_field(state, "index", changed(fields["index"], is_row, 6)),
        ),
        (
            ValueError,
            r"state's slots index must hold values >= 0, got -1",
            with_field(state, "index", changed(fields["index"], is_row, -1)),
        ),
        (
            ValueError,
            r"state's slots targets has 17 entries, expected 18 \(its size\)",
            with_field(state, "targets", fields["targets"][:-1]),
        ),
        (
            TypeError,
            r"state's slots targets must be a 1-D torch.int64 tensor on the CPU, got torch.int32",
            with_field(state, "targets", fields["targets"].int()),
        ),
        (
            TypeError,
            r"state's slots tasks must be a 1-D torch.int64 tensor on the CPU, got list",
            with_field(state, "tasks", fields["tasks"].tolist()),
        ),
        (
            ValueError,
            r"state's slots fields must be .*'experiences'",
            with_slots(state, fields={k: v for k, v in fields.items() if k != "experiences"}),
        ),
        (
            ValueError,
            r"state's slots rows y has 5 entries, expected 6 \(one per row of x\)",
            with_slots(state, rows={**rows, "y": rows["y"][:-1]}),
        ),
        (
            TypeError,
            r"state's slots rows y must be a 1-D torch.int64 tensor on the CPU, got torch.float32",
            with_slots(state, rows={**rows, "y": rows["y"].float()}),
        ),
        (
            ValueError,
            r"state's slots index holds 5 for the tensor rows, which are 0",
            with_slots(state, rows={"x": None, "y": None}),
        ),
        (
            ValueError,
            r"state's slots sources must map the same source ids",
            with_slots(state, sources={**state["slots"]["sources"], "resolved": {}}),
        ),
        (
            TypeError,
            r"state's slots sources hold str for source 0: an AvalancheDataset",
            with_slots(state, sources={"datasets": {0: "data"}, "resolved": {0: True}}),
        ),
        (ValueError, r"state's slots size must be an int in \[0, 20\], got -1", with_slots(state, size=-1)),
    ]


@pytest.mark.parametrize("cls", BUFFERS)
def test_an_inconsistent_state_is_refused_before_any_change(cls, digits):
    """Every field is checked against the others before the load changes anything: the error names
    the field and what is allowed, and the buffer's state_dict() is the same as before."""
    state = small_filled(cls, digits).state_dict()
    extra = {cls: [] for cls in BUFFERS}
    if cls is ReservoirSamplingBuffer:
        keys, is_data = state["slots"]["fields"]["keys"], state["slots"]["fields"]["source"] >= 0
        extra[cls] = [
            (
                ValueError,
                r"state's slots keys must hold reservoir keys in \[0, 1\), got 1.5",
                with_field(state, "keys", changed(keys, is_data, 1.5)),
            ),
            (
                ValueError,
                r"state's slots keys must hold reservoir keys in \[0, 1\), got nan",
                with_field(state, "keys", changed(keys, is_data, math.nan)),
            ),
            (
                TypeError,
                r"state's slots keys must be a 1-D torch.float64 tensor on the CPU, got torch.float32",
                with_field(state, "keys", keys.float()),
            ),
        ]
    if cls is GreedyClassBalancedBuffer:
        extra[cls] = [
            (
                ValueError,
                r"state's seen_classes must hold every stored class: no \[6\]",
                {**state, "seen_classes": state["seen_classes"][:-1]},
            ),
            (
                ValueError,
                r"state's seen_classes must be a list of distinct ints >= 0, got \[-1\]",
                {**state, "seen_classes": [-1]},
            ),
        ]
    buf = other_buffer(cls, digits)
    before, view = buf.state_dict(), buf.buffer
    for error, match, wrong in [*inconsistent_states(state), *extra[cls]]:
        with pytest.raises(error, match=match):
            buf.load_state_dict(wrong)
        assert_same_state(before, buf.state_dict(), match)
        assert buf.buffer is view, match
    buf.load_state_dict(state)  # the state itself is fine
    assert_same_state(state, buf.state_dict())


def old_state(state: dict, version: int) -> dict:
    """``state`` as an older format wrote it: version 2 before the extras change (no slots'
    ``extras``), version 1 before per-sample experiences (no ``experience``, no slots' ``experiences``)."""
    slots = {k: v for k, v in state["slots"].items() if k != "extras"}
    if version == 2:
        return {**state, "version": 2, "slots": slots}
    fields = {k: v for k, v in slots["fields"].items() if k != "experiences"}
    old = {k: v for k, v in state.items() if k != "experience"}
    return {**old, "version": 1, "slots": {**slots, "fields": fields}}


@pytest.mark.parametrize("cls", BUFFERS)
def test_older_state_versions_migrate_or_are_refused_naming_both_versions(cls, digits):
    ref = small_filled(cls, digits)
    state = ref.state_dict()
    assert state["version"] == cls.STATE_VERSION == 3
    buf = other_buffer(cls, digits)
    buf.load_state_dict(old_state(state, 2))  # before the extras change: no extras
    assert_same_state(state, buf.state_dict())
    assert buf.extra_names == ()
    buf = other_buffer(cls, digits)
    before = buf.state_dict()
    refused = [
        (
            old_state(state, 1),
            rf"state has version 1; this {cls.__name__} reads version 3 \(and migrates version 2\)"
            r": version 1 states do not record each stored sample's experience",
        ),
        (
            {**state, "version": 4},
            rf"state has version 4; this {cls.__name__} reads version 3 \(and migrates version 2\)",
        ),
        ({**state, "version": "3"}, r"state has version '3'; this .* reads version 3"),
    ]
    for wrong, match in refused:
        with pytest.raises(ValueError, match=match):
            buf.load_state_dict(wrong)
        assert_same_state(before, buf.state_dict(), match)


def pickle_as(buf, monkeypatch, **patches) -> bytes:
    """``pickle.dumps(buf)`` with attributes of the buffer's class patched (an older or another
    format) while it pickles."""
    with monkeypatch.context() as patch:
        for name, value in patches.items():
            patch.setattr(type(buf), name, value)
        return pickle.dumps(buf)


@pytest.mark.parametrize("cls", BUFFERS)
def test_unpickling_checks_the_kind_version_and_consistency_as_load_does(cls, digits, monkeypatch):
    buf = small_filled(cls, digits)
    clone, state = pickle.loads(pickle.dumps((buf, buf.state_dict())))  # one pickle: the same dataset copies
    assert_same_state(state, clone.state_dict())
    name = cls.__name__
    with pytest.raises(ValueError, match=rf"pickled {name} has version 99; this {name} reads version 3"):
        pickle.loads(pickle_as(buf, monkeypatch, STATE_VERSION=99))
    with pytest.raises(
        ValueError, match=rf"pickled {name} is a 'other' buffer's state; a {name} loads '{cls.STATE_KIND}'"
    ):
        pickle.loads(pickle_as(buf, monkeypatch, STATE_KIND="other"))
    corrupt = [
        (ValueError, r"pickled .*'s n_seen must be an int >= 18", lambda b: setattr(b, "n_seen", -1)),
        (TypeError, r"pickled .*'s max_size must be a positive int", lambda b: setattr(b, "max_size", 2.5)),
        (ValueError, r"pickled .*'s max_size \(5\) is below the 18 samples", lambda b: setattr(b, "max_size", 5)),
        (ValueError, r"pickled .*'s experience must be an int >= 0", lambda b: setattr(b, "experience", -1)),
        (ValueError, r"slots targets must hold values >= 0, got -1", lambda b: b._slots.targets.__setitem__(0, -1)),
        (ValueError, r"slots index holds 100000 for source 0", lambda b: b._slots.index.__setitem__(0, 10**5)),
    ]
    for error, match, corrupting in corrupt:
        bad = copy.deepcopy(buf)
        corrupting(bad)
        blob = pickle.dumps(bad)
        with pytest.raises(error, match=match):
            pickle.loads(blob)


# ---- an interrupt at a transaction's exit (issue 23, item 5) --------------------------------
EXIT_POINTS = {  # where an update's changes are committed -> (object patched, attribute)
    "store transaction exit": (SourceTable, "unmark"),
    "buffer transaction exit": (SlotStore, "commit"),
}


@pytest.mark.parametrize("path", list(OFFERS))
@pytest.mark.parametrize("cls", BUFFERS)
def test_an_interrupt_at_a_transaction_exit_leaves_the_buffer_exactly_as_before(cls, path, digits, monkeypatch):
    """The store's and the buffer's changes are one transaction: an interrupt once the store
    has committed but before the update returned undoes both (a greedy buffer whose counters were
    put back over an updated store raised KeyError on ``buffer``)."""
    for point, (owner, name) in EXIT_POINTS.items():
        buf = filled(cls, digits)
        if path == "load":
            filled(cls, digits)  # draws of the global RNG, as the other calls' arguments make them
        before, view = buf.state_dict(), contents(buf)
        call = partial(OFFERS[path], buf, digits)
        assert with_fault(monkeypatch, owner, name, call, KeyboardInterrupt), point
        assert_restored(cls, buf, before, view, digits, f"{path}/{point}")


# ---- samples of another dtype (issue 23, item 7) -------------------------------------------
@pytest.mark.parametrize("cls", BUFFERS)
def test_samples_of_another_dtype_than_those_held_are_refused_before_any_change(cls, digits):
    """Dataset samples and tensor rows of different dtypes could not be collated into one
    minibatch: refused like a shape mismatch, naming both dtypes, before any change."""
    data = digits.train_stream[0].dataset  # float32 samples
    x = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    data64 = _make_taskaware_tensor_classification_dataset(x.double(), torch.arange(6))

    def holding(offer):
        buf = cls(20, seed=0)
        offer(buf)
        return buf

    cases = [
        (
            holding(lambda b: b.update_from_dataset(data, range(10))),
            lambda b: b.update_from_batch(x.double(), [0, 1, 2, 3, 4, 5]),
            r"x samples have dtype torch.float64, but this buffer holds dataset samples of dtype torch.float32",
        ),
        (
            holding(lambda b: b.update_from_dataset(data64)),
            lambda b: b.update_from_batch(x, [0, 1, 2, 3, 4, 5]),
            r"x samples have dtype torch.float32, but this buffer holds dataset samples of dtype torch.float64",
        ),
        (
            holding(lambda b: b.update_from_batch(x, [0, 1, 2, 3, 4, 5])),
            lambda b: b.update_from_dataset(data64),
            r"dataset samples have dtype torch.float64, but this buffer holds tensor samples of dtype torch.float32",
        ),
        (
            holding(lambda b: b.update_from_batch(x.double(), [0, 1, 2, 3, 4, 5])),
            lambda b: b.update_from_dataset(data, range(10)),
            r"dataset samples have dtype torch.float32, but this buffer holds tensor samples of dtype torch.float64",
        ),
    ]
    for buf, offer, match in cases:
        state = buf.state_dict()
        with pytest.raises(ValueError, match=match):
            offer(buf)
        assert_same_state(state, buf.state_dict(), match)
    same = holding(lambda b: b.update_from_dataset(data64))  # the same dtype is fine, either way
    same.update_from_batch(x.double(), [0, 1, 2, 3, 4, 5])
    same.update_from_dataset(data64)
    assert len(same) == 18
