"""Write the tutorial notebooks and execute them in place, saving their outputs.

    python notebooks/build.py           # all four (about 40 s on 2 idle CPU cores)

The tests execute the saved notebooks again (tests/test_notebooks.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent

SETUP = """import warnings

warnings.filterwarnings("ignore")  # avalanche's import-time and deprecation chatter

from avalanche_replay_ext import SplitDigits, SplitMNISTIdx

USE_MNIST = False  # True: MNIST from the IDX files in $AVALANCHE_REPLAY_MNIST_DIR (8000/2000 split)
INPUT_SIZE = 28 * 28 if USE_MNIST else 64


def make_benchmark(**kwargs):
    return SplitMNISTIdx(5, **kwargs) if USE_MNIST else SplitDigits(5, **kwargs)"""

SWITCH = (
    "This notebook runs offline on `SplitDigits` (scikit-learn's 8x8 digits); set `USE_MNIST = True` "
    "to use the local MNIST IDX files. On a machine with internet, "
    "`from avalanche.benchmarks.classic import SplitMNIST` and `SplitMNIST(5, ...)` replace `make_benchmark(...)`."
)

NOTEBOOKS = {
    "01_dataloading_buffers_replay.ipynb": [
        (
            "md",
            "# Dataloading, Memory Buffers, and Replay\n\nAvalanche's how-to, rewritten for "
            "`avalanche-replay-ext` and Avalanche 0.6. A **replay** method is a combination of a "
            "replay buffer and a custom dataloader.\n\n" + SWITCH,
        ),
        ("code", SETUP),
        (
            "md",
            "## Dataloaders\n\n`GroupBalancedDataLoader` takes a sequence of datasets and draws "
            "balanced minibatches, the samples split equally among the groups (here: experiences).",
        ),
        (
            "code",
            """from avalanche.benchmarks.utils.data_loader import GroupBalancedDataLoader

benchmark = make_benchmark(return_task_id=True)
dl = GroupBalancedDataLoader([exp.dataset for exp in benchmark.train_stream], batch_size=5)
for x, y, t in dl:
    print(t.tolist())
    break""",
        ),
        (
            "md",
            "## Memory buffers\n\nA buffer stores data up to a maximum capacity and decides what to "
            "keep. Our `ReservoirSamplingBuffer` subclasses Avalanche's `ExemplarsBuffer`: every sample "
            "seen is kept with probability `max_size / n_seen`, its own seeded generator makes it "
            "reproducible, and (unlike the tutorial's version) `resize` works both ways. In Avalanche "
            "0.6 the update hook is `post_adapt(agent, exp)`; the tutorial's `update(strategy)` still works.",
        ),
        (
            "code",
            """from types import SimpleNamespace

from avalanche_replay_ext import ReservoirSamplingBuffer

benchmark = make_benchmark(return_task_id=False)
storage_p = ReservoirSamplingBuffer(max_size=30, seed=0)
print(f"Max buffer size: {storage_p.max_size}, current size: {len(storage_p.buffer)}")""",
        ),
        (
            "code",
            """for i in range(5):
    strategy_state = SimpleNamespace(experience=benchmark.train_stream[i])
    storage_p.update(strategy_state)
    targets = ", ".join([str(e) for e in storage_p.buffer.targets])
    print(f"Max buffer size: {storage_p.max_size}, current size: {len(storage_p.buffer)}")
    print(f"class targets: {targets}\\n")""",
        ),
        (
            "md",
            "Avalanche's `ParametricBuffer` splits the memory into groups (`None`, `'class'`, `'task'`, "
            "`'experience'`), each filled by a selection strategy (random by default).",
        ),
        (
            "code",
            """from avalanche.training.storage_policy import ParametricBuffer, RandomExemplarsSelectionStrategy

storage_p = ParametricBuffer(max_size=30, groupby="class", selection_strategy=RandomExemplarsSelectionStrategy())
print(f"Max buffer size: {storage_p.max_size}, current size: {len(storage_p.buffer)}")
for i in range(5):
    storage_p.post_adapt(None, benchmark.train_stream[i])
    targets = ", ".join([str(e) for e in storage_p.buffer.targets])
    print(f"Max buffer size: {storage_p.max_size}, current size: {len(storage_p.buffer)}")
    print(f"class targets: {targets}\\n")""",
        ),
        (
            "code",
            """for k, v in storage_p.buffer_groups.items():
    print(f"(group {k}) -> size {len(v.buffer)}")""",
        ),
        (
            "code",
            """datas = [v.buffer for v in storage_p.buffer_groups.values()]
dl = GroupBalancedDataLoader(datas)
for x, y, t in dl:
    print(y.tolist())
    break""",
        ),
        (
            "md",
            "## Training\n\n`ReplayDataLoader` samples jointly from the current data and the buffer; "
            "the buffer is updated after each experience.",
        ),
        (
            "code",
            """import torch
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
        dl = ReplayDataLoader(dataset, storage_p.buffer, batch_size=128) if len(storage_p.buffer) else \\
            torch.utils.data.DataLoader(dataset, batch_size=128, shuffle=True)
        for x, y, t in dl:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
        print(f"Train Epoch: {epoch} \\tLoss: {loss.item():.6f}")
    storage_p.post_adapt(None, exp)
    print(f"Max buffer size: {storage_p.max_size}, current size: {len(storage_p.buffer)}")
    print(f"class targets: {list(storage_p.buffer.targets)}\\n")""",
        ),
        (
            "md",
            "## Exercises\n\n- different memory sizes: `02_memory_sizes.ipynb`\n- a dataloader with "
            "two minibatches and `loss = curr_loss + alpha * memory_loss`: `03_alpha_replay.ipynb`\n"
            "- GDumb: `04_gdumb.ipynb`",
        ),
    ],
    "02_memory_sizes.ipynb": [
        (
            "md",
            "# Exercise 1: memory sizes\n\nExperience replay (Avalanche's `ReplayPlugin` with our "
            "`ReservoirSamplingBuffer`) in `Naive`, for a range of memory sizes, two seeds each; final "
            "accuracy on the whole test stream.\n\n" + SWITCH,
        ),
        ("code", SETUP),
        (
            "code",
            """import statistics

import matplotlib.pyplot as plt

from avalanche_replay_ext.experiments import Setting, run_setting

BENCHMARK = "mnist-idx" if USE_MNIST else "split-digits"
mem_sizes, seeds = [0, 10, 30, 100, 300, 1000], [0, 1]
accuracy = {}
for mem in mem_sizes:
    strategy = "naive" if mem == 0 else "replay"
    runs = [run_setting(Setting(strategy=strategy, mem_size=max(mem, 1), seed=s, epochs=3, benchmark=BENCHMARK),
                        progress=False) for s in seeds]
    accuracy[mem] = [r.final_accuracy for r in runs]
    print(f"memory {mem:>5}: final accuracy {statistics.mean(accuracy[mem]):.3f} +- "
          f"{statistics.pstdev(accuracy[mem]):.3f}")""",
        ),
        (
            "code",
            """xs = [m for m in mem_sizes if m > 0]
plt.errorbar(xs, [statistics.mean(accuracy[m]) for m in xs], yerr=[statistics.pstdev(accuracy[m]) for m in xs],
             marker="o", capsize=3, label="replay")
plt.axhline(statistics.mean(accuracy[0]), color="gray", linestyle="--", label="naive (no memory)")
plt.xscale("log")
plt.xlabel("memory size")
plt.ylabel("final accuracy (test stream)")
plt.ylim(0, 1)
plt.legend()
plt.show()""",
        ),
        (
            "md",
            "The same sweep from the shell: `avalanche-replay sweep --strategy replay --mem-sizes 10 30 100 "
            "300 1000 --seeds 0 1`.",
        ),
    ],
    "03_alpha_replay.ipynb": [
        (
            "md",
            "# Exercise 2: two minibatches, `loss = curr_loss + alpha * memory_loss`\n\n"
            "`DualMinibatchLoader` yields a current and a memory minibatch apart. First in a hand-written "
            "loop, then as `AlphaReplayPlugin` in Avalanche's `Naive`.\n\n" + SWITCH,
        ),
        ("code", SETUP),
        (
            "code",
            """import torch
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
print(f"final accuracy on the test stream: {correct / total:.3f}")""",
        ),
        (
            "md",
            "The plugin does the same inside any `SupervisedTemplate`. `t` is the number of experiences "
            "trained before the current one; `LinearAlpha(a)` gives `alpha_t = a * t`. Constant alphas "
            "against linear ones, two seeds each:",
        ),
        (
            "code",
            """import statistics

import matplotlib.pyplot as plt

from avalanche_replay_ext.experiments import Setting, run_setting

BENCHMARK = "mnist-idx" if USE_MNIST else "split-digits"
seeds = [0, 1]
def final(alpha, schedule):
    runs = [run_setting(Setting(strategy="alpha-replay", mem_size=200, alpha=alpha, alpha_schedule=schedule,
                                seed=s, benchmark=BENCHMARK), progress=False) for s in seeds]
    return [r.final_accuracy for r in runs]

constant = {a: final(a, "constant") for a in [0.0, 0.25, 0.5, 1.0, 2.0, 4.0]}
linear = {a: final(a, "linear") for a in [0.5, 1.0]}
for name, table in (("constant", constant), ("linear", linear)):
    for a, accs in table.items():
        print(f"{name:>8} alpha {a:<5}: {statistics.mean(accs):.3f} +- {statistics.pstdev(accs):.3f}")""",
        ),
        (
            "code",
            """xs = sorted(constant)
plt.errorbar(xs, [statistics.mean(constant[a]) for a in xs], yerr=[statistics.pstdev(constant[a]) for a in xs],
             marker="o", capsize=3, label="constant alpha")
plt.errorbar(sorted(linear), [statistics.mean(linear[a]) for a in sorted(linear)],
             yerr=[statistics.pstdev(linear[a]) for a in sorted(linear)], marker="s", capsize=3, linestyle="none",
             label="linear: alpha_t = alpha_base * t (x = alpha_base)")
plt.xlabel("alpha")
plt.ylabel("final accuracy (test stream)")
plt.ylim(0, 1)
plt.legend()
plt.show()""",
        ),
        (
            "md",
            "From the shell: `avalanche-replay sweep --strategy alpha-replay --mem-sizes 200 --alphas 0 0.25 "
            "0.5 1 2 4 --seeds 0 1` (add `--alpha-schedule linear` for the linear schedule).",
        ),
    ],
    "04_gdumb.ipynb": [
        (
            "md",
            "# Exercise 3: GDumb\n\nGDumb (Prabhu et al., ECCV 2020) keeps a class-balanced memory with a "
            "greedy sampler and, at every experience, retrains the model from scratch on the memory only. "
            "We run it on our `GreedyClassBalancedBuffer` and on Avalanche's own "
            "`ParametricBuffer(groupby='class')`, the exercise's suggestion.\n\n" + SWITCH,
        ),
        ("code", SETUP),
        (
            "code",
            """from avalanche.training.storage_policy import ParametricBuffer

from avalanche_replay_ext import GreedyClassBalancedBuffer

benchmark = make_benchmark(seed=0)
greedy = GreedyClassBalancedBuffer(30, seed=0)
parametric = ParametricBuffer(30, groupby="class")
for exp in benchmark.train_stream:
    greedy.post_adapt(None, exp)
    parametric.post_adapt(None, exp)
    print(f"after experience {exp.current_experience}: greedy {greedy.class_counts()}")
    print(f"{'':>22}parametric { {k: len(g.buffer) for k, g in parametric.buffer_groups.items()} }")""",
        ),
        (
            "code",
            """import random
import statistics

import matplotlib.pyplot as plt
import torch
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.models import SimpleMLP
from avalanche.training.plugins import EvaluationPlugin

from avalanche_replay_ext import GDumb


def gdumb(sampler, seed, mem=100, passes=16):
    torch.manual_seed(seed)
    random.seed(seed)  # Avalanche's ParametricBuffer draws from Python's global `random`
    model = SimpleMLP(input_size=INPUT_SIZE, hidden_size=100, drop_rate=0.0)
    kwargs = {"seed": seed}
    if sampler == "ParametricBuffer":
        kwargs["storage_policy"] = ParametricBuffer(mem, groupby="class")
    strategy = GDumb(model=model, criterion=torch.nn.CrossEntropyLoss(),
                     optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-6),
                     mem_size=mem, train_mb_size=16, train_epochs=passes, eval_mb_size=1000,
                     evaluator=EvaluationPlugin(accuracy_metrics(stream=True), loggers=[]), gdumb_kwargs=kwargs)
    for exp in benchmark.train_stream:
        strategy.train(exp)
    return strategy.eval(benchmark.test_stream)["Top1_Acc_Stream/eval_phase/test_stream/Task000"]


results = {s: [gdumb(s, seed) for seed in (0, 1, 2)] for s in ("GreedyClassBalancedBuffer", "ParametricBuffer")}
for s, accs in results.items():
    print(f"{s:>26}: {statistics.mean(accs):.3f} +- {statistics.pstdev(accs):.3f}")""",
        ),
        (
            "code",
            """names = list(results)
plt.bar(names, [statistics.mean(results[n]) for n in names], yerr=[statistics.pstdev(results[n]) for n in names],
        capsize=4)
plt.ylabel("final accuracy (test stream)")
plt.ylim(0, 1)
plt.title("GDumb, memory 100, 16 passes, 3 seeds")
plt.show()""",
        ),
        (
            "md",
            "The MNIST numbers with the paper's settings (128 passes, GDumb's MLP, random crops) and "
            "Avalanche's own `GDumb` side by side: `python benchmarks/gdumb_accuracy.py`, table in the README.",
        ),
    ],
}


def build(name: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook(cells=[new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def execute(path: Path, timeout: int = 900) -> nbformat.NotebookNode:
    """Run the notebook at ``path`` in its own folder; returns it with outputs (raises on errors)."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    return nb


def main(names: list[str]) -> None:
    for name, cells in NOTEBOOKS.items():
        if names and name not in names:
            continue
        path = HERE / name
        nbformat.write(build(name, cells), path)
        nbformat.write(execute(path), path)
        print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
