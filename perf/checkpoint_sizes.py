"""Checkpoint file sizes when a run is resumed in a new process after every experience.

Each case trains Naive (SimpleMLP with 128 hidden units, SGD, batch 32, one epoch) on 5
experiences of MNIST 8000/2000 ($AVALANCHE_REPLAY_MNIST_DIR) with a 200-slot replay memory. The
resumed run is a chain of fresh processes: each re-creates the benchmark, calls Avalanche's
`maybe_load_checkpoint`, trains the next experience, `save_checkpoint`s and exits (4 resumes). The
uninterrupted run trains all experiences in one process, saving after each. The table gives the
sizes after each experience and their ratio: the evaluator's history and the buffer grow in both
runs alike, so a ratio above 1 is what the resumes alone added.

Cases: on our `SplitMNISTIdx`, our `AlphaReplayPlugin(200, update_every="iteration")`, Avalanche's
`ReplayPlugin` with our `ReservoirSamplingBuffer(200, seed=0)` and with its own default buffer; then
"your own dataset", the same images in a benchmark built with Avalanche's `nc_benchmark`, with our
AlphaReplayPlugin: over torch `TensorDataset`s (a copy of the images per resume), over a dataset
class that pickles as its recipe via `__reduce__` (the remedy we recommend, see the README), and
over one registered with Avalanche's `constructor_based_serialization(deduplicate=True)`, loaded
with and without `unique_objects=benchmark` (both classes in `_own_dataset.py`).

    python perf/checkpoint_sizes.py            # 5 experiences (4 resumes)
    python perf/checkpoint_sizes.py --quick    # 2 experiences (1 resume)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import torch
from _measure import join, start_fresh_process
from _own_dataset import RegisteredPart, own_tensors, recipe_part
from avalanche.benchmarks import nc_benchmark
from avalanche.checkpointing import maybe_load_checkpoint, save_checkpoint
from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
from avalanche.models import SimpleMLP
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin, ReplayPlugin
from torch.utils.data import Dataset, TensorDataset

from avalanche_replay_ext import AlphaReplayPlugin, ReservoirSamplingBuffer, SplitMNISTIdx
from avalanche_replay_ext.benchmarks.mnist_idx import mnist_dir

MB = 1e6


# ---- the cases ---------------------------------------------------------------------------------
class Case(NamedTuple):
    name: str
    benchmark: Callable[[str], Any]  # MNIST folder -> benchmark
    plugins: Callable[[], list]
    unique_objects: bool = False  # pass the benchmark as maybe_load_checkpoint's unique_objects


def own_benchmark(make: Callable[[str, str], Dataset]) -> Callable[[str], Any]:
    """A benchmark as a user builds one: ``nc_benchmark`` over their train and test datasets."""
    return lambda root: nc_benchmark(
        make(root, "train"), make(root, "test"), n_experiences=5, task_labels=False, seed=0
    )


def alpha() -> list:
    return [AlphaReplayPlugin(200, update_every="iteration", seed=0)]


def split_mnist(root: str) -> Any:
    return SplitMNISTIdx(5, root=root, seed=0)


CASES = [
    Case("SplitMNISTIdx, ours AlphaReplayPlugin(200, iteration)", split_mnist, alpha),
    Case(
        "SplitMNISTIdx, ReplayPlugin(ours Reservoir(200, seed=0))",
        split_mnist,
        lambda: [ReplayPlugin(mem_size=200, storage_policy=ReservoirSamplingBuffer(200, seed=0))],
    ),
    Case("SplitMNISTIdx, ReplayPlugin(200) (Avalanche's buffer)", split_mnist, lambda: [ReplayPlugin(mem_size=200)]),
    Case(
        "own: nc_benchmark(TensorDataset), ours Alpha",
        own_benchmark(lambda r, p: TensorDataset(*own_tensors(r, p))),
        alpha,
    ),
    Case("own: dataset pickling as recipe (__reduce__)", own_benchmark(recipe_part), alpha),
    Case("own: constructor_based_serialization + unique", own_benchmark(RegisteredPart), alpha, True),
    Case("own: constructor_based_serialization, no unique", own_benchmark(RegisteredPart), alpha),
]


# ---- one process: the uninterrupted run, or one step of the resumed chain ------------------------
def strategy(plugins: list) -> Naive:
    """Naive on SimpleMLP(128 hidden), SGD(0.01, momentum 0.9), batch 32, one epoch, no logging."""
    torch.manual_seed(0)
    model = SimpleMLP(hidden_size=128)
    evaluator = EvaluationPlugin(accuracy_metrics(epoch=True), loss_metrics(minibatch=True, epoch=True), loggers=[])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return Naive(
        model=model,
        optimizer=optimizer,
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=32,
        train_epochs=1,
        eval_mb_size=1000,
        plugins=plugins,
        evaluator=evaluator,
    )


def run_case(case: Case, folder: Path, root: str, resumed: bool, n_experiences: int) -> dict[int, int]:
    """Train one case and save its checkpoints; return their sizes in bytes by experience.

    :param case: what to train.
    :param folder: where this case's checkpoints go.
    :param root: the MNIST folder.
    :param resumed: resume from ``folder/strategy.ckpt`` and train one experience, else train
        ``n_experiences`` from scratch, saving each checkpoint in a folder of its own (always the
        same file name: torch.save repeats it in every record of the archive).
    :param n_experiences: experiences of the uninterrupted run.
    """
    bm, learner, start = case.benchmark(root), strategy(case.plugins()), 0
    if resumed:
        unique = bm if case.unique_objects else None
        learner, start = maybe_load_checkpoint(learner, folder / "strategy.ckpt", unique_objects=unique)
    sizes = {}
    for exp in bm.train_stream[start : start + 1 if resumed else n_experiences]:
        learner.train(exp)
        path = folder / ("" if resumed else str(exp.current_experience)) / "strategy.ckpt"
        path.parent.mkdir(parents=True, exist_ok=True)
        save_checkpoint(learner, path)
        sizes[exp.current_experience] = path.stat().st_size
    return sizes


def worker(folder: Path, resumed: bool, n_experiences: int) -> None:
    """One process: every case, resumed one step or uninterrupted; sizes to ``folder`` as JSON.
    Its output is dropped: Avalanche prints "Mapping cpu to cpu" per unpickled device."""
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - for the rest of this process
    warnings.filterwarnings("ignore")
    warnings.showwarning = lambda *args, **kwargs: None  # Avalanche's ReplayPlugin warns on every update
    torch.set_num_threads(1)
    root = str(mnist_dir().resolve())
    mode = "resumed" if resumed else "full"
    sizes = {c.name: run_case(c, folder / mode / str(i), root, resumed, n_experiences) for i, c in enumerate(CASES)}
    step = next(iter(sizes[CASES[0].name])) if resumed else "all"
    (folder / f"{mode}-{step}.json").write_text(json.dumps(sizes))


# ---- the driver --------------------------------------------------------------------------------
def measure(n_experiences: int) -> dict[str, dict[str, list[int]]]:
    """Sizes after each experience, ``{case: {"resumed": [...], "full": [...]}}``: the
    uninterrupted process runs beside the chain of resumed ones (2 processes at a time)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        full = start_fresh_process(worker, folder, False, n_experiences)
        for _ in range(n_experiences):
            join(start_fresh_process(worker, folder, True, n_experiences))
        join(full)
        read = {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")}
    out = {}
    for case in CASES:
        resumed = {int(k): v for step in range(n_experiences) for k, v in read[f"resumed-{step}"][case.name].items()}
        full = {int(k): v for k, v in read["full-all"][case.name].items()}
        out[case.name] = {"resumed": [resumed[k] for k in sorted(resumed)], "full": [full[k] for k in sorted(full)]}
    return out


def report(sizes: dict[str, dict[str, list[int]]]) -> None:
    """Print MB per experience (resumed / uninterrupted, ratio) and the growth per resume."""
    n = len(next(iter(sizes.values()))["full"])
    print("checkpoint MB after each experience: resumed (new process per experience) / uninterrupted, ratio")
    print(f"{'case':<56}" + "".join(f"{f'exp {k + 1}':>22}" for k in range(n)) + "   extra per resume")
    for name, s in sizes.items():
        cells = "".join(
            f"{r / MB:>9.2f} /{f / MB:>6.2f} {r / f:>4.2f}x" for r, f in zip(s["resumed"], s["full"], strict=True)
        )
        extra = (s["resumed"][-1] - s["full"][-1]) / max(n - 1, 1)
        print(f"{name:<56}{cells}   {extra / 1e3:>8.1f} KB")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 experiences (1 resume)")
    args = parser.parse_args(argv)
    sizes = measure(2 if args.quick else 5)
    report(sizes)
    return sizes


if __name__ == "__main__":
    main()
