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
# # Exercise 1: memory sizes
#
# Experience replay (Avalanche's `ReplayPlugin` with our `ReservoirSamplingBuffer`) in `Naive`, for a range of memory
# sizes, two seeds each; final accuracy on the whole test stream.
#
# This notebook runs offline on `SplitDigits` (scikit-learn's 8x8 digits); set `USE_MNIST = True` in the first code
# cell to use the local MNIST IDX files. On a machine with internet,
# `from avalanche.benchmarks.classic import SplitMNIST` and `SplitMNIST(5, ...)` replace `make_benchmark(...)`.

# %%
from _setup import benchmark_switch  # hides two named warnings (see _setup.py); any other shows

USE_MNIST = False  # True: MNIST from the IDX files in $AVALANCHE_REPLAY_MNIST_DIR (8000/2000 split)
INPUT_SIZE, BENCHMARK, make_benchmark = benchmark_switch(USE_MNIST)

# %% tags=["parameters"]
mem_sizes, seeds = [0, 10, 30, 100, 300, 1000], [0, 1]

# %%
import statistics

import matplotlib.pyplot as plt

from avalanche_replay_ext.experiments import Setting, run_setting

accuracy = {}
for mem in mem_sizes:
    strategy = "naive" if mem == 0 else "replay"
    runs = [
        run_setting(
            Setting(strategy=strategy, mem_size=max(mem, 1), seed=s, epochs=3, benchmark=BENCHMARK), progress=False
        )
        for s in seeds
    ]
    accuracy[mem] = [r.final_accuracy for r in runs]
    print(
        f"memory {mem:>5}: final accuracy {statistics.mean(accuracy[mem]):.3f} +- "
        f"{statistics.pstdev(accuracy[mem]):.3f}"
    )

# %%
xs = [m for m in mem_sizes if m > 0]
plt.errorbar(
    xs,
    [statistics.mean(accuracy[m]) for m in xs],
    yerr=[statistics.pstdev(accuracy[m]) for m in xs],
    marker="o",
    capsize=3,
    label="replay",
)
plt.axhline(statistics.mean(accuracy[0]), color="gray", linestyle="--", label="naive (no memory)")
plt.xscale("log")
plt.xlabel("memory size")
plt.ylabel("final accuracy (test stream)")
plt.ylim(0, 1)
plt.legend()
plt.show()

# %% [markdown]
# The same sweep from the shell:
# `avalanche-replay sweep --strategy replay --mem-sizes 10 30 100 300 1000 --seeds 0 1 --out runs/memory_sizes`.
