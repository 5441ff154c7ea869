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
# # Exercise 2: two minibatches, `loss = curr_loss + alpha * memory_loss`
#
# `DualMinibatchLoader` yields a current and a memory minibatch apart. First in a hand-written loop, then as
# `AlphaReplayPlugin` in Avalanche's `Naive`.
#
# This notebook runs offline on `SplitDigits` (scikit-learn's 8x8 digits); set `USE_MNIST = True` in the first code
# cell to use the local MNIST IDX files. On a machine with internet,
# `from avalanche.benchmarks.classic import SplitMNIST` and `SplitMNIST(5, ...)` replace `make_benchmark(...)`.

# %%
from _setup import benchmark_switch  # hides two named warnings (see _setup.py); any other shows

USE_MNIST = False  # True: MNIST from the IDX files in $AVALANCHE_REPLAY_MNIST_DIR (8000/2000 split)
INPUT_SIZE, BENCHMARK, make_benchmark = benchmark_switch(USE_MNIST)

# %%
import torch
import torch.nn.functional as F
from avalanche.models import SimpleMLP

from avalanche_replay_ext import DualMinibatchLoader, ReservoirSamplingBuffer

torch.manual_seed(0)
benchmark = make_benchmark(seed=0)
model = SimpleMLP(input_size=INPUT_SIZE, hidden_size=256, drop_rate=0.0)
optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
storage_p, alpha = ReservoirSamplingBuffer(max_size=200, seed=0), 1.0

for exp in benchmark.train_stream:
    for epoch in range(3):
        for (x, y, t), mem in DualMinibatchLoader(exp.dataset.train(), storage_p.buffer, batch_size=32, seed=epoch):
            optimizer.zero_grad()
            curr_loss = F.cross_entropy(model(x), y)
            mem_loss = F.cross_entropy(model(mem[0]), mem[1]) if mem is not None else torch.zeros(())
            loss = curr_loss + alpha * mem_loss
            loss.backward()
            optimizer.step()
    storage_p.post_adapt(None, exp)
    print(f"experience {exp.current_experience}: curr_loss {curr_loss.item():.3f}, mem_loss {mem_loss.item():.3f}")

model.eval()
correct = total = 0
with torch.no_grad():
    for exp in benchmark.test_stream:
        for x, y, t in torch.utils.data.DataLoader(exp.dataset.eval(), batch_size=1000):
            correct += (model(x).argmax(1) == y).sum().item()
            total += len(y)
print(f"final accuracy on the test stream: {correct / total:.3f}")

# %% [markdown]
# The plugin does the same inside any `SupervisedTemplate`. `t` is the number of experiences trained before the
# current one; `LinearAlpha(a)` gives `alpha_t = a * t`. Constant alphas against linear ones, two seeds each:

# %% tags=["parameters"]
seeds, constant_alphas, linear_alphas = [0, 1], [0.0, 0.25, 0.5, 1.0, 2.0, 4.0], [0.5, 1.0]

# %%
import statistics

import matplotlib.pyplot as plt

from avalanche_replay_ext.experiments import Setting, run_setting


def final(alpha, schedule):
    runs = [
        run_setting(
            Setting(
                strategy="alpha-replay", mem_size=200, alpha=alpha, alpha_schedule=schedule, seed=s, benchmark=BENCHMARK
            ),
            progress=False,
        )
        for s in seeds
    ]
    return [r.final_accuracy for r in runs]


constant = {a: final(a, "constant") for a in constant_alphas}
linear = {a: final(a, "linear") for a in linear_alphas}
for name, table in (("constant", constant), ("linear", linear)):
    for a, accs in table.items():
        print(f"{name:>8} alpha {a:<5}: {statistics.mean(accs):.3f} +- {statistics.pstdev(accs):.3f}")

# %%
xs = sorted(constant)
plt.errorbar(
    xs,
    [statistics.mean(constant[a]) for a in xs],
    yerr=[statistics.pstdev(constant[a]) for a in xs],
    marker="o",
    capsize=3,
    label="constant alpha",
)
plt.errorbar(
    sorted(linear),
    [statistics.mean(linear[a]) for a in sorted(linear)],
    yerr=[statistics.pstdev(linear[a]) for a in sorted(linear)],
    marker="s",
    capsize=3,
    linestyle="none",
    label="linear: alpha_t = alpha_base * t (x = alpha_base)",
)
plt.xlabel("alpha")
plt.ylabel("final accuracy (test stream)")
plt.ylim(0, 1)
plt.legend()
plt.show()

# %% [markdown]
# From the shell:
# `avalanche-replay sweep --strategy alpha-replay --mem-sizes 200 --alphas 0 0.25 0.5 1 2 4 --seeds 0 1 --out runs/a`
# (add `--alpha-schedule linear` for the linear schedule).
