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
# # Dark Experience Replay: ER, DER and DER++
#
# Alpha-weighted replay adds `alpha_t * criterion(memory)`. Dark Experience Replay (Buzzega et al., NeurIPS 2020)
# keeps, with each sample, the logits the model gave it when it entered the buffer, and adds
# `alpha * MSE(f(x_m), z_m)` (DER) plus `beta * CE(f(x_m'), y_m')` on a second memory minibatch (DER++).
# `DERPlugin` does it in any Avalanche strategy; the buffer keeps the logits next to each sample
# (`buffer.stored_extras("logits")`).
#
# This notebook runs offline on `SplitDigits` (scikit-learn's 8x8 digits); set `USE_MNIST = True` in the first code
# cell to use the local MNIST IDX files.

# %%
from _setup import benchmark_switch  # hides two named warnings (see _setup.py); any other shows

USE_MNIST = False  # True: MNIST from the IDX files in $AVALANCHE_REPLAY_MNIST_DIR (8000/2000 split)
INPUT_SIZE, BENCHMARK, make_benchmark = benchmark_switch(USE_MNIST)

# %% tags=["parameters"]
seeds, mem_size, alpha, beta = [0, 1, 2], 100, 0.3, 0.5

# %% [markdown]
# Online training: batch 10, one pass, each minibatch offered to the buffer after its step with the logits of that
# step's forward pass; 10 memory samples per memory minibatch. ER is `AlphaReplayPlugin(update_every="iteration")`.
# `der_metrics()` logs DER's two terms at every iteration.

# %%
import statistics

import matplotlib.pyplot as plt
import torch
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.models import SimpleMLP
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin

from avalanche_replay_ext import AlphaReplayPlugin, DERPlugin, der_metrics
from avalanche_replay_ext.metrics import stream_accuracy_key

benchmark = make_benchmark(seed=0)
METHODS = {
    "ER": lambda seed: AlphaReplayPlugin(mem_size, 1.0, batch_size_mem=10, update_every="iteration", seed=seed),
    "DER": lambda seed: DERPlugin(mem_size, alpha, 0.0, batch_size_mem=10, seed=seed),
    "DER++": lambda seed: DERPlugin(mem_size, alpha, beta, batch_size_mem=10, seed=seed),
}


def train(method, seed):
    torch.manual_seed(seed)
    model = SimpleMLP(input_size=INPUT_SIZE, hidden_size=256, drop_rate=0.0)
    strategy = Naive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=10,
        eval_mb_size=1000,
        plugins=[METHODS[method](seed)],
        evaluator=EvaluationPlugin(accuracy_metrics(stream=True), *der_metrics(), loggers=[]),
    )
    for exp in benchmark.train_stream:
        strategy.train(exp)
    accuracy = strategy.eval(benchmark.test_stream)[stream_accuracy_key()]
    return accuracy, strategy.evaluator.get_all_metrics()


runs = {method: [train(method, seed) for seed in seeds] for method in METHODS}
print(f"final accuracy on the test stream, memory {mem_size}, alpha {alpha}, beta {beta}, seeds {seeds}:")
for method, results in runs.items():
    accuracies = [accuracy for accuracy, _ in results]
    std = statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0
    print(f"{method:<6}{statistics.mean(accuracies):.3f} +- {std:.3f}")

# %% [markdown]
# DER++'s two memory terms over the iterations (first seed): the MSE to the stored logits and the cross-entropy on
# the second memory minibatch.

# %%
metrics = runs["DER++"][0][1]
fig, ax = plt.subplots(figsize=(8, 3.5))
for name in ("loss_mse", "loss_ce"):
    steps, values = metrics[f"DER/{name}/train_phase/train_stream"]
    ax.plot(steps, values, label=name, linewidth=0.8)
ax.set(xlabel="training iteration", ylabel="loss term", title=f"DER++ on {BENCHMARK}, seed {seeds[0]}")
ax.legend()
fig.tight_layout()

# %% [markdown]
# On MNIST, side by side with Avalanche's `DER` strategy and `Replay` at memory 200 and 500, see
# `perf/der_replay.py` and the project's README. From the command line:
# `avalanche-replay sweep --strategy derpp --mem-sizes 200 --alphas 0.3 --betas 0.5 --seeds 0 1 2 --out runs/der`.
