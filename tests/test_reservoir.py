"""ReservoirSamplingBuffer: uniformity, sizes, Avalanche drop-in, resize, depth, seeds, state."""

from __future__ import annotations

import copy
import io
import pickle
from types import SimpleNamespace

import pytest
import torch
from avalanche.benchmarks.utils.flat_data import _flatdata_depth
from avalanche.training.plugins import ReplayPlugin
from helpers import id_dataset, make_naive, stream_accuracy
from scipy import stats

from avalanche_replay_ext import ReservoirSamplingBuffer

N, K, TRIALS = 60, 15, 1000  # stream length, buffer slots, independent seeded runs per mode


def chunk_sizes(gen: torch.Generator, n: int, low: int, high: int) -> list[int]:
    """Random chunk sizes in [low, high] summing to n."""
    sizes = []
    while sum(sizes) < n:
        sizes.append(min(int(torch.randint(low, high + 1, (1,), generator=gen)), n - sum(sizes)))
    return sizes


def feed(buf: ReservoirSamplingBuffer, mode: str, sizes: list[int], checkpoint: int) -> list[torch.Tensor]:
    """Stream ids 0..N-1 into ``buf`` in chunks of ``sizes``; return the ids held when
    ``n_seen == checkpoint`` and at the end."""
    ids = torch.arange(N)
    whole = id_dataset(ids)
    held, start = [], 0
    for size in sizes:
        chunk = ids[start : start + size]
        path = ["indices", "batches"][len(held) % 2] if mode == "mixed" else mode  # mixed: switch at n_seen=30
        if path == "experiences":
            buf.post_adapt(None, SimpleNamespace(dataset=id_dataset(chunk)))
        elif path == "indices":
            buf.update_from_dataset(whole, chunk)
        else:
            buf.update_from_batch(chunk.float().unsqueeze(1), chunk)
        start += size
        if start == checkpoint:
            held.append(torch.as_tensor(list(buf.buffer.targets)))
    held.append(torch.as_tensor(list(buf.buffer.targets)))
    return held


@pytest.mark.parametrize("mode", ["experiences", "indices", "batches", "mixed"])
def test_every_sample_is_kept_with_probability_k_over_n(mode):
    """Inclusion counts over TRIALS seeded runs match Binomial(TRIALS, K / n_seen) for every id.

    Bounds: each id's count within the two-sided 1e-4 / N binomial quantiles (Bonferroni over ids,
    so a correct buffer fails with probability < 1e-4), and the chi-square statistic of all counts
    below its 0.9999 quantile with N - 1 degrees of freedom (conservative: slot counts are
    negatively correlated). Checked at n_seen = 30 (p = 1/2) and at the end (p = 1/4).
    """
    gen = torch.Generator().manual_seed(123)
    if mode == "experiences":  # a few large datasets, the experience path
        sizes = [20, 10, 30]
    else:  # many chunks of 1-10 samples, the same in every trial, one boundary at n_seen = 30
        sizes = chunk_sizes(gen, 30, 1, 10) + chunk_sizes(gen, N - 30, 1, 10)
    counts = torch.zeros(2, N)
    for trial in range(TRIALS):
        buf = ReservoirSamplingBuffer(K, seed=trial)
        for row, held in enumerate(feed(buf, mode, sizes, checkpoint=30)):
            counts[row, held] += 1
            assert len(held) == K and len(set(held.tolist())) == K
    for row, n_seen in [(0, 30), (1, N)]:
        observed = counts[row, :n_seen].numpy()
        p = K / n_seen
        low, high = stats.binom.ppf([1e-4 / N / 2, 1 - 1e-4 / N / 2], TRIALS, p)
        assert observed.min() >= low and observed.max() <= high, (mode, n_seen, observed)
        expected = TRIALS * p
        chi2 = (((observed - expected) ** 2) / expected).sum()
        assert chi2 < stats.chi2.ppf(0.9999, n_seen - 1), (mode, n_seen, chi2)
        assert counts[row, n_seen:].sum() == 0  # nothing from the future


def test_keeps_everything_until_full_then_stays_full():
    gen = torch.Generator().manual_seed(0)
    buf = ReservoirSamplingBuffer(25, seed=0)
    start = 0
    for size in chunk_sizes(gen, 200, 0, 9):  # includes empty chunks
        buf.update_from_batch(torch.arange(start, start + size).float().unsqueeze(1), torch.arange(start, start + size))
        start += size
        held = sorted(int(v) for v in buf.buffer.targets) if len(buf.buffer) else []
        assert len(held) == min(25, start) and buf.n_seen == start
        if start <= 25:
            assert held == list(range(start))


def test_seed_tutorial_cells_print_30_each_time(digits, capsys):
    """The seed's buffer cells: 5 experiences into a 30-slot buffer through ``update(strategy)``."""
    storage_p = ReservoirSamplingBuffer(max_size=30, seed=0)
    print(f"Max buffer size: {storage_p.max_size}, current size: {len(storage_p.buffer)}")
    seen = set()
    for i in range(5):
        strategy_state = SimpleNamespace(experience=digits.train_stream[i])
        storage_p.update(strategy_state)
        seen |= set(digits.train_stream[i].classes_in_this_experience)
        targets = ", ".join([str(e) for e in storage_p.buffer.targets])
        print(f"Max buffer size: {storage_p.max_size}, current size: {len(storage_p.buffer)}")
        print(f"class targets: {targets}\n")
        assert set(storage_p.buffer.targets) <= seen
    out = capsys.readouterr().out
    assert out.count("current size: 30") == 5 and "current size: 0" in out
    assert len(set(storage_p.buffer.targets)) >= 8  # 30 uniform draws over 10 balanced classes


def test_post_adapt_and_update_agree(digits):
    a, b = ReservoirSamplingBuffer(40, seed=3), ReservoirSamplingBuffer(40, seed=3)
    for exp in digits.train_stream:
        a.update(SimpleNamespace(experience=exp))
        b.post_adapt(None, exp)
    assert list(a.buffer.targets) == list(b.buffer.targets)


def test_drop_in_storage_policy_of_avalanche_replay_plugin(digits):
    """Naive + Avalanche's ReplayPlugin(storage_policy=ours) on SplitDigits (seed 0, 3 epochs,
    mem 200) beats Naive by a margin of 0.3."""
    buf = ReservoirSamplingBuffer(200, seed=0)
    replay = make_naive([ReplayPlugin(mem_size=200, storage_policy=buf)])
    naive = make_naive([])
    seen = set()
    for exp in digits.train_stream:
        replay.train(exp)
        naive.train(exp)
        seen |= set(exp.classes_in_this_experience)
        assert len(buf.buffer) == 200
        assert set(buf.buffer.targets) == seen  # every seen class is represented
    acc_replay = stream_accuracy(replay, digits.test_stream)
    acc_naive = stream_accuracy(naive, digits.test_stream)
    assert acc_replay > acc_naive + 0.3, (acc_replay, acc_naive)


def test_resize_shrink_is_uniform_and_grow_fills_up():
    """Shrinking a full reservoir of 20 to 10 at n_seen = 40 and continuing to 60 gives each id
    probability 10/60 (same binomial bound as above); growing back lets later updates fill up."""
    counts = torch.zeros(N)
    whole = id_dataset(torch.arange(N))
    for trial in range(TRIALS):
        buf = ReservoirSamplingBuffer(20, seed=trial)
        buf.update_from_dataset(whole, torch.arange(40))
        before = set(int(v) for v in buf.buffer.targets)
        buf.resize(None, 10)
        after = [int(v) for v in buf.buffer.targets]
        assert len(after) == 10 and set(after) <= before and buf.max_size == 10
        buf.update_from_dataset(whole, torch.arange(40, N))
        counts[torch.as_tensor(list(buf.buffer.targets))] += 1
    low, high = stats.binom.ppf([1e-4 / N / 2, 1 - 1e-4 / N / 2], TRIALS, 10 / N)
    assert counts.min() >= low and counts.max() <= high, counts

    buf = ReservoirSamplingBuffer(10, seed=0)
    buf.update_from_dataset(whole, torch.arange(30))
    buf.resize(None, 25)
    assert len(buf.buffer) == 10 and buf.max_size == 25
    buf.update_from_dataset(whole, torch.arange(30, 35))
    assert len(buf.buffer) == 15  # all 5 new samples fill free slots
    buf.update_from_dataset(whole, torch.arange(35, N))
    assert len(buf.buffer) == 25


def test_flat_depth_and_sources_do_not_grow(digits):
    buf = ReservoirSamplingBuffer(100, seed=0)
    depths = []
    gen = torch.Generator().manual_seed(0)
    for exp in digits.train_stream:
        data = exp.dataset
        for step in range(40):  # per-minibatch, by reference and as tensors
            idx = torch.randint(0, len(data), (10,), generator=gen)
            if step % 2:
                buf.update_from_dataset(data, idx)
            else:
                buf.update_from_batch(
                    torch.stack([data[int(i)][0] for i in idx]), [int(data.targets[int(i)]) for i in idx]
                )
            depths.append(_flatdata_depth(buf.buffer._flat_data))
        buf.post_adapt(None, exp)
        depths.append(_flatdata_depth(buf.buffer._flat_data))
    assert max(depths[10:]) <= max(depths[:10])  # both kinds of slot are in after 2 updates; no growth after
    assert len(buf._slots.sources) == 1  # every experience is an index list over the one training set


def test_tensor_and_reference_slots_mix(digits):
    buf = ReservoirSamplingBuffer(50, seed=0)
    buf.post_adapt(None, digits.train_stream[0])
    x, y, t = next(iter(torch.utils.data.DataLoader(digits.train_stream[1].dataset, batch_size=40)))
    buf.update_from_batch(x, y, t)
    data = buf.buffer
    assert len(data) == 50
    for i in range(len(data)):
        xi, yi, ti = data[i]
        assert xi.shape == (1, 8, 8) and int(yi) == int(data.targets[i]) and ti == 0


def contents(buf):
    data = buf.buffer
    return [(int(y), data[i][0].sum().item()) for i, y in enumerate(data.targets)]


def test_seed_determines_buffer_independently_of_global_rng(digits):
    runs = []
    for seed, global_seed in [(7, 0), (7, 99), (8, 0)]:
        torch.manual_seed(global_seed)
        torch.rand(global_seed + 1)  # move the global RNG differently
        buf = ReservoirSamplingBuffer(30, seed=seed)
        for exp in digits.train_stream:
            buf.post_adapt(None, exp)
        runs.append(contents(buf))
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_state_dict_round_trip_resumes_identically(digits):
    gen = torch.Generator().manual_seed(5)
    chunks = [torch.randint(0, 200, (7,), generator=gen) for _ in range(30)]
    ref = ReservoirSamplingBuffer(30, seed=1)
    ref.post_adapt(None, digits.train_stream[0])
    for c in chunks[:10]:
        ref.update_from_batch(digits.train_stream[1].dataset[0][0].expand(len(c), 1, 8, 8).clone(), c % 10)
    saved = io.BytesIO()
    torch.save(ref.state_dict(), saved)
    saved.seek(0)
    resumed = ReservoirSamplingBuffer(5, seed=999)  # different size and seed: all comes from the state
    resumed.load_state_dict(torch.load(saved, weights_only=False))
    clone = pickle.loads(pickle.dumps(ref))
    assert contents(resumed) == contents(ref) == contents(clone)
    for buf in (ref, resumed, clone):
        for c in chunks[10:]:
            buf.update_from_batch(c.float().view(-1, 1, 1, 1).expand(len(c), 1, 8, 8).clone(), c % 10)
        buf.post_adapt(None, digits.train_stream[2])
    assert contents(resumed) == contents(ref) == contents(clone)
    assert resumed.n_seen == ref.n_seen and resumed.max_size == 30
    assert copy.deepcopy(ref).state_dict()["n_seen"] == ref.n_seen


def test_task_label_forms_and_empty_buffer_view():
    import numpy as np

    buf = ReservoirSamplingBuffer(20, seed=0)
    assert len(buf.buffer) == 0 and list(buf.buffer.targets) == [] and list(buf.buffer.targets_task_labels) == []
    x = torch.zeros(2, 1, 8, 8)
    for t in (None, 2, np.int64(3), torch.tensor(4), [5, 6], torch.tensor([7, 8])):
        buf.update_from_batch(x, [1, 1], t)
    assert list(buf.buffer.targets_task_labels) == [0, 0, 2, 2, 3, 3, 4, 4, 5, 6, 7, 8]


def test_dataset_samples_are_referenced_not_copied(digits):
    """A buffer filled from a dataset holds no sample data of its own: every stored image is a
    view of the experience's own image tensor."""
    buf = ReservoirSamplingBuffer(500, seed=0)
    for exp in digits.train_stream:
        buf.post_adapt(None, exp)
    assert len(buf.buffer) == 500 and buf.state_dict()["slots"]["rows"]["x"] is None  # no tensor rows
    source = digits.train_stream[0].dataset[0][0].untyped_storage().data_ptr()
    data = buf.buffer
    assert all(data[i][0].untyped_storage().data_ptr() == source for i in range(len(data)))


def test_offers_that_change_nothing_keep_the_cached_view(digits):
    buf = ReservoirSamplingBuffer(10, seed=0)
    for exp in digits.train_stream:
        buf.post_adapt(None, exp)
    view, unchanged = buf.buffer, 0
    for start in range(0, 270, 3):  # late in the stream most offers enter nowhere
        before = contents(buf)
        buf.update_from_dataset(digits.train_stream[0].dataset, list(range(start, start + 3)))
        if contents(buf) == before:
            unchanged += 1
            assert buf.buffer is view  # not rebuilt: the cache was not invalidated
        view = buf.buffer
    assert unchanged > 80
