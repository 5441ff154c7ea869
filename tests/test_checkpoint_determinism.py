"""Fresh processes: same seeds give identical runs, and a run stopped after 2 of 5 experiences and
resumed from Avalanche's checkpoint in a new process ends exactly like an uninterrupted one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).parent / "_cl_run.py"


def launch(tmp: Path, method: str, name: str, *args: str) -> tuple[subprocess.Popen, Path]:
    out = tmp / f"{method}-{name}.json"
    proc = subprocess.Popen([sys.executable, str(RUN), method, str(out), *args], stderr=subprocess.PIPE, text=True)
    return proc, out


def finish(proc: subprocess.Popen, out: Path) -> dict:
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module", params=["alpha", "gdumb"])
def runs(request, tmp_path_factory) -> dict:
    """Two uninterrupted runs and one stopped-and-resumed run of the same seeded setting."""
    method, tmp = request.param, tmp_path_factory.mktemp(request.param)
    checkpoint = str(tmp / "strategy.ckpt")
    first = [
        launch(tmp, method, "full1"),
        launch(tmp, method, "stopped", "--checkpoint", checkpoint, "--stop-after", "2"),
    ]
    full1, stopped = (finish(*p) for p in first)
    second = [launch(tmp, method, "full2"), launch(tmp, method, "resumed", "--checkpoint", checkpoint)]
    full2, resumed = (finish(*p) for p in second)
    return {"method": method, "full1": full1, "full2": full2, "stopped": stopped, "resumed": resumed}


def test_same_seeds_give_identical_buffers_losses_and_metrics_in_fresh_processes(runs):
    full1, full2 = runs["full1"], runs["full2"]
    assert list(full1["buffers"]) == ["0", "1", "2", "3", "4"]
    assert all(len(b) == 100 for b in list(full1["buffers"].values())[1:])
    assert full1["buffers"] == full2["buffers"]
    assert full1["model"] == full2["model"] and full1["accuracy"] == full2["accuracy"]
    losses = [k for k in full1["metrics"] if k.startswith("Loss_MB")]
    assert losses and len(full1["metrics"][losses[0]][1]) > 50  # per-iteration losses are compared too
    assert full1["metrics"] == full2["metrics"]


def test_resuming_from_a_checkpoint_in_a_new_process_matches_the_uninterrupted_run(runs):
    full, stopped, resumed = runs["full1"], runs["stopped"], runs["resumed"]
    assert stopped["start"] == 0 and list(stopped["buffers"]) == ["0", "1"] and "accuracy" not in stopped
    assert resumed["start"] == 2 and list(resumed["buffers"]) == ["2", "3", "4"]
    assert {**stopped["buffers"], **resumed["buffers"]} == full["buffers"]  # after every experience
    assert resumed["accuracy"] == full["accuracy"]
    assert resumed["model"] == full["model"]
    assert resumed["metrics"] == full["metrics"]  # the evaluator's history travels in the checkpoint
    if runs["method"] == "alpha":
        assert any(k.startswith("AlphaReplay/loss_memory") for k in full["metrics"])


def test_checkpoints_hold_torch_optimizers_and_their_state(tmp_path, digits):
    """torch.optim hides its submodules from dill's name lookup; the package's reducer makes
    Avalanche's dill checkpoint of a strategy with an optimizer work, state included."""
    import torch
    from avalanche.checkpointing import maybe_load_checkpoint, save_checkpoint
    from conftest import make_naive

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
