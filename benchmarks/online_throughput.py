"""Online replay throughput, ours vs Avalanche 0.6, buffer updated after every 10-sample minibatch.

MNIST 8000/2000 (SplitMNISTIdx, $AVALANCHE_REPLAY_MNIST_DIR), 5 experiences, SimpleMLP, SGD(0.01,
momentum 0.9), batch 10, memory 1000, one pass. Avalanche's way: `split_online_stream` of 10-sample
experiences with `ReplayPlugin(ClassBalancedBuffer(1000))`. Ours: `AlphaReplayPlugin(1000, alpha=1,
update_every="iteration")` in one `train(exp)` per experience. Prints samples/s and final accuracy.

    python benchmarks/online_throughput.py            # ~1.5 min
    python benchmarks/online_throughput.py --quick    # first 2 experiences
"""

from __future__ import annotations

import argparse
import time
import warnings

import torch
from avalanche.benchmarks.scenarios.online import split_online_stream
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.models import SimpleMLP
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin, ReplayPlugin
from avalanche.training.storage_policy import ClassBalancedBuffer

from avalanche_replay_ext import AlphaReplayPlugin, SplitMNISTIdx


def strategy(plugins) -> Naive:
    torch.manual_seed(0)
    model = SimpleMLP()
    return Naive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9),
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=10,
        train_epochs=1,
        eval_mb_size=1000,
        plugins=plugins,
        evaluator=EvaluationPlugin(accuracy_metrics(stream=True), loggers=[]),
    )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    bm = SplitMNISTIdx(5, seed=0)
    train = list(bm.train_stream)[: 2 if args.quick else 5]
    n = sum(len(e.dataset) for e in train)
    results = {}
    for name in ("Avalanche ReplayPlugin(ClassBalancedBuffer) on split_online_stream", "ours AlphaReplayPlugin"):
        if name.startswith("ours"):
            s = strategy([AlphaReplayPlugin(1000, 1.0, update_every="iteration", seed=0)])
            experiences = train
        else:
            s = strategy([ReplayPlugin(1000, storage_policy=ClassBalancedBuffer(1000))])
            experiences = split_online_stream(train, experience_size=10, seed=0)
        start = time.perf_counter()
        for exp in experiences:
            s.train(exp)
        seconds = time.perf_counter() - start
        accuracy = s.eval(bm.test_stream)["Top1_Acc_Stream/eval_phase/test_stream/Task000"]
        results[name] = (n / seconds, accuracy)
        print(f"{name:<66} {n / seconds:>8.0f} samples/s  accuracy {accuracy:.3f}", flush=True)
    (theirs, acc_theirs), (ours, acc_ours) = results.values()
    print(f"ratio ours / Avalanche: {ours / theirs:.1f}x samples/s, accuracy {acc_ours:.3f} vs {acc_theirs:.3f}")
    return results


if __name__ == "__main__":
    main()
