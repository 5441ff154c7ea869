"""DER and DER++ on Avalanche's `IncrementalClassifier`, masked (its default) or not, beside ER on
the same model.

A masking classifier outputs its `mask_value` (-1000) for the units of classes not seen yet. Our
`DERPlugin` stores those units as NaN ("not stored"), so the MSE leaves them out; before, it pulled
a new class's unit back to -1000 on old samples and training diverged.

SplitDigits (5 experiences), `Sequential(Flatten, Linear(64, 128), ReLU, IncrementalClassifier(128))`,
SGD(0.05), batch 10, 5 epochs, memory 200, alpha 0.3 (DER and DER++), beta 0.5 (DER++), seeds 0-2.

    python perf/der_masking.py           # 3 seeds, 5 epochs
    python perf/der_masking.py --quick   # 1 seed, 1 epoch
"""

from __future__ import annotations

import argparse
import statistics
import warnings

import torch
from avalanche.models import IncrementalClassifier
from avalanche.training.plugins import EvaluationPlugin
from torch import nn

from avalanche_replay_ext import DER, AlphaReplay, SplitDigits

METHODS = {
    "ER": (AlphaReplay, {"update_every": "iteration"}),
    "DER": (DER, {"alpha": 0.3, "beta": 0.0}),
    "DER++": (DER, {"alpha": 0.3, "beta": 0.5}),
}


def accuracy(model: nn.Module, bm) -> float:
    """Accuracy over the whole test stream."""
    model.eval()
    hits = total = 0
    with torch.no_grad():
        for exp in bm.test_stream:
            for x, y, _ in torch.utils.data.DataLoader(exp.dataset.eval(), 512):
                hits += int((model(x).argmax(1) == y).sum())
                total += len(y)
    return hits / total


def run(method: str, masking: bool, seed: int, epochs: int) -> float:
    make, kwargs = METHODS[method]
    bm = SplitDigits(5, seed=seed)
    torch.manual_seed(seed)
    head = IncrementalClassifier(128, masking=masking)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), head)
    strategy = make(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05),
        criterion=nn.CrossEntropyLoss(),
        mem_size=200,
        seed=seed,
        train_mb_size=10,
        train_epochs=epochs,
        eval_mb_size=512,
        evaluator=EvaluationPlugin(loggers=[]),
        **kwargs,
    )
    for exp in bm.train_stream:
        strategy.train(exp)
    return accuracy(strategy.model, bm)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 seed, 1 epoch")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    seeds, epochs = ((0,), 1) if args.quick else ((0, 1, 2), 5)
    results = {}
    print(f"final accuracy on SplitDigits' test stream, seeds {list(seeds)}, {epochs} epochs")
    for masking in (True, False):
        for method in METHODS:
            accs = [run(method, masking, seed, epochs) for seed in seeds]
            results[masking, method] = accs
            spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
            per_seed = " ".join(f"{a:.3f}" for a in accs)
            print(f"masking={masking!s:5} {method:5} {statistics.mean(accs):.3f} +- {spread:.3f}  ({per_seed})")
    return results


if __name__ == "__main__":
    main()
