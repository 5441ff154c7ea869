"""Seeded continual-learning runs in their own process, for the determinism and checkpoint tests.

    python tests/_cl_run.py OUT_DIR METHOD... [--checkpoint-dir DIR] [--stop-after K]

For each METHOD in turn (alpha: Naive + AlphaReplayPlugin; balanced: the same with a
class-balanced reservoir and experience-balanced retrieval; der: Naive + DERPlugin (DER++); gdumb:
GDumb), a run on SplitDigits
(5 experiences) with a benchmark, model and strategy of its own, seeded as :func:`build` does.
With ``--checkpoint-dir`` it resumes from DIR/METHOD/strategy.ckpt if present (Avalanche's
``maybe_load_checkpoint``) and saves there after every experience (``save_checkpoint``);
``--stop-after K`` ends the run once K experiences are done. Writes OUT_DIR/METHOD.json: per
experience trained in this process, the buffer contents in order (class, pixel digest) and the
checkpoint's size in bytes; at the end, the final stream accuracy, every metric the evaluator
collected (per-iteration losses included) and a digest of the model's parameters.
"""

from __future__ import annotations

import argparse
import json
import os
import warnings
from pathlib import Path

import torch
from avalanche.checkpointing import maybe_load_checkpoint, save_checkpoint
from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
from avalanche.models import SimpleMLP
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from helpers import digest, listing  # this folder is on sys.path: the script runs from it

from avalanche_replay_ext import (
    AlphaReplayPlugin,
    BalancedRetrieval,
    ClassBalancedReservoirBuffer,
    DERPlugin,
    GDumb,
    LinearAlpha,
    SplitDigits,
    alpha_replay_metrics,
    der_metrics,
)
from avalanche_replay_ext.metrics import stream_accuracy_key


def build(method: str):
    torch.manual_seed(0)
    model = SimpleMLP(num_classes=10, input_size=64, hidden_size=64, drop_rate=0.1)  # dropout: global RNG in play
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    evaluator = EvaluationPlugin(
        accuracy_metrics(experience=True, stream=True),
        loss_metrics(minibatch=True, stream=True),
        *({"gdumb": [], "der": der_metrics()}.get(method, alpha_replay_metrics())),
        loggers=[],
    )
    common = dict(criterion=torch.nn.CrossEntropyLoss(), train_mb_size=32, eval_mb_size=512, evaluator=evaluator)
    if method == "alpha":
        replay = AlphaReplayPlugin(100, LinearAlpha(0.5), update_every="iteration", seed=0)
        return Naive(model=model, optimizer=optimizer, train_epochs=2, plugins=[replay], **common)
    if method == "balanced":
        replay = AlphaReplayPlugin(
            100,
            storage_policy=ClassBalancedReservoirBuffer(100, seed=0),
            update_every="iteration",
            seed=0,
            retrieval=BalancedRetrieval("experience"),
        )
        return Naive(model=model, optimizer=optimizer, train_epochs=2, plugins=[replay], **common)
    if method == "der":
        der = DERPlugin(100, alpha=0.2, beta=0.5, seed=0)
        return Naive(model=model, optimizer=optimizer, train_epochs=2, plugins=[der], **common)
    return GDumb(model=model, optimizer=optimizer, mem_size=100, train_epochs=3, gdumb_kwargs={"seed": 0}, **common)


def memory(strategy, method: str):
    if method != "gdumb":
        plugin = next(p for p in strategy.plugins if isinstance(p, AlphaReplayPlugin))
        buffer = plugin.storage_policy
        logits = [digest(buffer.stored_extras("logits"))] if method == "der" else []
        return [*listing(buffer.buffer), *logits]
    return listing(strategy.gdumb_plugin.memory)


def run(method: str, out: Path, checkpoint: Path | None, stop_after: int | None) -> None:
    bm = SplitDigits(5, seed=0)
    strategy, start = build(method), 0
    if checkpoint:
        strategy, start = maybe_load_checkpoint(strategy, str(checkpoint))
    result = {"start": start, "buffers": {}, "checkpoint_bytes": {}}
    for exp in bm.train_stream[start:]:
        strategy.train(exp)
        result["buffers"][exp.current_experience] = memory(strategy, method)
        if checkpoint:
            save_checkpoint(strategy, str(checkpoint))
            result["checkpoint_bytes"][exp.current_experience] = os.path.getsize(checkpoint)
        if stop_after is not None and exp.current_experience + 1 >= stop_after:
            break
    else:
        final = strategy.eval(bm.test_stream)
        result["accuracy"] = final[stream_accuracy_key()]
        result["metrics"] = {
            k: [list(map(int, x)), list(map(float, v))] for k, (x, v) in strategy.evaluator.get_all_metrics().items()
        }
        result["model"] = digest(torch.cat([p.flatten() for p in strategy.model.parameters()]))
    out.write_text(json.dumps(result))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("methods", nargs="+", choices=["alpha", "balanced", "der", "gdumb"])
    parser.add_argument("--checkpoint-dir", type=Path)
    parser.add_argument("--stop-after", type=int)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    for method in args.methods:
        checkpoint = None
        if args.checkpoint_dir:  # one file name for all: torch.save repeats it in every record of the archive
            (args.checkpoint_dir / method).mkdir(parents=True, exist_ok=True)
            checkpoint = args.checkpoint_dir / method / "strategy.ckpt"
        run(method, args.out / f"{method}.json", checkpoint, args.stop_after)


if __name__ == "__main__":
    main()
