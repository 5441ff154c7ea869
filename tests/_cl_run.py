"""A seeded continual-learning run in its own process, for the determinism and checkpoint tests.

    python tests/_cl_run.py {alpha,gdumb} OUT.json [--checkpoint FILE] [--stop-after K]

Trains on SplitDigits (5 experiences) with Naive + AlphaReplayPlugin or with GDumb. With
``--checkpoint`` it resumes from FILE if present (Avalanche's ``maybe_load_checkpoint``) and saves
after every experience (``save_checkpoint``); ``--stop-after K`` exits once K experiences are done.
Writes, per experience trained in this process, the buffer contents in order (class, pixel
digest) and the checkpoint's size in bytes; at the end, the final stream accuracy, every metric the
evaluator collected (per-iteration losses included) and a digest of the model's parameters.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import warnings

import torch
from avalanche.checkpointing import maybe_load_checkpoint, save_checkpoint
from avalanche.evaluation.metrics import accuracy_metrics, loss_metrics
from avalanche.models import SimpleMLP
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin

from avalanche_replay_ext import AlphaReplayPlugin, GDumb, LinearAlpha, SplitDigits, alpha_replay_metrics


def digest(t: torch.Tensor) -> str:
    return hashlib.sha1(t.detach().contiguous().numpy().tobytes()).hexdigest()[:16]


def build(method: str):
    torch.manual_seed(0)
    model = SimpleMLP(num_classes=10, input_size=64, hidden_size=64, drop_rate=0.1)  # dropout: global RNG in play
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    evaluator = EvaluationPlugin(
        accuracy_metrics(experience=True, stream=True),
        loss_metrics(minibatch=True, stream=True),
        *(alpha_replay_metrics() if method == "alpha" else []),
        loggers=[],
    )
    common = dict(criterion=torch.nn.CrossEntropyLoss(), train_mb_size=32, eval_mb_size=512, evaluator=evaluator)
    if method == "alpha":
        replay = AlphaReplayPlugin(100, LinearAlpha(0.5), update_every="iteration", seed=0)
        return Naive(model=model, optimizer=optimizer, train_epochs=2, plugins=[replay], **common)
    return GDumb(model=model, optimizer=optimizer, mem_size=100, train_epochs=3, gdumb_kwargs={"seed": 0}, **common)


def listing(data) -> list[list]:
    """A dataset's samples in order, as (class, pixel digest)."""
    return [[int(y), digest(x)] for x, y, *_ in (data[i] for i in range(len(data)))]


def memory(strategy, method: str):
    if method == "alpha":
        plugin = next(p for p in strategy.plugins if isinstance(p, AlphaReplayPlugin))
        return listing(plugin.storage_policy.buffer)
    return listing(strategy.gdumb_plugin.memory)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("method", choices=["alpha", "gdumb"])
    parser.add_argument("out")
    parser.add_argument("--checkpoint")
    parser.add_argument("--stop-after", type=int)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    bm = SplitDigits(5, seed=0)
    strategy, start = build(args.method), 0
    if args.checkpoint:
        strategy, start = maybe_load_checkpoint(strategy, args.checkpoint)
    result = {"start": start, "buffers": {}, "checkpoint_bytes": {}}
    for exp in bm.train_stream[start:]:
        strategy.train(exp)
        result["buffers"][exp.current_experience] = memory(strategy, args.method)
        if args.checkpoint:
            save_checkpoint(strategy, args.checkpoint)
            result["checkpoint_bytes"][exp.current_experience] = os.path.getsize(args.checkpoint)
        if args.stop_after is not None and exp.current_experience + 1 >= args.stop_after:
            break
    else:
        final = strategy.eval(bm.test_stream)
        result["accuracy"] = final["Top1_Acc_Stream/eval_phase/test_stream/Task000"]
        result["metrics"] = {
            k: [list(map(int, x)), list(map(float, v))] for k, (x, v) in strategy.evaluator.get_all_metrics().items()
        }
        result["model"] = digest(torch.cat([p.flatten() for p in strategy.model.parameters()]))
    with open(args.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
