"""DualMinibatchLoader: current pass, memory cycling, seeds, live buffers, hand-written loops."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from avalanche.benchmarks.utils.utils import concat_datasets
from avalanche.models import SimpleMLP
from helpers import id_dataset

from avalanche_replay_ext import DualMinibatchLoader, ReservoirSamplingBuffer


def test_one_pass_over_current_data_with_memory_apart():
    current, memory = id_dataset(torch.arange(100)), id_dataset(torch.arange(1000, 1030))
    loader = DualMinibatchLoader(current, memory, batch_size=16, batch_size_mem=8, seed=0)
    steps = list(loader)
    assert len(steps) == len(loader) == 7
    seen = torch.cat([cur[1] for cur, _ in steps])
    assert sorted(seen.tolist()) == list(range(100))  # each current sample exactly once
    for (x, _, t), (_, my, _) in steps:
        assert x.shape[1:] == (1,) and t.eq(0).all()
        assert my.ge(1000).all() and my.lt(1030).all()  # memory only
    assert [len(mem[1]) for _, mem in steps] == [8] * 7  # a pass's remainder continues into the next pass


def test_memory_passes_are_reshuffled_and_wrap_without_repeats():
    """A 12-sample memory, minibatches of 8: every minibatch is full; each consecutive 12 draws
    are a pass (every sample once), reshuffled; a minibatch spanning two passes repeats nothing."""
    memory = id_dataset(torch.arange(12))
    loader = DualMinibatchLoader(id_dataset(torch.arange(300)), memory, batch_size=5, batch_size_mem=8, seed=1)
    batches = [mem[1] for _, mem in loader]
    assert len(batches) == 60 and {len(b) for b in batches} == {8}
    assert all(len(set(b.tolist())) == 8 for b in batches)
    passes = torch.cat(batches).view(40, 12)
    assert all(sorted(p.tolist()) == list(range(12)) for p in passes)
    assert len({tuple(p.tolist()) for p in passes}) > 30


def test_a_memory_smaller_than_the_minibatch_is_replayed_whole():
    loader = DualMinibatchLoader(id_dataset(torch.arange(100)), id_dataset(torch.arange(7)), 5, 10, seed=1)
    assert all(sorted(mem[1].tolist()) == list(range(7)) for _, mem in loader)


def test_memory_is_none_while_empty_and_a_live_buffer_is_read_each_cycle():
    buf = ReservoirSamplingBuffer(50, seed=0)
    current = id_dataset(torch.arange(40))
    loader = DualMinibatchLoader(current, buf, batch_size=10, shuffle=False, seed=0)
    memories = []
    for (_, y, _), mem in loader:
        memories.append(mem)
        buf.update_from_batch(y.float().unsqueeze(1), y)
    assert memories[0] is None
    assert all(m is not None for m in memories[1:])
    assert set(memories[1][1].tolist()) <= set(range(10))  # only what the buffer held then
    empty = DualMinibatchLoader(current, concat_datasets([]), batch_size=10, seed=0)
    assert all(mem is None for _, mem in empty)


def test_seed_fixes_both_streams():
    def draw(seed):
        loader = DualMinibatchLoader(id_dataset(torch.arange(50)), id_dataset(torch.arange(9)), batch_size=8, seed=seed)
        return [(cur[1].tolist(), mem[1].tolist()) for cur, mem in loader]

    torch.manual_seed(0)
    a = draw(3)
    torch.manual_seed(1)
    assert draw(3) == a and draw(4) != a


def test_dataloader_kwargs_workers_and_drop_last():
    loader = DualMinibatchLoader(
        id_dataset(torch.arange(50)), id_dataset(torch.arange(9)), batch_size=8, seed=0, num_workers=2, drop_last=True
    )
    steps = list(loader)
    assert len(steps) == len(loader) == 6 and all(len(cur[1]) == 8 for cur, _ in steps)


def test_hand_written_loop_like_the_tutorial(digits):
    """The tutorial's training cell with the dual loader and ``loss = curr + alpha * mem``."""
    torch.manual_seed(0)
    model = SimpleMLP(num_classes=10, input_size=64, hidden_size=128, drop_rate=0.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    storage_p, alpha = ReservoirSamplingBuffer(max_size=100, seed=0), 1.0
    for exp in digits.train_stream:
        for _ in range(3):
            for (x, y, _), mem in DualMinibatchLoader(exp.dataset.train(), storage_p.buffer, batch_size=32, seed=0):
                optimizer.zero_grad()
                loss = F.cross_entropy(model(x), y)
                if mem is not None:
                    loss = loss + alpha * F.cross_entropy(model(mem[0]), mem[1])
                loss.backward()
                optimizer.step()
        storage_p.post_adapt(None, exp)
    model.eval()
    test = concat_datasets([e.dataset.eval() for e in digits.test_stream])
    x, y, _ = next(iter(torch.utils.data.DataLoader(test, batch_size=1000)))
    accuracy = (model(x).argmax(1) == y).float().mean()
    assert accuracy > 0.6, accuracy  # far above Naive, which keeps only the last experience's classes


def test_empty_current_data_yields_nothing():
    loader = DualMinibatchLoader(id_dataset(torch.arange(0)), id_dataset(torch.arange(5)), batch_size=4, seed=0)
    assert len(loader) == 0 and list(loader) == []


def test_replicas_share_each_pass_like_a_distributed_sampler():
    """Two replicas with the same seed: equal step counts; over both, every current sample is
    fresh exactly once per epoch (the padding repeats are not); memory passes are split too."""
    current, memory = id_dataset(torch.arange(23)), id_dataset(torch.arange(100, 109))
    loaders = [DualMinibatchLoader(current, memory, 4, 3, seed=7, num_replicas=2, rank=r) for r in (0, 1)]
    runs = []
    for loader in loaders:
        steps = []
        for (_, y, _), (_, my, _) in loader:
            assert torch.equal(y, loader.current_indices) and set(my.tolist()) <= set(range(100, 109))
            steps.append((y.tolist(), loader.fresh_indices.tolist(), my.tolist()))
        runs.append(steps)
    assert len(runs[0]) == len(runs[1]) == len(loaders[0]) == 3  # ceil(23 / 2) = 12 samples each, batches of 4
    fresh = sorted(i for steps in runs for _, f, _ in steps for i in f)
    assert fresh == list(range(23))  # 24 samples trained (one repeat), 23 fresh
    assert sum(len(y) for steps in runs for y, _, _ in steps) == 24
    first_memory_pass = runs[0][0][2] + runs[0][1][2] + runs[1][0][2] + runs[1][1][2]  # 2 x 2 x 3 = 12 >= 9 + pad
    assert set(first_memory_pass) == set(range(100, 109))


def test_memory_samples_with_other_fields_are_collated_apart(digits):
    """Current samples with a 4th field and a memory of tensor-minibatch samples (x, y, t)."""
    from avalanche.benchmarks.utils import AvalancheDataset
    from avalanche.benchmarks.utils.data_attribute import DataAttribute

    current = digits.train_stream[0].dataset
    current = AvalancheDataset([current], data_attributes=[DataAttribute(list(range(len(current))), "ids", True)])
    buf = ReservoirSamplingBuffer(10, seed=0)
    buf.update_from_batch(torch.zeros(10, 1, 8, 8), torch.arange(10))
    loader = DualMinibatchLoader(current, buf, batch_size=8, batch_size_mem=4, seed=0)
    for cur, mem in loader:
        assert len(cur) == 4 and len(mem) == 3 and loader.joint is None
        assert torch.equal(cur[3], loader.current_indices) and len(mem[0]) == 4


def test_iterating_leaves_the_global_rng_alone():
    """Every random draw, worker seeds included, comes from the loader's own generator."""
    for workers in (0, 2):
        state = torch.get_rng_state()
        loader = DualMinibatchLoader(
            id_dataset(torch.arange(30)), id_dataset(torch.arange(7)), 4, seed=3, num_workers=workers
        )
        steps = [(cur[1].tolist(), mem[1].tolist()) for cur, mem in loader]
        assert torch.equal(torch.get_rng_state(), state), workers
        again = DualMinibatchLoader(
            id_dataset(torch.arange(30)), id_dataset(torch.arange(7)), 4, seed=3, num_workers=workers
        )
        assert [(cur[1].tolist(), mem[1].tolist()) for cur, mem in again] == steps
