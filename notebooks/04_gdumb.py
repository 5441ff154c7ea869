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
# # Exercise 3: GDumb
#
# GDumb (Prabhu et al., ECCV 2020) keeps a class-balanced memory with a greedy sampler and, at every experience,
# retrains the model from scratch on the memory only. We run it on our `GreedyClassBalancedBuffer` and on Avalanche's
# own `ParametricBuffer(groupby='class')`, the exercise's suggestion.
#
# This notebook runs offline on `SplitDigits` (scikit-learn's 8x8 digits); set `USE_MNIST = True` in the first code
# cell to use the local MNIST IDX files. On a machine with internet,
# `from avalanche.benchmarks.classic import SplitMNIST` and `SplitMNIST(5, ...)` replace `make_benchmark(...)`.

# %%
from _setup import benchmark_switch  # hides two named warnings (see _setup.py); any other shows

USE_MNIST = False  # True: MNIST from the IDX files in $AVALANCHE_REPLAY_MNIST_DIR (8000/2000 split)
INPUT_SIZE, BENCHMARK, make_benchmark = benchmark_switch(USE_MNIST)

# %%
from avalanche.training.storage_policy import ParametricBuffer

from avalanche_replay_ext import GreedyClassBalancedBuffer

benchmark = make_benchmark(seed=0)
greedy = GreedyClassBalancedBuffer(30, seed=0)
parametric = ParametricBuffer(30, groupby="class")
for exp in benchmark.train_stream:
    greedy.post_adapt(None, exp)
    parametric.post_adapt(None, exp)
    print(f"after experience {exp.current_experience}: greedy {greedy.class_counts()}")
    print(f"{'':>22}parametric { {k: len(g.buffer) for k, g in parametric.buffer_groups.items()} }")

# %% tags=["parameters"]
seeds, passes = [0, 1, 2], 16

# %%
import random
import statistics

import matplotlib.pyplot as plt
import torch
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.models import SimpleMLP
from avalanche.training.plugins import EvaluationPlugin

from avalanche_replay_ext import GDumb
from avalanche_replay_ext.metrics import stream_accuracy_key


def gdumb(sampler, seed, mem=100):
    torch.manual_seed(seed)
    random.seed(seed)  # Avalanche's ParametricBuffer draws from Python's global `random`
    model = SimpleMLP(input_size=INPUT_SIZE, hidden_size=100, drop_rate=0.0)
    kwargs = {"seed": seed}
    if sampler == "ParametricBuffer":
        kwargs["storage_policy"] = ParametricBuffer(mem, groupby="class")
    strategy = GDumb(
        model=model,
        criterion=torch.nn.CrossEntropyLoss(),
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-6),
        mem_size=mem,
        train_mb_size=16,
        train_epochs=passes,
        eval_mb_size=1000,
        evaluator=EvaluationPlugin(accuracy_metrics(stream=True), loggers=[]),
        gdumb_kwargs=kwargs,
    )
    for exp in benchmark.train_stream:
        strategy.train(exp)
    return strategy.eval(benchmark.test_stream)[stream_accuracy_key()]


results = {s: [gdumb(s, seed) for seed in seeds] for s in ("GreedyClassBalancedBuffer", "ParametricBuffer")}
for s, accs in results.items():
    print(f"{s:>26}: {statistics.mean(accs):.3f} +- {statistics.pstdev(accs):.3f}")

# %%
names = list(results)
plt.bar(
    names, [statistics.mean(results[n]) for n in names], yerr=[statistics.pstdev(results[n]) for n in names], capsize=4
)
plt.ylabel("final accuracy (test stream)")
plt.ylim(0, 1)
plt.title(f"GDumb, memory 100, {passes} passes, mean +- std over {len(seeds)} seeds")
plt.show()

# %% [markdown]
# The MNIST numbers with the paper's settings (128 passes, GDumb's MLP, random crops) and Avalanche's own `GDumb`
# side by side: `python perf/gdumb_accuracy.py`, table in the README.
