"""Refactors change no behaviour: runs of each replay strategy give, bit for bit, the buffers,
memory minibatches, losses and models recorded before (``tests/data/digests.json``).

Re-record only for an intended change of behaviour, and say so in the CHANGELOG:

    python tests/test_digests.py tests/data/digests.json
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from avalanche.training.plugins import ReplayPlugin, SupervisedPlugin
from helpers import listing, make_naive

from avalanche_replay_ext import (
    AlphaReplayPlugin,
    BalancedRetrieval,
    ClassBalancedReservoirBuffer,
    DERPlugin,
    GDumbPlugin,
    LinearAlpha,
    MIRRetrieval,
    ReservoirSamplingBuffer,
    SplitDigits,
)

RECORDED = Path(__file__).parent / "data" / "digests.json"

RUNS: dict[str, Callable[[], SupervisedPlugin]] = {
    "alpha replay, experience, linear alpha": lambda: AlphaReplayPlugin(100, LinearAlpha(0.5), seed=0),
    "alpha replay, iteration": lambda: AlphaReplayPlugin(100, 1.0, update_every="iteration", seed=1),
    "alpha replay, class-balanced reservoir, balanced retrieval": lambda: AlphaReplayPlugin(
        100,
        0.7,
        storage_policy=ClassBalancedReservoirBuffer(100, seed=2),
        update_every="iteration",
        retrieval=BalancedRetrieval("class"),
        seed=2,
    ),
    "alpha replay, MIR": lambda: AlphaReplayPlugin(
        100, 1.0, 8, update_every="iteration", retrieval=MIRRetrieval(24), seed=3
    ),
    "DER": lambda: DERPlugin(100, 0.3, 0.0, 8, seed=4),
    "DER++": lambda: DERPlugin(100, 0.3, 0.5, 8, seed=5),
    "DER++, one shared minibatch": lambda: DERPlugin(100, 0.3, 0.5, 8, seed=6, share_minibatch=True),
    "GDumb": lambda: GDumbPlugin(60, seed=7),
    "Avalanche ReplayPlugin, our reservoir": lambda: ReplayPlugin(
        100, storage_policy=ReservoirSamplingBuffer(100, seed=8)
    ),
}


def _hash(values: list) -> str:
    return hashlib.sha256(json.dumps(values).encode()).hexdigest()[:20]


class Recorder(SupervisedPlugin):
    """Listed last: each iteration's loss (exact, as a hex float) and memory minibatch."""

    def __init__(self, replay: SupervisedPlugin) -> None:
        super().__init__()
        self.replay, self.losses, self.memory = replay, [], []

    def before_update(self, strategy, **kwargs):
        self.losses.append(strategy.loss.item().hex())
        mem = getattr(self.replay, "memory_minibatch", None)
        self.memory.append(None if mem is None else [listing(list(zip(mem[0], mem[1], strict=True)))])


def buffer_listing(plugin: SupervisedPlugin) -> list:
    if isinstance(plugin, GDumbPlugin):
        return listing(plugin.memory)
    return listing(plugin.storage_policy.buffer)


def run(name: str) -> dict:
    bm = SplitDigits(5, seed=0)
    plugin = RUNS[name]()
    recorder = Recorder(plugin)
    strategy = make_naive([plugin, recorder], epochs=2 if name == "GDumb" else 1, mb_size=16, seed=11)
    buffers = []
    for exp in list(bm.train_stream)[:3]:
        strategy.train(exp)
        buffers.append(_hash(buffer_listing(plugin)))
    params = torch.cat([p.detach().flatten() for p in strategy.model.parameters()])
    logits = plugin.storage_policy.stored_extras("logits") if isinstance(plugin, DERPlugin) else None
    return {
        "logits": None if logits is None else hashlib.sha256(logits.numpy().tobytes()).hexdigest()[:20],
        "buffers": buffers,
        "losses": _hash(recorder.losses),
        "memory minibatches": _hash(recorder.memory),
        "iterations": len(recorder.losses),
        "model": hashlib.sha256(params.numpy().tobytes()).hexdigest()[:20],
    }


@pytest.mark.parametrize("name", list(RUNS))
def test_runs_are_bit_identical_to_the_recorded_ones(name):
    recorded = json.loads(RECORDED.read_text())[name]
    assert run(name) == recorded


if __name__ == "__main__":
    torch.set_num_threads(1)  # as conftest.py: floating-point sums depend on the thread count
    out = Path(sys.argv[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({name: run(name) for name in RUNS}, indent=1) + "\n")
