"""Data-parallel training over torch.distributed: 2 processes, gloo backend, CPU, launched with
torchrun as Avalanche's distributed example is; every process must hold the same buffer."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from avalanche.training.plugins import SupervisedPlugin

from avalanche_replay_ext import AlphaReplayPlugin, GDumbPlugin, SplitDigits

RUN = Path(__file__).parent / "_dist_run.py"


def test_plugins_declare_distributed_support():
    assert AlphaReplayPlugin.supports_distributed is True
    assert GDumbPlugin.supports_distributed is True
    assert SupervisedPlugin.supports_distributed is False  # the default the declaration overrides


def torchrun(out: Path, mode: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(RUN)]
    return subprocess.run([*cmd, str(out), mode], capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("mode", ["experience", "iteration", "gdumb"])
def test_two_processes_train_in_parallel_and_hold_the_same_buffer(tmp_path, mode):
    proc = torchrun(tmp_path, mode)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Plugin" not in proc.stderr  # Avalanche prints the class of each plugin lacking distributed support
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    sizes = [len(e.dataset) for e in SplitDigits(5, seed=0).train_stream]
    for i, (a, b) in enumerate(zip(ranks[0]["experiences"], ranks[1]["experiences"], strict=True)):
        assert len(a["buffer"]) == 100 and a["buffer"] == b["buffer"], i  # the same memory in every process
        assert a["model"] == b["model"], i  # gradients averaged: one model
        # every sample offered once to every process's buffer, with per-minibatch updates too
        assert a["n_seen"] == b["n_seen"] == sum(sizes[: i + 1]), i
        assert a["iterations"] == b["iterations"], i
    if mode != "gdumb":  # data parallel: each process trains on half of each experience (batches of 16, 2 epochs)
        per_process = [math.ceil(n / 2) for n in sizes]
        assert ranks[0]["experiences"][-1]["iterations"] == sum(2 * math.ceil(m / 16) for m in per_process)


@pytest.mark.parametrize("mode", ["iteration", "gdumb"])
def test_processes_with_different_seeds_stop_before_training(tmp_path, mode):
    """seed=rank would give each process another buffer: every process raises, none trains."""
    proc = torchrun(tmp_path, f"{mode}-rank-seeds")
    assert proc.returncode != 0
    plugin = "GDumbPlugin" if mode == "gdumb" else "AlphaReplayPlugin"
    message = f"RuntimeError: {plugin} holds different random states on different processes (ranks [1] differ"
    assert proc.stderr.count(message) == 2, proc.stderr[-3000:]  # raised in both processes
    assert not list(tmp_path.glob("rank*.json"))
