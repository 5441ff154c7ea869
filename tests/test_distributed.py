"""Data-parallel training over torch.distributed: 2 processes, gloo backend, CPU, launched with
torchrun as Avalanche's distributed example is; every process must hold the same buffer. One
launch in all: it trains every mode, then tries the refusing modes with per-process seeds."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from mktestdocs import grab_code_blocks

from avalanche_replay_ext import SplitDigits

RUN = Path(__file__).parent / "_dist_run.py"
MODES = ["experience", "iteration", "der", "gdumb"]
REFUSED = ["iteration-rank-seeds", "gdumb-rank-seeds", "iteration-rank-mem-size", "experience-rank-prefill"]
SEVERAL_PROCESSES = True  # conftest runs these tests after the single-process ones


def torchrun(out: Path, *modes: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(RUN)]
    return subprocess.run([*cmd, str(out), *modes], capture_output=True, text=True, timeout=600)


README = Path(__file__).parent.parent / "README.md"


@pytest.fixture(scope="module")
def launched(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The README's train.py, then every mode trained, then every refusing mode with seed=rank, in
    the same two processes."""
    out = tmp_path_factory.mktemp("distributed")
    (script,) = grab_code_blocks(README.read_text(), lang="py")  # the one script shown for torchrun
    (out / "train.py").write_text(script)
    return out, torchrun(out, str(out / "train.py"), *MODES, *REFUSED)


def test_the_readme_script_runs_under_torchrun(launched):
    _, proc = launched
    assert len(re.findall(r"final accuracy 0\.\d{3} on process 0 of 2\n", proc.stdout)) == 1, proc.stdout[-2000:]


def test_the_launch_fails_for_the_refused_modes_only(launched):
    """The processes exit 1 after the refused modes (each mode's own test checks what it wrote)."""
    _, proc = launched
    assert proc.returncode != 0 and "exitcode: 1" in proc.stderr, proc.stderr[-3000:]
    # Avalanche prints the class (<class '...'>) of each plugin lacking distributed support: ours declare it
    assert "<class '" not in proc.stderr


@pytest.mark.parametrize("mode", MODES)
def test_two_processes_train_in_parallel_and_hold_the_same_buffer(launched, mode):
    out, proc = launched
    ranks = [json.loads((out / mode / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    sizes = [len(e.dataset) for e in SplitDigits(5, seed=0).train_stream]
    for i, (a, b) in enumerate(zip(ranks[0]["experiences"], ranks[1]["experiences"], strict=True)):
        assert len(a["buffer"]) == 100 and a["buffer"] == b["buffer"], i  # the same memory in every process
        assert a["model"] == b["model"], i  # gradients averaged: one model
        # every sample offered once to every process's buffer, with per-minibatch updates too
        assert a["n_seen"] == b["n_seen"] == sum(sizes[: i + 1]), i
        assert a["iterations"] == b["iterations"], i
        assert a["logits"] == b["logits"] and (a["logits"] is None) == (mode != "der"), i  # DER: the same logits
    if mode != "gdumb":  # data parallel: each process trains on half of each experience (batches of 16, 2 epochs)
        per_process = [math.ceil(n / 2) for n in sizes]
        assert ranks[0]["experiences"][-1]["iterations"] == sum(2 * math.ceil(m / 16) for m in per_process)


@pytest.mark.parametrize("mode", REFUSED)
def test_processes_with_different_seeds_sizes_or_buffers_stop_before_training(launched, mode):
    """seed=rank, mem_size=100+rank or buffers prefilled per process would give each process
    another buffer: every process raises, none trains."""
    out, proc = launched
    plugin = "GDumbPlugin" if mode.startswith("gdumb") else "AlphaReplayPlugin"
    message = (
        f"{mode} refused: {plugin} holds a different mem_size, buffer or random state on different processes "
        "(ranks [1] differ"
    )
    assert proc.stderr.count(message) == 2, proc.stderr[-3000:]  # raised in both processes
    assert not list((out / mode).glob("rank*.json"))
