# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: -jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Dataloading, Memory Buffers, and Replay
#
# Avalanche's how-to, rewritten for `avalanche-replay-ext` and Avalanche 0.6. A **replay** method is a combination of a
# replay buffer and a custom dataloader.
#
# This notebook runs offline on `SplitDigits` (scikit-learn's 8x8 digits); set `USE_MNIST = True` in the first code
# cell to use the local MNIST IDX files. On a machine with internet,
# `from avalanche.benchmarks.classic import SplitMNIST` and `SplitMNIST(5, ...)` replace `make_benchmark(...)`.

# %%
from _setup import benchmark_switch  # hides two named warnings (see _setup.py); any other shows

USE_MNIST = False  # True: MNIST from the IDX files in $AVALANCHE_REPLAY_MNIST_DIR (8000/2000 split)
INPUT_SIZE, BENCHMARK, make_benchmark = benchmark_switch(USE_MNIST)

# %% [markdown]
# ## Dataloaders
#
# `GroupBalancedDataLoader` takes a sequence of datasets and draws balanced minibatches, the samples split equally
# among the groups (here: experiences).

# %%
from avalanche.benchmarks.utils.data_loader import GroupBalancedDataLoader

benchmark = make_benchmark(return_task_id=True)
dl = GroupBalancedDataLoader([exp.dataset for exp in benchmark.train_stream], batch_size=5)
for x, y, t in dl:
    print(t.tolist())
    break

# %% [markdown]
# ## Memory buffers
#
# A buffer stores data up to a maximum capacity and decides what to keep. Our `ReservoirSamplingBuffer` subclasses
# Avalanche's `ExemplarsBuffer`: every sample seen is kept with probability `max_size / n_seen`, its own seeded
# generator makes it reproducible, and (unlike the tutorial's version) `resize` works both ways. In Avalanche 0.6 the
# update hook is `post_adapt(agent, exp)`; the tutorial's `update(strategy)` still works.

# %%
from types import SimpleNamespace

from avalanche_replay_ext import ReservoirSamplingBuffer

benchmark = make_benchmark(return_task_id=False)
storage_p = ReservoirSamplingBuffer(max_size=30, seed=0)
print(f"Max buffer size: {storage_p.max_size}, current size: {len(storage_p.buffer)}")

# %%
for i in range(5):
    strategy_state = SimpleNamespace(experience=benchmark.train_stream[i])
    storage_p.update(strategy_state)
    targets = ", ".join([str(e) for e in storage_p.buffer.targets])
    print(f"Max buffer size: {storage_p.max_size}, current size: {len(storage_p.buffer)}")
    print(f"class targets: {targets}\n")

# %% [markdown]
# Avalanche's `ParametricBuffer` splits the memory into groups (`None`, `'class'`, `'task'`, `'experience'`), each
# filled by a selection strategy (random by default).

# %%
from avalanche.training.storage_policy import ParametricBuffer, RandomExemplarsSelectionStrategy

storage_p = ParametricBuffer(max_size=30, groupby="class", selection_strategy=RandomExemplarsSelectionStrategy())
print(f"Max buffer size: {storage_p.max_size}, current size: {len(storage_p.buffer)}")
for i in range(5):
    storage_p.post_adapt(None, benchmark.train_stream[i])
    targets = ", ".join([str(e) for e in storage_p.buffer.targets])
    print(f"Max buffer size: {storage_p.max_size}, current size: {len(storage_p.buffer)}")
    print(f"class targets: {targets}\n")

# %%
for k, v in storage_p.buffer_groups.items():
    print(f"(group {k}) -> size {len(v.buffer)}")

# %%
datas = [v.buffer for v in storage_p.buffer_groups.values()]
dl = GroupBalancedDataLoader(datas)
for x, y, t in dl:
    print(y.tolist())
    break

# %% [markdown]
# ## Training
#
# `ReplayDataLoader` samples jointly from the current data and the buffer; the buffer is updated after each
# experience.

# %%
import torch
import torch.nn.functional as F
from avalanche.benchmarks.utils.data_loader import ReplayDataLoader
from avalanche.models import SimpleMLP
from torch.optim import SGD

torch.manual_seed(1)
benchmark = make_benchmark(return_task_id=False, seed=1)
model = SimpleMLP(input_size=INPUT_SIZE)
optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9)
num_epochs = 2
storage_p = ReservoirSamplingBuffer(max_size=30, seed=0)

print(f"Max buffer size: {storage_p.max_size}, current size: {len(storage_p.buffer)}")
for exp in benchmark.train_stream:
    print(f"Experience ({exp.current_experience})")
    model.train()
    dataset = exp.dataset.train()
    for epoch in range(num_epochs):
        if len(storage_p.buffer):
            dl = ReplayDataLoader(dataset, storage_p.buffer, batch_size=128)
        else:
            dl = torch.utils.data.DataLoader(dataset, batch_size=128, shuffle=True)
        for x, y, t in dl:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
        print(f"Train Epoch: {epoch} \tLoss: {loss.item():.6f}")
    storage_p.post_adapt(None, exp)
    print(f"Max buffer size: {storage_p.max_size}, current size: {len(storage_p.buffer)}")
    print(f"class targets: {list(storage_p.buffer.targets)}\n")

# %% [markdown]
# ## Exercises
#
# - different memory sizes: `02_memory_sizes.ipynb`
# - a dataloader with two minibatches and `loss = curr_loss + alpha * memory_loss`: `03_alpha_replay.ipynb`
# - GDumb: `04_gdumb.ipynb`
