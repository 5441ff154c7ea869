"""The ``avalanche-replay`` CLI (and ``python -m avalanche_replay_ext``): outputs and errors."""

from __future__ import annotations

import csv
import json
import re
import sys
from itertools import product

import pytest
from helpers import Started, start

from avalanche_replay_ext import SplitDigits
from avalanche_replay_ext.cli import main


def default_run() -> Started:
    return start("python -m avalanche_replay_ext", [sys.executable, "-m", "avalanche_replay_ext"], own_folder=True)


START_EARLY = {"test_default_run_on_split_digits": default_run}


def test_default_run_on_split_digits():
    """No arguments: alpha replay, mem 200, SplitDigits, 3 epochs, seed 0 (the README's first
    command); its final stream accuracy must be far above Naive's (the README quotes it). The one
    test that starts the CLI as a process (``python -m avalanche_replay_ext``, started when the
    tests are collected); the others call ``main`` in this one."""
    started = default_run()
    proc = started.result()
    assert proc.returncode == 0, proc.stderr
    final = float(re.search(r"alpha-replay\s+200\s+1\s+constant\s+1\s+(\d\.\d+)", proc.stdout).group(1))
    assert final > 0.7, proc.stdout
    per_exp = re.search(r"accuracy per experience after the stream: (.*)", proc.stdout).group(1).split()
    out = started.cwd / "runs" / "run"
    assert {p.name for p in out.iterdir()} == {"results.json", "results.csv", "accuracy_matrix.png"}
    (row,) = json.loads((out / "results.json").read_text())["results"]
    assert per_exp == [f"{a:.3f}" for a in row["accuracy_matrix"][-1]]  # the matrix's last row, as written
    assert f"{row['final_accuracy']:.3f}" == f"{final:.3f}"
    assert min(map(float, per_exp)) > 0.4  # replay: no experience forgotten
    assert "iterations" in proc.stderr  # tqdm bars


def test_run_gdumb_writes_sane_outputs(tmp_path):
    assert (
        main(
            [
                "run",
                "--strategy",
                "gdumb",
                "--mem-size",
                "100",
                "--epochs",
                "2",
                "--out",
                str(tmp_path),
                "--no-progress",
            ]
        )
        == 0
    )
    (row,) = json.loads((tmp_path / "results.json").read_text())["results"]
    matrix = row["accuracy_matrix"]
    assert len(matrix) == 5 and all(len(r) == 5 for r in matrix)
    assert all(0.0 <= a <= 1.0 for r in matrix for a in r)
    assert all(matrix[i][j] == 0.0 for i in range(5) for j in range(i + 1, 5))  # unseen classes masked
    assert matrix[0][0] > 0.8  # two classes learnt from the memory alone
    # the final accuracy is on the whole test stream: the last row weighted by the experiences' sizes
    sizes = [len(e.dataset) for e in SplitDigits(5, seed=0).test_stream]
    weighted = sum(a * n for a, n in zip(matrix[-1], sizes, strict=True)) / sum(sizes)
    assert row["strategy"] == "gdumb" and row["final_accuracy"] == pytest.approx(weighted, abs=1e-9)
    assert (tmp_path / "accuracy_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_has_one_row_per_setting_and_plots(tmp_path):
    args = [
        "sweep",
        "--strategy",
        "alpha-replay",
        "--mem-sizes",
        "10",
        "50",
        "--alphas",
        "0",
        "1",
        "--seeds",
        "0",
        "1",
        "--epochs",
        "1",
        "--out",
        str(tmp_path),
        "--no-progress",
    ]
    assert main(args) == 0
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert len(rows) == 8
    assert {(r["mem_size"], r["alpha"], r["seed"]) for r in rows} == {
        (m, a, s) for m in ("10", "50") for a in ("0.0", "1.0") for s in ("0", "1")
    }
    final = {(r["mem_size"], r["alpha"], r["seed"]): float(r["final_accuracy"]) for r in rows}
    for m, s in product(("10", "50"), ("0", "1")):  # alpha 0 is Naive: it forgets; alpha 1 replays
        assert final[m, "0.0", s] < 0.25 and final[m, "1.0", s] > final[m, "0.0", s] + 0.1, (m, s, final)
    pngs = {p.name for p in tmp_path.glob("*.png")}
    assert {"final_accuracy_vs_mem_size.png", "final_accuracy_vs_alpha.png", "accuracy_matrix_mem50_alpha1.png"} <= pngs
    assert len(json.loads((tmp_path / "results.json").read_text())["results"]) == 8


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--strategy", "bogus"], "invalid choice: 'bogus'"),
        (["run", "--mem-size", "-5"], "argument --mem-size: must be a positive int (>= 1), got -5"),
        (["run", "--mem-size", "2.5"], "argument --mem-size: must be a positive int (>= 1), got '2.5'"),
        (["run", "--alpha", "-1"], "argument --alpha: must be a finite number >= 0, got -1.0"),
        (["run", "--lr", "0"], "argument --lr: must be a finite number > 0, got 0.0"),
        (["sweep", "--mem-sizes", "0"], "argument --mem-sizes: must be a positive int (>= 1), got 0"),
        (["run", "--benchmark", "mnist-idx", "--data-dir", "/nonexistent/mnist"], "does not exist"),
        (["run", "--epochs", "0"], "argument --epochs: must be a positive int (>= 1), got 0"),
        (["run", "--seed", str(2**70)], f"argument --seed: must be an int in [0, 2**64), got {2**70}"),
        (["sweep", "--seeds", "0", "-1"], "argument --seeds: must be an int in [0, 2**64), got -1"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_memory_larger_than_any_stream_runs(tmp_path, capsys):
    """A huge --mem-size costs nothing until samples arrive: the run keeps every sample."""
    args = ["run", "--mem-size", str(10**12), "--epochs", "1", "--no-progress", "--out", str(tmp_path)]
    assert main(args) == 0
    (row,) = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert int(row["mem_size"]) == 10**12 and float(row["final_accuracy"]) > 0.4  # Naive stays below 0.25
