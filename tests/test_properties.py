"""Hypothesis property tests of the buffers under random update sequences and resizes."""

from __future__ import annotations

import math

import torch
from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset
from hypothesis import given, settings
from hypothesis import strategies as st

from avalanche_replay_ext import ClassBalancedReservoirBuffer, GreedyClassBalancedBuffer, ReservoirSamplingBuffer

CLASSES = st.integers(0, 4)
# an update: (how, the offered samples' classes); a resize: ("resize", new size)
UPDATE = st.tuples(st.sampled_from(["dataset", "indices", "batch"]), st.lists(CLASSES, max_size=25))
OPS = st.lists(st.one_of(UPDATE, st.tuples(st.just("resize"), st.integers(1, 30))), max_size=12)
BUFFERS = st.sampled_from([ReservoirSamplingBuffer, GreedyClassBalancedBuffer, ClassBalancedReservoirBuffer])


class ReferenceReservoir:
    """The reservoir by its definition: the ``max_size`` largest of the uniform keys drawn so far,
    with the same generator (one float64 key per offered sample, in offer order)."""

    def __init__(self, max_size: int, seed: int) -> None:
        self.max_size, self.kept = max_size, []  # (key, id)
        self.generator = torch.Generator().manual_seed(seed)

    def apply(self, op, ids: torch.Tensor) -> None:
        if op[0] == "resize":
            self.max_size = op[1]
        else:
            keys = torch.rand(len(ids), generator=self.generator, dtype=torch.float64).tolist()
            self.kept += zip(keys, ids.tolist(), strict=True)
        self.kept = sorted(self.kept, reverse=True)[: self.max_size]

    def ids(self) -> set[int]:
        return {i for _, i in self.kept}


class Stream:
    """Hands out fresh ids; datasets and batches whose class targets are the given classes."""

    def __init__(self) -> None:
        self.next_id = 0

    def ids(self, n: int) -> torch.Tensor:
        ids = torch.arange(self.next_id, self.next_id + n)  # a sample's single feature is its id
        self.next_id += n
        return ids

    def apply(self, buf, op, ids: torch.Tensor) -> None:
        how, arg = op
        if how == "resize":
            buf.resize(None, arg)
            return
        y = torch.tensor(arg, dtype=torch.long)
        x = ids.float().unsqueeze(1)
        if how == "batch":
            buf.update_from_batch(x, y)
            return
        # a dataset with 3 extra samples in front, offered whole or through indices
        pad = torch.full((3,), -1.0).unsqueeze(1)
        data = _make_taskaware_tensor_classification_dataset(
            torch.cat([pad, x]), torch.cat([torch.zeros(3, dtype=torch.long), y])
        )
        if how == "dataset":
            buf.update_from_dataset(data.subset(range(3, 3 + len(y))))
        else:
            buf.update_from_dataset(data, torch.arange(3, 3 + len(y)))


def contents(buf) -> list[tuple[int, int]]:
    data = buf.buffer
    return [(int(data[i][1]), int(data[i][0].item())) for i in range(len(data))]


def class_counts(buf) -> dict[int, int]:
    counts: dict[int, int] = {}
    for y, _ in contents(buf):
        counts[y] = counts.get(y, 0) + 1
    return counts


@settings(max_examples=60, deadline=None)
@given(cls=BUFFERS, max_size=st.integers(1, 20), seed=st.integers(0, 2**31), ops=OPS)
def test_size_balance_and_state_round_trip_hold_through_any_sequence(cls, max_size, seed, ops):
    buf, stream, grown = cls(max_size, seed=seed), Stream(), False
    reference = ReferenceReservoir(max_size, seed)
    for op in ops:
        before, size0, counts0 = buf.max_size, len(buf.buffer), class_counts(buf)
        n_classes0 = len(getattr(buf, "seen_classes", ()))
        # a copy made through state_dict at this point must continue exactly like the original
        twin = cls(1, seed=seed + 1)
        twin.load_state_dict(buf.state_dict())
        assert contents(twin) == contents(buf)
        ids = stream.ids(0 if op[0] == "resize" else len(op[1]))
        stream.apply(buf, op, ids)
        stream.apply(twin, op, ids)
        assert contents(twin) == contents(buf) and twin.n_seen == buf.n_seen
        if cls is ReservoirSamplingBuffer:  # exactly the samples with the largest keys
            reference.apply(op, ids)
            assert {i for _, i in contents(buf)} == reference.ids()

        size = len(buf.buffer)
        assert size <= buf.max_size
        if op[0] == "resize":
            assert buf.max_size == op[1] and size == min(op[1], size0)
            grown |= op[1] > before
            continue
        assert size == min(buf.max_size, size0 + len(op[1]))  # fills while there is room, then stays full
        if cls is ReservoirSamplingBuffer and not grown:
            assert size == min(buf.max_size, buf.n_seen)
        if cls is GreedyClassBalancedBuffer and size0 == buf.max_size:
            counts = class_counts(buf)
            # full: a class grows only while below its share, so never past ceil(max_size / classes seen)
            for c, n in counts.items():
                if n > counts0.get(c, 0):
                    assert n <= math.ceil(buf.max_size / n_classes0), (c, n, counts0)
            assert max(counts.values()) <= max(counts0.values())  # the largest class never grows


@settings(max_examples=40, deadline=None)
@given(cls=BUFFERS, max_size=st.integers(1, 20), seed=st.integers(0, 2**31), ops=OPS)
def test_a_failing_update_changes_nothing(cls, max_size, seed, ops):
    """Offers with a bad label in any position raise and leave the buffer as it was."""
    buf, stream = cls(max_size, seed=seed), Stream()
    for op in ops:
        stream.apply(buf, op, stream.ids(0 if op[0] == "resize" else len(op[1])))
    state = buf.state_dict()
    snapshot = contents(buf), buf.n_seen, state["generator"].clone()
    x = torch.zeros(3, 1)
    for bad in ([1.5, 0, 2], [0, 1.5, 2], [0, 1, 2.5], [0, 1]):  # a non-integer label anywhere; one too few
        try:
            buf.update_from_batch(x, torch.tensor(bad))
        except (TypeError, ValueError):
            pass
        else:
            raise AssertionError(f"labels {bad} were accepted")
        assert (contents(buf), buf.n_seen) == snapshot[:2]
        assert torch.equal(buf.state_dict()["generator"], snapshot[2])
