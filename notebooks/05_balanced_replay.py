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
# # Balanced replay: what is stored, and what is replayed
#
# The tutorial's balanced loaders are "especially useful when you have unbalanced data". Replay makes two choices
# on such data: what the buffer **stores** (`ReservoirSamplingBuffer`: uniform over the stream, so the head classes
# fill it; `ClassBalancedReservoirBuffer`: as many samples per class as it can) and what each step **replays**
# from it (`RandomRetrieval`: reshuffled passes over the memory; `BalancedRetrieval("class")`: every stored class
# equally often; `MIRRetrieval`: the samples a step on the current minibatch would hurt most). This notebook trains
# each pair online on a long-tailed stream and shows both histograms and the accuracy.
#
# It runs offline on `SplitDigits` (scikit-learn's 8x8 digits); set `USE_MNIST = True` in the first code cell to
# use the local MNIST IDX files.

# %%
from _setup import benchmark_switch  # hides two named warnings (see _setup.py); any other shows

USE_MNIST = False  # True: MNIST from the IDX files in $AVALANCHE_REPLAY_MNIST_DIR (8000/2000 split)
INPUT_SIZE, BENCHMARK, make_benchmark = benchmark_switch(USE_MNIST)

# %% tags=["parameters"]
seeds, ratio, mem_size = [0, 1, 2], 0.1, 100

# %% [markdown]
# `imbalance_ratio` makes the training stream long-tailed: class `c` of the class order keeps
# `round(n_max * ratio ** (c / 9))` samples; the test stream stays balanced.

# %%
import matplotlib.pyplot as plt
import torch

benchmark = make_benchmark(seed=0, imbalance_ratio=ratio)
order = [int(c) for c in benchmark.classes_order_original_ids]
train_counts = torch.bincount(torch.cat([torch.as_tensor(list(e.dataset.targets)) for e in benchmark.train_stream]))
print("training samples per class, in stream order:", {c: int(train_counts[c]) for c in order})

# %% [markdown]
# Online training: batch 10, one pass, each minibatch offered to the buffer after its step
# (`update_every="iteration"`), 10 memory samples per step. After the stream, each policy draws 500 memory
# minibatches from the final memory: the classes it replays from what was stored. (MIR's choice depends on each
# step's model and current minibatch, so it has no such histogram.) The cell prints the final accuracy of each policy
# on the balanced test stream, mean +- std over the seeds.

# %%
import statistics

from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.models import SimpleMLP
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin

from avalanche_replay_ext import (
    AlphaReplayPlugin,
    BalancedRetrieval,
    ClassBalancedReservoirBuffer,
    MIRRetrieval,
    RandomRetrieval,
    ReservoirSamplingBuffer,
)
from avalanche_replay_ext.metrics import stream_accuracy_key

POLICIES = {  # name -> (buffer class, retrieval factory)
    "reservoir + random": (ReservoirSamplingBuffer, RandomRetrieval),
    "reservoir + balanced": (ReservoirSamplingBuffer, lambda: BalancedRetrieval("class")),
    "class-balanced reservoir + random": (ClassBalancedReservoirBuffer, RandomRetrieval),
    "class-balanced reservoir + balanced": (ClassBalancedReservoirBuffer, lambda: BalancedRetrieval("class")),
    "reservoir + MIR(50)": (ReservoirSamplingBuffer, lambda: MIRRetrieval(50)),
}


def replayed_classes(replay, steps=500):
    """The classes of ``steps`` memory minibatches the plugin's retrieval policy draws from its memory."""
    memory = replay.storage_policy
    batches = replay.retrieval.plan(memory, 10, steps, torch.Generator().manual_seed(0))
    return torch.bincount(memory.stored_groups("class")[torch.cat(batches)], minlength=10)


def train(policy, seed):
    buffer_class, retrieval = POLICIES[policy]
    torch.manual_seed(seed)
    model = SimpleMLP(input_size=INPUT_SIZE, hidden_size=256, drop_rate=0.0)
    replay = AlphaReplayPlugin(
        mem_size,
        1.0,
        batch_size_mem=10,
        storage_policy=buffer_class(mem_size, seed=seed),
        update_every="iteration",
        seed=seed,
        retrieval=retrieval(),
    )
    strategy = Naive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=10,
        train_epochs=1,
        eval_mb_size=1000,
        plugins=[replay],
        evaluator=EvaluationPlugin(accuracy_metrics(stream=True), loggers=[]),
    )
    for exp in benchmark.train_stream:
        strategy.train(exp)
    stored = torch.bincount(replay.storage_policy.stored_groups("class"), minlength=10)
    replayed = None if isinstance(replay.retrieval, MIRRetrieval) else replayed_classes(replay)
    return stored, replayed, strategy.eval(benchmark.test_stream)[stream_accuracy_key()]


runs = {policy: [train(policy, seed) for seed in seeds] for policy in POLICIES}
print(f"final accuracy on the balanced test stream, imbalance_ratio {ratio}, memory {mem_size}, seeds {seeds}:")
for policy, results in runs.items():
    accuracies = [accuracy for _, _, accuracy in results]
    std = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
    print(f"{policy:<38}{statistics.mean(accuracies):.3f} +- {std:.3f}")

# %% [markdown]
# Stored classes after the stream and the classes replayed from them (first seed), in stream order: the head on the
# left.

# %%
shown = {policy: results[0] for policy, results in runs.items() if results[0][1] is not None}
fig, axes = plt.subplots(len(shown), 2, figsize=(9, 2.1 * len(shown)), sharex=True)
for row, (policy, (stored, replayed, _)) in zip(axes, shown.items(), strict=True):
    for ax, counts, what in ((row[0], stored, "stored"), (row[1], replayed, "replayed")):
        share = counts[order].double() / counts.sum()
        ax.bar(range(10), share.tolist())
        ax.set_title(f"{policy}: {what}", fontsize=9)
        ax.set_ylim(0, 0.3)
for ax in axes[-1]:
    ax.set_xticks(range(10), [str(c) for c in order])
    ax.set_xlabel("class, in stream order")
fig.supylabel("share of samples")
fig.tight_layout()

# %% [markdown]
# The same comparison on MNIST (ratios 0.1 and 0.01, memory 500, three seeds), side by side with Avalanche's
# `ReplayPlugin(ClassBalancedBuffer)` and `MIRPlugin`, is `perf/balanced_replay.py`; its results are in the
# project's README. From the command line, a sweep compares the pairs:
# `avalanche-replay sweep --imbalance-ratio 0.1 --mem-sizes 200 --storages reservoir class-balanced-reservoir
# --retrievals random balanced --out runs/balanced`.
