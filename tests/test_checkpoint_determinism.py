"""Fresh processes: same seeds give identical runs, and a run stopped after 2 of 5 experiences and
resumed twice from Avalanche's checkpoint, each time in a new process, ends exactly like an
uninterrupted one, with checkpoints that do not grow by a copy of the data at every resume. Every
process runs each method (alpha replay; alpha replay with a class-balanced reservoir and
experience-balanced retrieval; DER++; GDumb) in turn: five processes in all.

Four of them fork from multiprocessing's fork server, which imports Avalanche and the package once
(a new process with none of the tests' objects). The second uninterrupted run is a new interpreter,
so the runs compared also differ in their string hash seed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import _cl_run
import pytest
import torch
from avalanche.checkpointing import maybe_load_checkpoint, save_checkpoint
from helpers import make_naive, start_preloaded

from avalanche_replay_ext import AlphaReplayPlugin

RUN = Path(__file__).parent / "_cl_run.py"
METHODS = ("alpha", "balanced", "der", "gdumb")
SEVERAL_PROCESSES = True  # conftest runs these tests after the single-process ones


def launch(tmp: Path, name: str, *args: str, interpreter: bool = False) -> tuple[Any, Path]:
    """One process running every method in turn, writing ``tmp/name/<method>.json``: forked from
    the fork server, or with ``interpreter`` a new Python interpreter."""
    out = tmp / name
    out.mkdir()
    argv = [str(out), *METHODS, *args]
    if interpreter:
        return subprocess.Popen([sys.executable, str(RUN), *argv], stderr=subprocess.PIPE, text=True), out
    return start_preloaded(_cl_run.main, argv), out


def finish(proc: Any, out: Path) -> dict[str, dict]:
    if isinstance(proc, subprocess.Popen):
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
    else:
        proc.join(timeout=600)
        assert proc.exitcode == 0, "the run failed: its traceback is in the captured stderr"
    return {method: json.loads((out / f"{method}.json").read_text()) for method in METHODS}


@pytest.fixture(scope="module")
def all_runs(tmp_path_factory) -> dict[str, dict[str, dict]]:
    """Two uninterrupted runs (the first saving a checkpoint after every experience) and one run
    stopped after 2 experiences, resumed in a new process for 2 more, then resumed again to the
    end; every process runs both methods, each from its own checkpoint."""
    tmp = tmp_path_factory.mktemp("runs")
    chain = ("--checkpoint-dir", str(tmp / "chain"))
    first = [
        launch(tmp, "full1", "--checkpoint-dir", str(tmp / "full1-checkpoints")),
        launch(tmp, "stopped", *chain, "--stop-after", "2"),
    ]
    full1, stopped = (finish(*p) for p in first)
    second = [launch(tmp, "full2", interpreter=True), launch(tmp, "middle", *chain, "--stop-after", "4")]
    full2, middle = (finish(*p) for p in second)
    resumed = finish(*launch(tmp, "resumed", *chain))
    return {"full1": full1, "full2": full2, "stopped": stopped, "middle": middle, "resumed": resumed}


@pytest.fixture(params=METHODS)
def runs(request, all_runs) -> dict:
    """One method's runs."""
    return {"method": request.param, **{name: by_method[request.param] for name, by_method in all_runs.items()}}


def test_same_seeds_give_identical_buffers_losses_and_metrics_in_fresh_processes(runs):
    full1, full2 = runs["full1"], runs["full2"]
    assert list(full1["buffers"]) == ["0", "1", "2", "3", "4"]
    logits = runs["method"] == "der"  # the buffer's listing ends with a digest of its stored logits
    assert all(len(b) == 100 + logits for b in list(full1["buffers"].values())[1:])
    assert full1["buffers"] == full2["buffers"]
    assert full1["model"] == full2["model"] and full1["accuracy"] == full2["accuracy"]
    losses = [k for k in full1["metrics"] if k.startswith("Loss_MB")]
    assert losses and len(full1["metrics"][losses[0]][1]) > 50  # per-iteration losses are compared too
    assert full1["metrics"] == full2["metrics"]


def test_resuming_from_a_checkpoint_in_a_new_process_matches_the_uninterrupted_run(runs):
    full, stopped, middle, resumed = runs["full1"], runs["stopped"], runs["middle"], runs["resumed"]
    assert stopped["start"] == 0 and list(stopped["buffers"]) == ["0", "1"] and "accuracy" not in stopped
    assert middle["start"] == 2 and list(middle["buffers"]) == ["2", "3"] and "accuracy" not in middle
    assert resumed["start"] == 4 and list(resumed["buffers"]) == ["4"]
    assert {**stopped["buffers"], **middle["buffers"], **resumed["buffers"]} == full[
        "buffers"
    ]  # after every experience
    assert resumed["accuracy"] == full["accuracy"]
    assert resumed["model"] == full["model"]
    assert resumed["metrics"] == full["metrics"]  # the evaluator's history travels in the checkpoint
    if runs["method"] != "gdumb":
        family = "DER/loss_mse" if runs["method"] == "der" else "AlphaReplay/loss_memory"
        assert any(k.startswith(family) for k in full["metrics"])


NOISE = 1024
"""Bytes a checkpoint may differ from the uninterrupted run's by: two runs of one setting differ by
a few 64-byte archive records (pickle memo order follows the per-process string hash seed). What
each resume added before is far more: a copy of the training images (``IMAGE_BYTES``), or the index
lists and labels of a second benchmark's experience datasets (a buffer still pointing into the
unpickled ones next to the re-created benchmark's)."""
IMAGE_BYTES = 1437 * 64 * 4  # SplitDigits' training images, 8x8 float32


def test_checkpoints_stay_the_size_of_the_uninterrupted_runs_across_resumes(runs):
    full = runs["full1"]["checkpoint_bytes"]
    resumed = {**runs["stopped"]["checkpoint_bytes"], **runs["middle"]["checkpoint_bytes"]}
    resumed.update(runs["resumed"]["checkpoint_bytes"])
    assert list(full) == list(resumed) == ["0", "1", "2", "3", "4"]
    for exp in full:  # after 0, 0, 1, 1 and 2 resumes
        assert abs(resumed[exp] - full[exp]) <= NOISE, (exp, resumed, full)
    assert max(full.values()) < 200 * 1024 < IMAGE_BYTES  # no images inside


def test_checkpoints_hold_torch_optimizers_and_their_state(tmp_path, digits):
    """torch.optim hides its submodules from dill's name lookup; the package's reducer makes
    Avalanche's dill checkpoint of a strategy with an optimizer work, state included."""
    strategy = make_naive([], epochs=1)
    strategy.optimizer = torch.optim.Adam(strategy.model.parameters(), lr=0.01)
    strategy.train(digits.train_stream[0])
    save_checkpoint(strategy, tmp_path / "ckpt")
    restored, start = maybe_load_checkpoint(make_naive([], epochs=1), tmp_path / "ckpt")
    assert start == 1 and type(restored.optimizer) is torch.optim.Adam
    saved, loaded = strategy.optimizer.state_dict(), restored.optimizer.state_dict()
    assert saved["param_groups"] == loaded["param_groups"]
    for key, state in saved["state"].items():
        assert all(torch.equal(v, loaded["state"][key][k]) for k, v in state.items())
    # the restored optimizer steps the restored model's parameters, not copies of them
    assert restored.optimizer.param_groups[0]["params"][0] is next(restored.model.parameters())


def test_checkpoints_load_with_the_benchmark_as_unique_objects(tmp_path, digits):
    """Avalanche's recommended ``unique_objects=benchmark`` loads our checkpoints (its registering
    pass pickles the benchmark, which holds no images), and the buffer reads the live images."""
    strategy = make_naive([AlphaReplayPlugin(50, seed=0)], epochs=1)
    strategy.train(digits.train_stream[0])
    save_checkpoint(strategy, tmp_path / "ckpt")
    restored, start = maybe_load_checkpoint(
        make_naive([AlphaReplayPlugin(50, seed=0)], epochs=1), tmp_path / "ckpt", unique_objects=digits
    )
    before, after = (next(p for p in s.plugins if isinstance(p, AlphaReplayPlugin)) for s in (strategy, restored))
    before, after = before.storage_policy.buffer, after.storage_policy.buffer
    assert start == 1 and len(after) == len(before) == 50
    assert all(torch.equal(after[i][0], before[i][0]) and after[i][1:] == before[i][1:] for i in range(50))
    restored.train(digits.train_stream[1])
