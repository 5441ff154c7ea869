"""What the replay benchmarks share: MNIST 8000/2000 in 5 experiences, SimpleMLP, batch 10, one
pass, SGD(lr 0.005, momentum 0.9), and a timed run reporting samples/s and final accuracy."""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable, Iterable

import torch
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.models import SimpleMLP
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin

from avalanche_replay_ext import SplitMNISTIdx
from avalanche_replay_ext.metrics import stream_accuracy_key

LR = 0.005  # one optimizer for every strategy; the replay plugins scale their loss differently (README)


QUICK_TEST_SIZE = 9000
"""In quick mode 9000 of the 10k images are the test set: 1000 train, 200 per experience."""


def setup(quick: bool) -> tuple[list, object]:
    """Train experiences (2 small ones in quick mode, else the 5 of MNIST 8000/2000) and the test
    stream; quiet, one thread."""
    warnings.filterwarnings("ignore")
    # Avalanche's deprecated `ExemplarsBuffer.update` (called by its ReplayPlugin) re-enables its
    # warning on every call, printing one per mini-experience: drop warnings at the source
    warnings.showwarning = lambda *args, **kwargs: None
    torch.set_num_threads(1)
    bm = SplitMNISTIdx(5, seed=0, test_size=QUICK_TEST_SIZE if quick else 2000)
    return list(bm.train_stream)[: 2 if quick else 5], bm.test_stream


def run(plugins: list | type, experiences: Iterable, n_samples: int, test_stream, seed: int) -> tuple[float, float]:
    """Train Naive + ``plugins`` (or, given a strategy class with its own arguments bound, e.g. a
    ``functools.partial`` of Avalanche's ``DER``, that strategy) on ``experiences``; return
    (training samples/s, final stream accuracy)."""
    torch.manual_seed(seed)
    model = SimpleMLP()
    template, plugins = (plugins, []) if callable(plugins) else (Naive, plugins)
    strategy = template(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9),
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=10,
        train_epochs=1,
        eval_mb_size=1000,
        plugins=plugins,
        evaluator=EvaluationPlugin(accuracy_metrics(stream=True), loggers=[]),
    )
    start = time.perf_counter()
    for exp in experiences:
        strategy.train(exp)
    seconds = time.perf_counter() - start
    accuracy = strategy.eval(test_stream)[stream_accuracy_key()]
    return n_samples / seconds, accuracy


def compare(methods: dict[str, Callable[[int], tuple[list, Iterable]]], seeds: list[int], train, test) -> dict:
    """Run every method (``seed -> (plugins, experiences)``) for every seed, interleaved so that
    machine noise hits all alike; print and return mean samples/s and accuracy mean / std."""
    n = sum(len(e.dataset) for e in train)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in methods}
    for seed in seeds:
        for name, make in methods.items():
            plugins, experiences = make(seed)
            runs[name].append(run(plugins, experiences, n, test, seed))
    print(f"{'method':<58}{'samples/s':>10}  accuracy (mean +- std over seeds {seeds})")
    results = {}
    for name, rs in runs.items():
        speed = statistics.mean(r[0] for r in rs)
        accs = [r[1] for r in rs]
        std = statistics.stdev(accs) if len(accs) > 1 else 0.0
        results[name] = {
            "samples_per_s": speed,
            "accuracy": statistics.mean(accs),
            "std": std,
            "runs": accs,
            "speeds": [r[0] for r in rs],
        }
        print(f"{name:<58}{speed:>10.0f}{statistics.mean(accs):>14.3f} +- {std:.3f}  {[round(a, 3) for a in accs]}")
    return results


def benchmark(
    argv: list[str] | None,
    doc: str,
    methods: Callable[[list], dict],
    pairs: list[tuple[str, str]],
    seeds: list[int],
    ceiling: str | None = None,
) -> dict:
    """A replay script's command line: ``--quick`` (2 experiences of 200 samples, seed 0) or the full run, then
    one ratio line per ``(ours, theirs)`` pair and, with a ``ceiling`` method (Naive in the same
    path), how far above ``theirs`` that ceiling lies."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    train, test = setup(args.quick)
    results = compare(methods(train), [0] if args.quick else seeds, train, test)
    for ours, theirs in pairs:
        o, t = results[ours], results[theirs]
        per_seed = ", ".join(f"{a / b:.2f}" for a, b in zip(o["speeds"], t["speeds"], strict=True))
        print(
            f"ratio {ours} / {theirs}: {o['samples_per_s'] / t['samples_per_s']:.2f}x samples/s "
            f"(per seed {per_seed}), accuracy {o['accuracy']:.3f} vs {t['accuracy']:.3f}"
        )
        if ceiling:
            print(f"  ceiling {ceiling} / {theirs}: {results[ceiling]['samples_per_s'] / t['samples_per_s']:.2f}x")
    return results
