"""``python -m avalanche_replay_ext``: a short reservoir-replay run on SplitDigits.

Trains Avalanche's ``Naive`` with ``ReplayPlugin(storage_policy=ReservoirSamplingBuffer)`` over the
five SplitDigits experiences and prints the accuracy on every experience's test set.
"""

from __future__ import annotations

import argparse
import warnings

import torch
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.models import SimpleMLP
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin, ReplayPlugin

from .benchmarks import SplitDigits
from .buffers import ReservoirSamplingBuffer


def run(mem_size: int = 200, epochs: int = 3, seed: int = 0) -> list[float]:
    """Train the demo run; return the final accuracy on each experience's test set."""
    torch.manual_seed(seed)
    benchmark = SplitDigits(5, seed=seed)
    model = SimpleMLP(num_classes=10, input_size=64, hidden_size=128, drop_rate=0.0)
    buffer = ReservoirSamplingBuffer(mem_size, seed=seed)
    with warnings.catch_warnings():  # we read the metrics ourselves
        warnings.filterwarnings("ignore", message="No loggers specified")
        evaluator = EvaluationPlugin(accuracy_metrics(experience=True), loggers=[])
    strategy = Naive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=32,
        train_epochs=epochs,
        eval_mb_size=256,
        plugins=[ReplayPlugin(mem_size, storage_policy=buffer)],
        evaluator=evaluator,
    )
    for exp in benchmark.train_stream:
        strategy.train(exp)
    results = strategy.eval(benchmark.test_stream)
    return [results[f"Top1_Acc_Exp/eval_phase/test_stream/Task000/Exp{i:03d}"] for i in range(5)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m avalanche_replay_ext", description=__doc__)
    parser.add_argument("--mem-size", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.mem_size < 1 or args.epochs < 1:
        parser.error("--mem-size and --epochs must be positive")
    accs = run(args.mem_size, args.epochs, args.seed)
    print(f"Naive + reservoir replay (mem {args.mem_size}) on SplitDigits, seed {args.seed}")
    for i, acc in enumerate(accs):
        print(f"experience {i}: accuracy {acc:.3f}")
    print(f"average: {sum(accs) / len(accs):.3f}")


if __name__ == "__main__":
    main()
