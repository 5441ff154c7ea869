"""GDumb on our greedy class-balanced sampler vs on Avalanche's ParametricBuffer(groupby="class").

The tutorial's third exercise suggests building GDumb's sampler from ``ParametricBuffer``; both
samplers plug into the same ``GDumb`` strategy through ``storage_policy``. SplitDigits, memory 100,
SimpleMLP(64-100-10), 16 passes, batch 16, seeds 0-2; final accuracy on the whole test stream.

    python perf/gdumb_samplers.py
    python perf/gdumb_samplers.py --quick    # 2 passes, seed 0
"""

from __future__ import annotations

import random
import statistics
import sys
import warnings

import torch
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.models import SimpleMLP
from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.storage_policy import ParametricBuffer

from avalanche_replay_ext import GDumb, SplitDigits
from avalanche_replay_ext.metrics import stream_accuracy_key


def run(sampler: str, seed: int, mem: int = 100, passes: int = 16) -> float:
    benchmark = SplitDigits(5, seed=0)
    torch.manual_seed(seed)
    random.seed(seed)  # Avalanche's ParametricBuffer draws from Python's global `random`
    model = SimpleMLP(num_classes=10, input_size=64, hidden_size=100, drop_rate=0.0)
    gdumb_kwargs = {"seed": seed}
    if sampler == "ParametricBuffer":
        gdumb_kwargs["storage_policy"] = ParametricBuffer(mem, groupby="class")
    strategy = GDumb(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-6),
        criterion=torch.nn.CrossEntropyLoss(),
        mem_size=mem,
        train_mb_size=16,
        train_epochs=passes,
        eval_mb_size=512,
        evaluator=EvaluationPlugin(accuracy_metrics(stream=True), loggers=[]),
        gdumb_kwargs=gdumb_kwargs,
    )
    for exp in benchmark.train_stream:
        strategy.train(exp)
    return strategy.eval(benchmark.test_stream)[stream_accuracy_key()]


def main(argv: list[str] | None = None) -> None:
    quick = "--quick" in (sys.argv[1:] if argv is None else argv)
    warnings.filterwarnings("ignore")
    seeds, passes = ([0], 2) if quick else ([0, 1, 2], 16)
    print(f"GDumb on SplitDigits, memory 100, {passes} passes, seeds {seeds}")
    for sampler in ("GreedyClassBalancedBuffer", "ParametricBuffer"):
        accs = [run(sampler, s, passes=passes) for s in seeds]
        print(f"{sampler:>26}: {statistics.mean(accs):.3f} +- {statistics.pstdev(accs):.3f}  per seed {accs}")


if __name__ == "__main__":
    main()
