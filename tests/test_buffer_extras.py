"""Per-sample extras (Dark Experience Replay's logits): each stored sample keeps the rows offered
with it, through replacements, resizes, states, pickles and failed updates; bad extras raise
before any change."""

from __future__ import annotations

import copy
import io
import pickle
from functools import partial

import pytest
import torch
from helpers import assert_same_state, listing, with_fault
from torch.utils.data import DataLoader

from avalanche_replay_ext import ClassBalancedReservoirBuffer, GreedyClassBalancedBuffer, ReservoirSamplingBuffer
from avalanche_replay_ext.buffers import SlotBuffer
from avalanche_replay_ext.buffers._slots import SlotStore

BUFFERS = [ReservoirSamplingBuffer, GreedyClassBalancedBuffer, ClassBalancedReservoirBuffer]
MODES = ["indices", "batch", "mixed"]


def features(x: torch.Tensor, y: torch.Tensor, width: int) -> torch.Tensor:
    """The extras row each sample carries, computed from its input and class, so it names the
    sample: its pixel sum, a position-weighted sum, its class, then its first pixels."""
    flat = x.reshape(len(x), -1).double()
    cols = [flat.sum(1), (flat * torch.arange(1, flat.shape[1] + 1)).sum(1), y.double()]
    cols += [flat[:, j] for j in range(width - 3)]
    return torch.stack(cols[:width], 1).float()


def experience_tensors(digits) -> list[tuple]:
    """Each training experience's dataset with all its inputs and classes as tensors."""
    out = []
    for exp in digits.train_stream:
        x, y, _ = next(iter(DataLoader(exp.dataset, batch_size=len(exp.dataset))))
        out.append((exp.dataset, x, y))
    return out


def steps(digits, mode: str, widths=(4, 4, 4, 4, 4), seed: int = 0) -> list[tuple]:
    """A stream of small minibatches (experience, how offered, indices, width): every
    experience in random order, as index subsets of its dataset, as tensor minibatches, or
    alternating between the two."""
    gen, out = torch.Generator().manual_seed(seed), []
    for e, exp in enumerate(digits.train_stream):
        order = torch.randperm(len(exp.dataset), generator=gen)
        for k, start in enumerate(range(0, len(order), 10)):
            how = mode if mode != "mixed" else ("indices", "batch")[k % 2]
            out.append((e, how, order[start : start + 10], widths[e]))
    return out


def feed(buf, data: list[tuple], stream: list[tuple]) -> None:
    """Offer ``stream`` (from :func:`steps`) to ``buf``, each sample with its features as logits."""
    for e, how, idx, width in stream:
        dataset, x, y = data[e]
        extras = {"logits": features(x[idx], y[idx], width)}
        if how == "indices":
            buf.update_from_dataset(dataset, idx, experience=e, extras=extras)
        else:
            buf.update_from_batch(x[idx], y[idx], experience=e, extras=extras)


def assert_aligned(buf, width: int = 4) -> torch.Tensor:
    """Every stored sample's logits row is the one offered with it (NaN beyond its own width:
    experiences offered with fewer units are told apart by the widths of their rows); returns them."""
    data = buf.buffer
    x, y, _ = next(iter(DataLoader(data, batch_size=len(data))))
    stored = buf.stored_extras("logits")
    assert stored.shape == (len(data), width) and stored.dtype == torch.float32 and not stored.requires_grad
    expected = features(x, y, width)
    known = ~stored.isnan()
    assert torch.equal(stored[known], expected[known])
    assert known[:, : min(width, 4)].all()  # every row has at least the narrowest width's units
    assert buf.extra_names == ("logits",)
    return stored


def same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal tensors, NaN where the other has NaN included."""
    return (
        a.dtype == b.dtype
        and a.shape == b.shape
        and torch.equal(a.isnan(), b.isnan())
        and torch.equal(a.nan_to_num(), b.nan_to_num())
    )


@pytest.fixture(scope="module")
def data(digits):
    return experience_tensors(digits)


# ---- alignment through the stream -----------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", BUFFERS)
def test_every_stored_sample_keeps_the_extras_offered_with_it(cls, mode, digits, data):
    buf = cls(60, seed=0)
    stream = steps(digits, mode)
    for e in range(5):
        feed(buf, data, [s for s in stream if s[0] == e])
        assert len(buf.buffer) == 60
        assert_aligned(buf)
    assert buf.n_seen == sum(len(d) for d, _, _ in data)
    if cls is not GreedyClassBalancedBuffer:  # many replacements since the memory filled
        assert set(buf.stored_groups("experience").tolist()) >= {3, 4}


@pytest.mark.parametrize("cls", BUFFERS)
def test_a_whole_dataset_offer_and_post_adapt(cls, digits, data):
    buf = cls(50, seed=0)
    dataset, x, y = data[0]
    buf.update_from_dataset(dataset, extras={"logits": features(x, y, 4)})  # indices=None: one row per sample
    assert_aligned(buf)
    plain = cls(50, seed=0)
    plain.post_adapt(None, digits.train_stream[0])  # no extras: none held
    assert plain.extra_names == () and plain.state_dict()["slots"]["extras"] == {}
    assert listing(plain.buffer) == listing(buf.buffer)  # extras change nothing else
    with pytest.raises(ValueError, match=r"extras give the names \[\], but the samples this buffer holds carry"):
        buf.post_adapt(None, digits.train_stream[1])


# ---- resize, state, pickle ------------------------------------------------------------------
@pytest.mark.parametrize("cls", BUFFERS)
def test_resize_keeps_extras_aligned(cls, digits, data):
    buf = cls(60, seed=0)
    stream = steps(digits, "mixed")
    feed(buf, data, stream[:80])
    buf.resize(None, 25)
    assert len(buf.buffer) == 25
    assert_aligned(buf)
    buf.resize(None, 90)
    assert len(buf.buffer) == 25
    assert_aligned(buf)
    feed(buf, data, stream[80:])
    assert len(buf.buffer) == 90
    assert_aligned(buf)


@pytest.mark.parametrize("cls", BUFFERS)
def test_state_dict_pickle_and_deepcopy_keep_extras_and_resume_identically(cls, digits, data):
    stream = steps(digits, "mixed", widths=(4, 4, 6, 6, 6))
    ref = cls(40, seed=0)
    feed(ref, data, stream[:90])
    state = ref.state_dict()
    assert list(state["slots"]["extras"]) == ["logits"] and state["version"] == 3
    twin = cls(5, seed=999)  # another size and seed: all comes from the state
    twin.load_state_dict(state)
    saved = io.BytesIO()
    torch.save(state, saved)
    saved.seek(0)
    resumed = cls(5, seed=999)
    resumed.load_state_dict(torch.load(saved, weights_only=False))
    clones = [twin, resumed, pickle.loads(pickle.dumps(ref)), copy.deepcopy(ref)]
    for buf in clones:
        assert same(buf.stored_extras("logits"), ref.stored_extras("logits"))
    for buf in [ref, *clones]:
        feed(buf, data, stream[90:])
    stored = assert_aligned(ref, width=6)
    assert_same_state(ref.state_dict(), twin.state_dict())  # the same datasets, by identity
    for buf in clones:
        assert listing(buf.buffer) == listing(ref.buffer) and buf.n_seen == ref.n_seen
        assert same(buf.stored_extras("logits"), stored)


def _without(mapping: dict, names) -> dict:
    return {k: v for k, v in mapping.items() if k not in names}


def without_extras(slots: dict) -> dict:
    return _without(slots, ("extras",))


def without_datasets(state: dict) -> dict:
    """``state`` without the datasets its sources refer to (a pickled copy holds copies of them)."""
    return {**state, "slots": {**state["slots"], "sources": {"resolved": state["slots"]["sources"]["resolved"]}}}


@pytest.mark.parametrize("cls", BUFFERS)
def test_a_state_or_pickle_from_before_the_extras_change_loads_as_no_extras(cls, digits, data, monkeypatch):
    """States written before the extras existed (version 2, no slots' ``extras``) and pickles of
    that time (the buffer's attributes, its slots pickled as their state, no version) load as
    buffers whose samples carry no extras, and continue exactly as the buffer they were taken from."""
    ref = cls(60, seed=0)
    for e in range(3):
        ref.post_adapt(None, digits.train_stream[e])
    _, x, y = data[3]
    ref.update_from_batch(x[:30], y[:30], experience=3)
    state = ref.state_dict()
    assert state["slots"]["extras"] == {}
    old = {**state, "version": 2, "slots": without_extras(state["slots"])}
    loaded = cls(5, seed=9)
    loaded.load_state_dict(old)
    assert_same_state(state, loaded.state_dict())
    with monkeypatch.context() as patch:  # the pickle methods of that time
        patch.setattr(SlotStore, "__getstate__", lambda self: without_extras(self.state_dict()))
        # the attributes of that time: none of the derived ones added since (the reservoir's key heap)
        patch.setattr(SlotBuffer, "__getstate__", lambda self: _without(self.__dict__, self._DERIVED))
        blob = pickle.dumps((ref, state))  # one pickle: the state holds the same dataset copies
    unpickled, copied = pickle.loads(blob)
    assert_same_state(copied, unpickled.state_dict())
    for buf in (ref, loaded, unpickled):
        buf.post_adapt(None, digits.train_stream[4])
        buf.update_from_batch(x[30:60], y[30:60])  # the samples held carry no extras: none are offered
    assert_same_state(ref.state_dict(), loaded.state_dict())
    assert_same_state(without_datasets(ref.state_dict()), without_datasets(unpickled.state_dict()))
    for buf in (loaded, unpickled):
        assert listing(buf.buffer) == listing(ref.buffer) and buf.extra_names == ()


# ---- widths that grow -----------------------------------------------------------------------
@pytest.mark.parametrize("cls", BUFFERS)
def test_rows_are_padded_with_nan_to_the_widest_width(cls, digits, data):
    buf = cls(60, seed=0)
    stream = steps(digits, "mixed", widths=(4, 4, 6, 6, 4))  # a narrower width again at the end
    feed(buf, data, [s for s in stream if s[0] < 2])
    assert assert_aligned(buf, width=4).shape[1] == 4
    feed(buf, data, stream)
    stored = assert_aligned(buf, width=6)
    narrow = torch.isin(buf.stored_groups("experience"), torch.tensor([0, 1, 4]))
    assert narrow.any() and (~narrow).any()
    assert stored[narrow, 4:].isnan().all()  # old and narrower rows: NaN beyond their own units
    assert not stored[~narrow].isnan().any()  # wide rows: full
    buf.resize(None, 30)
    assert torch.equal(buf.stored_extras("logits").isnan(), assert_aligned(buf, width=6).isnan())


# ---- bad input raises before any change -----------------------------------------------------
def bad_extras_cases(x: torch.Tensor, y: torch.Tensor) -> list[tuple]:
    """(error, message, extras) for a minibatch of ``len(x)`` samples into a buffer holding
    single-precision ``logits`` rows."""
    good = features(x, y, 4)
    return [
        (TypeError, r"extras must be None or a dict \{name: tensor\}, got list", [good]),
        (TypeError, r"extras\['logits'\] must be a tensor, got list", {"logits": good.tolist()}),
        (TypeError, r"extras names must be str, got 0", {0: good}),
        (ValueError, r"extras\['logits'\] has 9 rows, expected 10: one per sample offered", {"logits": good[:9]}),
        (ValueError, r"extras\['logits'\] must be 2-D .* got shape \(10,\)", {"logits": good[:, 0]}),
        (ValueError, r"extras\['logits'\] must be 2-D .* got shape \(10, 4, 1\)", {"logits": good[..., None]}),
        (
            TypeError,
            r"extras\['logits'\] must be a floating point tensor, got dtype torch.int64",
            {"logits": y[:, None]},
        ),
        (
            ValueError,
            r"extras\['logits'\] has dtype torch.float64, but this buffer stores 'logits' as torch.float32",
            {"logits": good.double()},
        ),
        (
            ValueError,
            r"extras give the names \['feats'\], but the samples this buffer holds carry \['logits'\]",
            {"feats": good},
        ),
        (
            ValueError,
            r"extras give the names \['feats', 'logits'\], but the samples this buffer holds carry \['logits'\]",
            {"logits": good, "feats": good},
        ),
        (ValueError, r"extras give the names \[\], but the samples this buffer holds carry \['logits'\]", None),
    ]


@pytest.mark.parametrize("cls", BUFFERS)
def test_bad_extras_raise_and_change_nothing(cls, digits, data):
    buf = cls(30, seed=0)
    feed(buf, data, steps(digits, "mixed")[:20])
    state = buf.state_dict()
    dataset, x, y = data[1]
    idx = torch.arange(10)
    for error, match, extras in bad_extras_cases(x[idx], y[idx]):
        with pytest.raises(error, match=match):
            buf.update_from_dataset(dataset, idx, extras=extras)
        with pytest.raises(error, match=match):
            buf.update_from_batch(x[idx], y[idx], extras=extras)
        assert_same_state(state, buf.state_dict(), match)
    with pytest.raises(ValueError, match=r"extras\['logits'\] has 9 rows, expected 10"):
        buf.update_from_dataset(dataset.subset(range(10)), extras={"logits": features(x[:9], y[:9], 4)})
    with pytest.raises(ValueError, match=r"extras\['logits'\] has 1 rows, expected 0"):
        buf.update_from_batch(x[:0], y[:0], extras={"logits": features(x[:1], y[:1], 4)})  # checked when empty too
    assert_same_state(state, buf.state_dict())


@pytest.mark.parametrize("cls", BUFFERS)
def test_an_empty_buffer_takes_any_names_and_dtypes(cls, data):
    dataset, x, y = data[0]
    for extras in (
        None,
        {},
        {"a": x[:10, 0, 0].double()},
        {"a": x[:10, 0, 0, :2].half(), "b": x[:10, 0, 0].bfloat16()},
    ):
        buf = cls(30, seed=0)
        buf.update_from_dataset(dataset, range(10), extras=extras)
        assert buf.extra_names == tuple(sorted(extras or {}))
        for name in buf.extra_names:
            assert buf.stored_extras(name).dtype == extras[name].dtype
            assert torch.equal(buf.stored_extras(name), extras[name][buf._view_slots()])


@pytest.mark.parametrize("cls", BUFFERS)
def test_extras_names_cannot_reach_the_bookkeeping(cls, data):
    dataset, x, y = data[0]
    names = ["targets", "tasks", "source", "index", "experiences", "keys", "extras", "size"]
    buf, plain = cls(20, seed=0), cls(20, seed=0)
    for start in range(0, 60, 10):
        idx = torch.arange(start, start + 10)
        buf.update_from_dataset(dataset, idx, extras={n: torch.full((10, 1), -7.0) for n in names})
        plain.update_from_dataset(dataset, idx)
    assert buf.extra_names == tuple(sorted(names))
    state, plain_state = buf.state_dict(), plain.state_dict()
    assert state["slots"]["extras"].keys() == set(names)
    state["slots"]["extras"] = {}
    assert_same_state(plain_state, state)  # everything but the extras is what a plain buffer holds
    assert (buf.stored_extras("targets") == -7.0).all()


# ---- failures inside an update ------------------------------------------------------------
FAULTS = {  # internal step -> (object patched, attribute); None: the buffer class
    "draw": (None, "_offer"),
    "extras write": (SlotStore, "_write_extras"),
    "extras widening": (SlotStore, "_fit_extras"),
    "slot write": (SlotStore, "_assign"),
    "slot selection": (SlotStore, "keep"),
}
UPDATES = {  # what fails: 100 samples of experience 2 with rows of a width, or a shrink
    "indices": lambda buf, data: feed(buf, data, [(2, "indices", torch.arange(0, 200, 2), 4)]),
    "batch": lambda buf, data: feed(buf, data, [(2, "batch", torch.arange(0, 200, 2), 4)]),
    "wider rows": lambda buf, data: feed(buf, data, [(2, "batch", torch.arange(0, 200, 2), 6)]),
    "narrower rows": lambda buf, data: feed(buf, data, [(2, "indices", torch.arange(0, 200, 2), 3)]),
    "resize": lambda buf, data: buf.resize(None, 12),
}


@pytest.mark.parametrize("path", list(UPDATES))
@pytest.mark.parametrize("cls", BUFFERS)
def test_a_failure_inside_an_update_rolls_the_extras_back(cls, path, digits, data, monkeypatch):
    """A fault right after any step of an update leaves the state and the extras as they were,
    and the buffer then continues like an untouched twin."""
    stream, reached = steps(digits, "mixed")[:40], []
    for fault, (owner, name) in FAULTS.items():
        buf = cls(30, seed=0)
        feed(buf, data, stream)
        before, extras_before = buf.state_dict(), buf.stored_extras("logits")
        owner = owner or cls
        if not with_fault(monkeypatch, owner, name, partial(UPDATES[path], buf, data)):
            continue  # this path does not go through that step
        reached.append(fault)
        assert_same_state(before, buf.state_dict(), f"{path}/{fault}")
        assert same(buf.stored_extras("logits"), extras_before), f"{path}/{fault}"
        twin = cls(30, seed=0)
        feed(twin, data, stream)
        for b in (buf, twin):
            UPDATES["wider rows"](b, data)
        assert_same_state(twin.state_dict(), buf.state_dict(), f"{path}/{fault} then")
        assert_aligned(buf, width=6)
    expected = {"resize": ["slot selection"], "indices": ["draw", "extras write", "slot write"]}
    expected["batch"] = expected["indices"]
    expected["wider rows"] = expected["narrower rows"] = ["draw", "extras write", "extras widening", "slot write"]
    assert reached == expected[path]


# ---- reads --------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", BUFFERS)
def test_stored_extras_at_positions_and_unknown_names(cls, digits, data):
    buf = cls(40, seed=0)
    feed(buf, data, steps(digits, "mixed")[:30])
    full = buf.stored_extras("logits")
    positions = torch.tensor([5, 0, 39, 5, 17])
    for form in (positions, positions.tolist(), positions.numpy(), tuple(positions.tolist())):
        assert torch.equal(buf.stored_extras("logits", form), full[positions])
    assert buf.stored_extras("logits", []).shape == (0, 4)
    for bad in ([40], [-1]):
        with pytest.raises(IndexError, match=r"positions must lie in \[0, 40\)"):
            buf.stored_extras("logits", bad)
    with pytest.raises(KeyError, match=r"no extras named 'feats': the stored samples carry \['logits'\]"):
        buf.stored_extras("feats")
    full[:] = 0  # a copy: reading again is unchanged
    assert torch.equal(buf.stored_extras("logits"), assert_aligned(buf))
    empty = cls(5, seed=0)
    assert empty.extra_names == ()
    with pytest.raises(KeyError, match=r"no extras named 'logits': the stored samples carry \[\]"):
        empty.stored_extras("logits")


@pytest.mark.parametrize("cls", BUFFERS)
def test_offered_extras_are_copied_detached_to_the_cpu(cls, data):
    dataset, x, y = data[0]
    weights = torch.ones(4, requires_grad=True)
    logits = features(x[:10], y[:10], 4).requires_grad_()
    buf = cls(20, seed=0)
    buf.update_from_dataset(dataset, range(10), extras={"logits": logits})
    buf.update_from_batch(x[10:20], y[10:20], extras={"logits": features(x[10:20], y[10:20], 4) * weights})
    with torch.no_grad():
        logits += 1  # the offered tensor changes afterwards; the stored rows do not
    assert_aligned(buf)
    assert buf.stored_extras("logits").device.type == "cpu" and buf.stored_extras("logits").grad_fn is None


@pytest.mark.parametrize("cls", BUFFERS)
def test_extras_rows_are_allocated_as_slots_fill(cls, data):
    dataset, x, y = data[0]
    buf = cls(10**12, seed=0)
    for start in range(0, 100, 10):
        idx = torch.arange(start, start + 10)
        buf.update_from_dataset(dataset, idx, extras={"logits": features(x[idx], y[idx], 4)})
    assert len(buf.buffer) == 100 and 100 <= len(buf._slots.extras["logits"]) < 400
    assert_aligned(buf)


@pytest.mark.parametrize("cls", BUFFERS)
def test_a_state_without_valid_extras_is_refused(cls, digits, data):
    buf = cls(20, seed=0)
    feed(buf, data, steps(digits, "mixed")[:5])
    state = buf.state_dict()
    slots = state["slots"]
    wrong = [
        ({k: v for k, v in slots.items() if k != "extras"}, "state's slots extras are missing"),
        ({**slots, "extras": [1]}, "state's slots extras are a list"),
        ({**slots, "extras": {"logits": slots["extras"]["logits"][:3]}}, r"of shape \(3, 4\) for 20 samples"),
        ({**slots, "extras": {"logits": slots["extras"]["logits"].long()}}, "hold 'logits' -> Tensor"),
    ]
    for bad, match in wrong:
        with pytest.raises(ValueError, match=match):
            buf.load_state_dict({**state, "slots": bad})
        assert_same_state(state, buf.state_dict(), match)
    assert_aligned(buf)
