"""The ``avalanche-replay`` CLI (and ``python -m avalanche_replay_ext``): outputs and errors."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys

import pytest

from avalanche_replay_ext.cli import main


def cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "avalanche_replay_ext", *args], capture_output=True, text=True, timeout=600, cwd=cwd
    )


def test_default_run_on_split_digits(tmp_path):
    """No arguments: alpha replay, mem 200, SplitDigits, 3 epochs, seed 0 (the README's first
    command); its final stream accuracy must be far above Naive's (the README quotes it)."""
    proc = cli(cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    final = float(re.search(r"alpha-replay\s+200\s+1\s+constant\s+1\s+(\d\.\d+)", proc.stdout).group(1))
    assert final > 0.7, proc.stdout
    per_exp = re.search(r"accuracy per experience after the stream: (.*)", proc.stdout).group(1).split()
    assert len(per_exp) == 5 and all(0 <= float(a) <= 1 for a in per_exp)
    out = tmp_path / "runs" / "run"
    assert {p.name for p in out.iterdir()} == {"results.json", "results.csv", "accuracy_matrix.png"}
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
    assert row["strategy"] == "gdumb" and 0.0 <= row["final_accuracy"] <= 1.0
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
    assert all(0.0 <= float(r["final_accuracy"]) <= 1.0 for r in rows)
    pngs = {p.name for p in tmp_path.glob("*.png")}
    assert {"final_accuracy_vs_mem_size.png", "final_accuracy_vs_alpha.png", "accuracy_matrix_mem50_alpha1.png"} <= pngs
    assert len(json.loads((tmp_path / "results.json").read_text())["results"]) == 8


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--strategy", "bogus"], "invalid choice: 'bogus'"),
        (["run", "--mem-size", "-5"], "expected a positive integer, got -5"),
        (["run", "--mem-size", "2.5"], "expected a positive integer, got '2.5'"),
        (["run", "--alpha", "-1"], "expected a finite number >= 0"),
        (["sweep", "--mem-sizes", "0"], "expected a positive integer, got 0"),
        (["run", "--benchmark", "mnist-idx", "--data-dir", "/nonexistent/mnist"], "does not exist"),
        (["run", "--epochs", "0"], "expected a positive integer, got 0"),
        (["run", "--seed", str(2**70)], f"expected an integer in [0, 2**64), got '{2**70}'"),
        (["sweep", "--seeds", "0", "-1"], "expected an integer in [0, 2**64), got '-1'"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(args, message):
    proc = cli(*args)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_a_memory_larger_than_any_stream_runs(tmp_path, capsys):
    """A huge --mem-size costs nothing until samples arrive: the run keeps every sample."""
    args = ["run", "--mem-size", str(10**12), "--epochs", "1", "--no-progress", "--out", str(tmp_path)]
    assert main(args) == 0
    (row,) = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert int(row["mem_size"]) == 10**12 and 0 < float(row["final_accuracy"]) <= 1
