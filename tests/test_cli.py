"""The ``avalanche-replay`` CLI (and ``python -m avalanche_replay_ext``): outputs and errors."""

from __future__ import annotations

import ast
import csv
import gzip
import json
import re
import statistics
import sys
from importlib.metadata import version
from itertools import pairwise, product
from pathlib import Path

import pytest
from helpers import Started, start
from PIL import Image

import avalanche_replay_ext
from avalanche_replay_ext import SplitDigits, benchmarks, cli, plots, settings
from avalanche_replay_ext.cli import main

VERSIONS = {"avalanche_replay_ext": version("avalanche-replay-ext"), "avalanche_lib": version("avalanche-lib")}
FLOAT32_MAX, FLOAT32_TINY = 3.4028234663852886e38, 1.1754943508222875e-38  # float32's largest and smallest normal
POSITIVE_INT = "must be a positive int (>= 1) and <= 2**63 - 1 (int64's largest)"
WEIGHT = f"must be a finite number >= 0 and <= {FLOAT32_MAX!r} (float32's largest)"
LR = f"must be a finite number in [{FLOAT32_TINY!r}, {FLOAT32_MAX!r}] (float32's positive normal range)"


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
    final = float(
        re.search(r"alpha-replay\s+200\s+1\s+constant\s+-\s+reservoir\s+random\s+1\s+(\d\.\d+)", proc.stdout)[1]
    )
    assert final > 0.7, proc.stdout
    per_exp = re.search(r"accuracy per experience after the stream: (.*)", proc.stdout).group(1).split()
    out = started.cwd / "runs" / "run"
    assert {p.name for p in out.iterdir()} == {"results.json", "results.csv", "accuracy_matrix.png"}
    record = json.loads((out / "results.json").read_text())
    (row,) = record["results"]
    assert per_exp == [f"{a:.3f}" for a in row["accuracy_matrix"][-1]]  # the matrix's last row, as written
    assert f"{row['final_accuracy']:.3f}" == f"{final:.3f}"
    assert min(map(float, per_exp)) > 0.4  # replay: no experience forgotten
    assert record["command_line"] == "avalanche-replay" and record["seeds"] == [0]
    assert VERSIONS.items() <= record["versions"].items() and record["versions"]["torch"]
    # stderr is a file, not a terminal: one plain line per experience, no bars, escape codes or warnings
    lines = proc.stderr.splitlines()
    assert [re.sub(r" \(\d+\.\d s\)$", "", line) for line in lines] == [
        f"alpha-replay, mem 200, alpha 1 (constant), reservoir + random, seed 0: experience {i}/5 trained and evaluated"
        for i in range(1, 6)
    ], proc.stderr
    assert "\r" not in proc.stderr and "\x1b" not in proc.stderr


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
    assert (row["mem_size"], row["alpha"], row["alpha_schedule"], row["beta"]) == (100, None, None, None)  # no alpha
    assert (row["storage"], row["retrieval"], row["imbalance_ratio"]) == (None, None, None)  # nor these
    (csv_row,) = csv.DictReader((tmp_path / "results.csv").open())
    assert (csv_row["mem_size"], csv_row["alpha"], csv_row["alpha_schedule"], csv_row["beta"]) == ("100", "", "", "")
    assert (csv_row["storage"], csv_row["retrieval"], csv_row["imbalance_ratio"]) == ("", "", "")
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
    record = json.loads((tmp_path / "results.json").read_text())
    assert len(record["results"]) == 8 and record["command"] == "sweep" and record["seeds"] == [0, 1]
    command_line = "avalanche-replay " + " ".join(args)  # no character to quote in these arguments
    assert record["command_line"] == command_line and VERSIONS.items() <= record["versions"].items()
    assert {(r["command_line"], r["avalanche_lib_version"]) for r in rows} == {
        (command_line, VERSIONS["avalanche_lib"])
    }
    png = Image.open(tmp_path / "final_accuracy_vs_mem_size.png").text
    assert png["Description"] == command_line and "seeds: 0 1;" in png["Comment"]
    assert png["Title"].startswith("alpha-replay on split-digits: final accuracy vs memory size, one line per alpha")
    assert "mean over 2 seeds" in png["Title"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--strategy", "bogus"], "invalid choice: 'bogus'"),
        (["run", "--mem-size", "-5"], f"argument --mem-size: {POSITIVE_INT}, got -5"),
        (["run", "--mem-size", "2.5"], f"argument --mem-size: {POSITIVE_INT}, got '2.5'"),
        (["run", "--alpha", "-1"], f"argument --alpha: {WEIGHT}, got -1.0"),
        (["run", "--lr", "0"], f"argument --lr: {LR}, got 0.0"),
        (["sweep", "--mem-sizes", "0"], f"argument --mem-sizes: {POSITIVE_INT}, got 0"),
        (
            ["run", "--benchmark", "mnist-idx", "--data-dir", "/nonexistent/mnist"],
            "MNIST folder '/nonexistent/mnist' (from --data-dir) does not exist; pass --data-dir DIR or set "
            "$AVALANCHE_REPLAY_MNIST_DIR",
        ),
        (["run", "--data-dir", "/tmp"], "argument --data-dir: applies to --benchmark mnist-idx only, not split-digits"),
        (
            ["run", "--strategy", "replay", "--alpha", "5"],
            "argument --alpha: applies to --strategy alpha-replay, der or derpp only, not replay",
        ),
        (
            ["run", "--strategy", "replay", "--alpha-schedule", "linear"],
            "argument --alpha-schedule: applies to --strategy alpha-replay, der or derpp only, not replay",
        ),
        (
            ["--strategy", "naive", "--mem-size", "10"],  # no command: run's options
            "argument --mem-size: applies to --strategy replay, alpha-replay, gdumb, der or derpp only, not naive",
        ),
        (
            ["sweep", "--strategy", "gdumb", "--alphas", "0", "1"],
            "argument --alphas: applies to --strategy alpha-replay",
        ),
        (["sweep", "--strategy", "naive", "--mem-sizes", "10"], "argument --mem-sizes: applies to --strategy replay,"),
        (["run", "--epochs", "0"], f"argument --epochs: {POSITIVE_INT}, got 0"),
        (["run", "--seed", str(2**70)], f"argument --seed: must be an int in [0, 2**64), got {2**70}"),
        (["sweep", "--seeds", "0", "-1"], "argument --seeds: must be an int in [0, 2**64), got -1"),
        (
            ["run", "--strategy", "replay", "--retrieval", "balanced"],
            "argument --retrieval: applies to --strategy alpha-replay, der or derpp only, not replay",
        ),
        (
            ["sweep", "--strategy", "replay", "--retrievals", "random", "mir"],
            "argument --retrievals: applies to --strategy alpha-replay, der or derpp only, not replay",
        ),
        (
            ["run", "--strategy", "naive", "--storage", "reservoir"],
            "argument --storage: applies to --strategy replay, alpha-replay, der or derpp only, not naive",
        ),
        (
            ["run", "--strategy", "gdumb", "--storage", "class-balanced-reservoir"],
            "argument --storage: applies to --strategy replay, alpha-replay, der or derpp only, not gdumb",
        ),
        (
            ["sweep", "--strategy", "gdumb", "--storages", "reservoir"],
            "argument --storages: applies to --strategy replay, alpha-replay, der or derpp only, not gdumb",
        ),
        (
            ["run", "--strategy", "alpha-replay", "--beta", "0.5"],
            "argument --beta: applies to --strategy derpp only, not alpha-replay",
        ),
        (["run", "--strategy", "der", "--beta", "0.5"], "argument --beta: applies to --strategy derpp only, not der"),
        (
            ["sweep", "--strategy", "der", "--betas", "0", "1"],
            "argument --betas: applies to --strategy derpp only, not der",
        ),
        (["run", "--strategy", "derpp", "--beta", "-1"], f"argument --beta: {WEIGHT}, got -1.0"),
        (["sweep", "--strategy", "derpp", "--betas", "0", "inf"], "argument --betas: must be a finite number >= 0"),
        (
            ["run", "--retrieval", "mir", "--strategy", "der"],
            "argument --retrieval: mir applies to --strategy alpha-replay only, not der",
        ),
        (
            ["sweep", "--strategy", "derpp", "--retrievals", "random", "mir"],
            "argument --retrievals: mir applies to --strategy alpha-replay only, not derpp",
        ),
        (["run", "--strategy", "gdumb", "--beta", "1"], "argument --beta: applies to --strategy derpp only, not gdumb"),
        (["run", "--storage", "fifo"], "argument --storage: invalid choice: 'fifo'"),
        (["sweep", "--retrievals", "random", "greedy"], "argument --retrievals: invalid choice: 'greedy'"),
        (
            ["run", "--imbalance-ratio", "0"],
            "argument --imbalance-ratio: must be a finite number > 0 and <= 1, got 0.0",
        ),
        (
            ["run", "--imbalance-ratio", "1.5"],
            "argument --imbalance-ratio: must be a finite number > 0 and <= 1, got 1.5",
        ),
        (
            ["sweep", "--imbalance-ratio", "nan"],
            "argument --imbalance-ratio: must be a finite number > 0 and <= 1, got nan",
        ),
        (
            ["run", "--imbalance-ratio", "x"],
            "argument --imbalance-ratio: must be a finite number > 0 and <= 1, got 'x'",
        ),
    ],
)
def test_bad_arguments_exit_2_with_a_message(args, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.startswith("usage: avalanche-replay ") and len(re.findall("error:", err)) == 1
    assert re.search(r"\n\S+( run| sweep)?: error: [^\n]+\n$", err), err  # argparse's usage, then one line


def test_a_memory_larger_than_any_stream_runs(tmp_path, capsys):
    """A huge --mem-size costs nothing until samples arrive: the run keeps every sample."""
    args = ["run", "--mem-size", str(10**12), "--epochs", "1", "--no-progress", "--out", str(tmp_path)]
    assert main(args) == 0
    (row,) = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert int(row["mem_size"]) == 10**12 and float(row["final_accuracy"]) > 0.4  # Naive stays below 0.25


def test_the_missing_mnist_folder_message_names_the_option_and_the_variable(monkeypatch, capsys):
    monkeypatch.delenv(settings.MNIST_DIR_ENV, raising=False)
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--benchmark", "mnist-idx"])
    assert exit_info.value.code == 2
    assert "pass --data-dir DIR or set $AVALANCHE_REPLAY_MNIST_DIR" in capsys.readouterr().err
    assert settings.MNIST_DIR_ENV == benchmarks.MNIST_DIR_ENV  # the parser's copy of the name, without torch


def test_an_unwritable_out_folder_fails_before_training(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    with pytest.raises(SystemExit) as exit_info:
        main(["--out", str(tmp_path / "file" / "run")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"error: argument --out: cannot write to '{tmp_path}/file/run': Not a directory\n" in err
    assert err.startswith("usage: ") and "experience" not in err  # nothing trained


def usage_error(args: list[str], capsys) -> str:
    """``main(args)``'s stderr, checked to be a usage error: exit code 2, argparse's usage, one
    line of error, no traceback."""
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: avalanche-replay ") and "Traceback" not in err, err
    assert re.search(r"\n\S+( run| sweep)?: error: [^\n]+\n$", err) and len(re.findall("error:", err)) == 1, err
    return err


def no_training(monkeypatch) -> None:
    """Make training fail the test: what these tests call must stop before it."""
    from avalanche_replay_ext import experiments

    def run_setting(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(experiments, "run_setting", run_setting)


def fake_training(monkeypatch) -> None:
    """Training in no time: every run's accuracy matrix holds 0.5, for the tests of the outputs."""
    from avalanche_replay_ext import experiments

    def run_setting(setting, *args, **kwargs):
        return experiments.Result(setting, [[0.5] * 5 for _ in range(5)], 0.5, 0.0)

    monkeypatch.setattr(experiments, "run_setting", run_setting)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--lr", "1e39"], f"argument --lr: {LR}, got 1e+39"),  # overflowed in SGD's step: a traceback
        (["run", "--lr", "1e-50"], f"argument --lr: {LR}, got 1e-50"),  # 0 in float32
        (["run", "--lr", "inf"], f"argument --lr: {LR}, got inf"),
        (["run", "--batch-size", str(2**63)], f"argument --batch-size: {POSITIVE_INT}, got {2**63}"),  # mid-run
        (["run", "--epochs", str(2**63)], f"argument --epochs: {POSITIVE_INT}, got {2**63}"),
        (["run", "--mem-size", str(2**63)], f"argument --mem-size: {POSITIVE_INT}, got {2**63}"),
        (["sweep", "--mem-sizes", "10", str(10**30)], f"argument --mem-sizes: {POSITIVE_INT}, got {10**30}"),
        (["run", "--alpha", "1e39"], f"argument --alpha: {WEIGHT}, got 1e+39"),  # an inf loss, silently
        (["sweep", "--alphas", "0", "4e38"], f"argument --alphas: {WEIGHT}, got 4e+38"),
        (["run", "--strategy", "derpp", "--beta", "1e39"], f"argument --beta: {WEIGHT}, got 1e+39"),
        (["sweep", "--strategy", "derpp", "--betas", "1e39"], f"argument --betas: {WEIGHT}, got 1e+39"),
        (
            ["run", "--alpha", "1e38", "--alpha-schedule", "linear"],
            "argument --alpha: with --alpha-schedule linear the weight reaches alpha * 4 (after 4 experiences), "
            f"which must be <= {FLOAT32_MAX!r} (float32's largest), got alpha 1e+38",
        ),
        (
            ["sweep", "--strategy", "der", "--alphas", "1", "1e38", "--alpha-schedule", "linear"],
            "argument --alphas: with --alpha-schedule linear the weight reaches alpha * 4 (after 4 experiences), ",
        ),
    ],
)
def test_numbers_torch_cannot_hold_are_usage_errors_before_training(args, message, capsys, monkeypatch):
    """Every number an option passes to torch fits its type there: ints int64 (batch size, epochs,
    memory sizes), floats float32 (learning rate, alpha, beta; alpha * 4 for the linear schedule)."""
    no_training(monkeypatch)
    assert message in usage_error([*args, "--no-progress"], capsys)


def test_the_largest_numbers_torch_holds_are_accepted():
    """The bounds themselves are allowed: 2**63 - 1, float32's largest and smallest normal, and
    for the linear schedule an alpha whose weight after 4 experiences is float32's largest."""
    largest = str(2**63 - 1)
    args = ["run", "--batch-size", largest, "--epochs", largest, "--mem-size", largest, "--lr", repr(FLOAT32_TINY)]
    s = parsed([*args, "--alpha", repr(FLOAT32_MAX / 4), "--alpha-schedule", "linear"])
    assert (s.batch_size, s.epochs, s.mem_size, s.lr, s.alpha) == (2**63 - 1,) * 3 + (FLOAT32_TINY, FLOAT32_MAX / 4)
    s = parsed(["run", "--strategy", "derpp", "--lr", repr(FLOAT32_MAX), "--alpha", repr(FLOAT32_MAX), "--beta", "0"])
    assert (s.lr, s.alpha, s.beta) == (FLOAT32_MAX, FLOAT32_MAX, 0.0)


def idx(magic: int, shape: tuple[int, ...], payload: bytes, compress: bool = True) -> bytes:
    """An IDX file's bytes (magic number, one big-endian int32 per dimension, the data), gzipped."""
    data = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in shape) + payload
    return gzip.compress(data) if compress else data


IMAGES, LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"
VALID = {IMAGES: idx(0x803, (20, 28, 28), bytes(20 * 784)), LABELS: idx(0x801, (20,), bytes(range(10)) * 2)}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param(
            {LABELS: idx(0x801, (19,), bytes(range(10)) + bytes(range(9)))},
            "MNIST file {images} holds 20 images but {labels} 19 labels",
            id="counts-differ",
        ),
        pytest.param(
            {LABELS: idx(0x801, (20,), bytes(range(10)) + bytes(range(9)) + bytes([12]))},
            "MNIST file {labels} holds label 12 at position 19; labels must be in 0..9",
            id="label-12",
        ),
        pytest.param(
            {LABELS: idx(0x803, (20,), bytes(20))},
            "MNIST file {labels} is not an IDX file of the expected kind (magic 0x803, expected 0x801)",
            id="magic",
        ),
        pytest.param(
            {IMAGES: idx(0x803, (20, 28, 28), bytes(19 * 784))},
            "MNIST file {images} holds 14896 bytes after its header, but its shape (20, 28, 28) needs 15680",
            id="size",
        ),
        pytest.param(
            {IMAGES: idx(0x803, (20, 8, 8), bytes(20 * 64))},
            "MNIST file {images} holds images of 8x8 pixels, expected 28x28",
            id="8x8",
        ),
        pytest.param(
            {IMAGES: idx(0x803, (0, 28, 28), b""), LABELS: idx(0x801, (0,), b"")},
            "MNIST file {images} holds no images",
            id="empty",
        ),
        pytest.param(
            {IMAGES: idx(0x803, (20, 28, 28), bytes(20 * 784), compress=False)},
            "MNIST file {images} is not a complete gzip file (Not a gzipped file",
            id="not-gzip",
        ),
        pytest.param(
            {IMAGES: VALID[IMAGES][:-20]},
            "MNIST file {images} is not a complete gzip file (Compressed file ended",
            id="truncated-gzip",
        ),
        pytest.param({LABELS: None}, f"MNIST folder {{folder}} holds {IMAGES} but not {LABELS}", id="no-labels"),
    ],
)
def test_a_corrupt_mnist_folder_is_a_usage_error_before_training(change, message, tmp_path, capsys, monkeypatch):
    """The IDX files are checked (gzip, magic numbers, sizes, counts, labels 0..9) before training
    and before --out is created: a usage error naming the file, not an IndexError from the middle
    of training (labels >= 10) or a traceback."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name, data in {**VALID, **change}.items():
        if data is not None:
            (folder / name).write_bytes(data)
    no_training(monkeypatch)
    out = tmp_path / "out"
    err = usage_error(["run", "--benchmark", "mnist-idx", "--data-dir", str(folder), "--out", str(out)], capsys)
    names = {"images": repr(str(folder / IMAGES)), "labels": repr(str(folder / LABELS)), "folder": repr(str(folder))}
    assert f"error: --benchmark mnist-idx: {message.format(**names)}" in err
    assert not out.exists()


def test_a_non_empty_out_folder_needs_overwrite(tmp_path, capsys, monkeypatch):
    """A second run into an --out that holds anything (an earlier run's outputs, a file of the
    user's) stops before training unless --overwrite is given; an empty --out is fine."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    no_training(monkeypatch)
    for command in ("run", "sweep"):
        err = usage_error([command, "--out", str(out), "--no-progress"], capsys)
        assert f"error: argument --out: folder '{out}' is not empty: pass --overwrite to replace its contents\n" in err
    assert [p.name for p in out.iterdir()] == ["notes.txt"] and (out / "notes.txt").read_text() == "mine"
    fake_training(monkeypatch)
    (out / "notes.txt").unlink()
    assert main(["run", "--out", str(out), "--no-progress"]) == 0  # empty: no --overwrite needed


def test_overwrite_replaces_the_previous_outputs_entirely(tmp_path, capsys, monkeypatch):
    """A second, different sweep with --overwrite leaves only its own outputs (no plot of the first
    sweep beside the new results.json); nothing is left beside --out either."""
    fake_training(monkeypatch)
    out = tmp_path / "out"
    first = ["sweep", "--mem-sizes", "10", "30", "--alphas", "0", "1", "--seeds", "0", "--no-progress"]
    assert main([*first, "--out", str(out)]) == 0
    assert {"final_accuracy_vs_alpha.png", "accuracy_matrix_mem10_alpha0.png"} <= {p.name for p in out.iterdir()}
    (out / "notes.txt").write_text("mine")
    second = ["sweep", "--mem-sizes", "50", "--seeds", "0", "--no-progress", "--out", str(out)]
    assert "pass --overwrite" in usage_error(second, capsys)
    assert main([*second, "--overwrite"]) == 0
    written = ["results.json", "results.csv", "accuracy_matrix_mem50_alpha1.png", "final_accuracy_vs_mem_size.png"]
    assert sorted(p.name for p in out.iterdir()) == sorted(written)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temporary folder left
    assert capsys.readouterr().out.endswith("".join(f"wrote {out / name}\n" for name in written))
    assert json.loads((out / "results.json").read_text())["command_line"].endswith(" --overwrite")


def test_a_run_killed_while_writing_leaves_no_partial_outputs(tmp_path, capsys, monkeypatch):
    """The outputs are written to a temporary folder beside --out and moved into place once all
    are written: a run killed after results.json (here: while saving the plot) leaves --out as it
    was, empty or with the previous run's outputs, and removes its temporary folder."""
    fake_training(monkeypatch)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    out = tmp_path / "out"
    with monkeypatch.context() as m:
        m.setattr(plots, "save", killed)
        with pytest.raises(KeyboardInterrupt):
            main(["run", "--out", str(out), "--no-progress"])
    assert not out.exists() or not any(out.iterdir())  # no results.json without its plot
    assert main(["run", "--out", str(out), "--no-progress"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with monkeypatch.context() as m:
        m.setattr(plots, "save", killed)
        with pytest.raises(KeyboardInterrupt):
            main(["run", "--strategy", "naive", "--out", str(out), "--no-progress", "--overwrite"])
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the previous run's, whole
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_options_without_a_command_are_the_default_run(tmp_path, capsys):
    """`avalanche-replay --out X` is the default run (alpha replay, mem 200, alpha 1, 3 epochs,
    seed 0) written to X; stderr (not a terminal here) gets one line per experience."""
    assert main(["--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "results.json").read_text())
    assert record["command"] == "run" and record["command_line"] == f"avalanche-replay --out {tmp_path}"
    (row,) = record["results"]
    expected = ("alpha-replay", 200, 1.0, "constant", None, "reservoir", "random", "split-digits", None, 3, 0, 32, 0.1)
    fields = ("strategy", "mem_size", "alpha", "alpha_schedule", "beta", "storage", "retrieval", "benchmark")
    fields += ("imbalance_ratio", "epochs", "seed", "batch_size", "lr")
    assert tuple(row[f] for f in fields) == expected
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 5 and "experience 5/5 trained and evaluated" in err


def test_naive_records_no_memory_and_no_alpha(tmp_path, capsys):
    assert main(["run", "--strategy", "naive", "--epochs", "1", "--out", str(tmp_path), "--no-progress"]) == 0
    (row,) = json.loads((tmp_path / "results.json").read_text())["results"]
    fields = ("mem_size", "alpha", "alpha_schedule", "beta", "storage", "retrieval")
    assert tuple(row[f] for f in fields) == (None,) * 6
    (csv_row,) = csv.DictReader((tmp_path / "results.csv").open())
    assert (csv_row["mem_size"], csv_row["alpha"], csv_row["alpha_schedule"], csv_row["epochs"]) == ("", "", "", "1")
    out, err = capsys.readouterr()
    assert re.search(r"\nnaive(\s+-){6}\s+1\s+0\.\d+ \+- 0\.000", out) and err == ""  # --no-progress: quiet
    title = Image.open(tmp_path / "accuracy_matrix.png").text["Title"]
    assert title == "naive on split-digits\nepochs 1, batch 32, lr 0.1, seed 0"


@pytest.mark.parametrize(("flag", "tty"), [("--progress", False), (None, True)])
def test_bars_with_progress_or_on_a_terminal(flag, tty, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty)
    args = ["run", "--strategy", "replay", "--mem-size", "50", "--epochs", "1", "--out", str(tmp_path)]
    assert main(args + ([flag] if flag else [])) == 0
    err = capsys.readouterr().err
    assert "\r" in err and "exp 4 iterations" in err and "replay, mem 50, reservoir, seed 0" in err  # tqdm's bars
    assert "trained and evaluated" not in err


def test_help_lists_the_defaults(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # argparse wraps the help to the terminal's width
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # the long helps wrapped all the same
    for default in ("alpha-replay", "split-digits", "3", "32", "0.1", "runs/run"):
        assert f"(default: {default})" in text
    assert "(default: 200; --strategy replay, alpha-replay, gdumb, der or derpp only)" in text
    assert "(default: 1 for alpha-replay, 0.1 for der and derpp; --strategy alpha-replay, der or derpp only)" in text
    assert "(default: 0.5; --strategy derpp only)" in text  # --beta
    assert "(default: constant; --strategy alpha-replay, der or derpp only)" in text
    assert "(default: reservoir; --strategy replay, alpha-replay, der or derpp only)" in text
    assert "per step: alpha-replay only) (default: random; --strategy alpha-replay, der or derpp only)" in text
    assert "--strategy {naive,replay,alpha-replay,gdumb,der,derpp}" in text
    assert "(default: balanced)" in text  # --imbalance-ratio


def test_the_help_path_imports_only_the_standard_library():
    """`avalanche-replay --help` imports the package, `__main__`, `cli` and `settings`: at module
    level these import nothing outside the standard library (torch, Avalanche, matplotlib are
    imported by functions a command calls), which keeps `--help` under a second."""
    package = Path(avalanche_replay_ext.__file__).parent
    light = {"cli", "settings"}
    for name in ("__init__", "__main__", "cli", "settings"):
        for node in ast.parse((package / f"{name}.py").read_text()).body:
            if isinstance(node, ast.Import):
                assert {a.name.split(".")[0] for a in node.names} <= sys.stdlib_module_names, (name, node.lineno)
            elif isinstance(node, ast.ImportFrom) and node.level:  # from .x import y
                assert node.module in light, (name, node.lineno)
            elif isinstance(node, ast.ImportFrom):
                assert node.module.split(".")[0] in sys.stdlib_module_names | {"__future__"}, (name, node.lineno)


def test_plots_name_what_varies_and_tick_the_sizes_tested():
    rows = [
        {"strategy": "alpha-replay", "benchmark": "split-digits", "mem_size": m, "alpha": 1.0}
        | {"alpha_schedule": "constant", "epochs": 3, "batch_size": 32, "lr": 0.1, "seed": s}
        | {"final_accuracy": 0.5 + m / 1000 + s / 100}
        for m in (10, 30, 100, 300)
        for s in (0, 1, 2)
    ]
    title = cli.title(rows, "final accuracy vs memory size")
    assert title == (
        "alpha-replay on split-digits: final accuracy vs memory size\n"
        "alpha 1, constant alpha schedule\nepochs 3, batch 32, lr 0.1, mean over 3 seeds"
    )
    ax = plots.final_accuracy_vs(rows, "mem_size", "alpha", title).axes[0]
    assert ax.get_title() == title and ax.get_xscale() == "log"
    assert list(ax.get_xticks()) == [10, 30, 100, 300] and len(ax.get_xticks(minor=True)) == 0
    assert [t.get_text() for t in ax.get_xticklabels()] == ["10", "30", "100", "300"]
    assert ax.get_legend().get_title().get_text() == "error bars: std over 3 seeds"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["alpha = 1"]
    one_seed = [r for r in rows if r["seed"] == 0 and r["mem_size"] == 100]
    assert cli.title(one_seed).endswith(
        "\nmem 100, alpha 1, constant alpha schedule\nepochs 3, batch 32, lr 0.1, seed 0"
    )


def parsed(args: list[str]) -> settings.Setting:
    """The one Setting the command line ``args`` trains."""
    (setting,) = cli.settings(cli.parse_args(args))
    return setting


def test_policy_options_build_their_buffer_retrieval_and_long_tailed_stream():
    from avalanche.training.plugins import ReplayPlugin

    from avalanche_replay_ext import experiments
    from avalanche_replay_ext.buffers import ClassBalancedReservoirBuffer, ReservoirSamplingBuffer
    from avalanche_replay_ext.plugins import AlphaReplayPlugin
    from avalanche_replay_ext.retrieval import BalancedRetrieval, MIRRetrieval, RandomRetrieval

    args = ["run", "--retrieval", "balanced", "--storage", "class-balanced-reservoir", "--imbalance-ratio", "0.1"]
    s = parsed([*args, "--mem-size", "120"])
    assert (s.strategy, s.storage, s.retrieval, s.imbalance_ratio) == (
        "alpha-replay",
        "class-balanced-reservoir",
        "balanced",
        0.1,
    )
    assert s.describe() == (
        "alpha-replay, mem 120, alpha 1 (constant), class-balanced-reservoir + balanced, imbalance ratio 0.1, seed 0"
    )
    (plugin,) = experiments.make_plugins(s)
    assert type(plugin) is AlphaReplayPlugin
    assert type(plugin.retrieval) is BalancedRetrieval and plugin.retrieval.groupby == "class"
    assert type(plugin.storage_policy) is ClassBalancedReservoirBuffer and plugin.storage_policy.max_size == 120
    # the training stream is long-tailed: each experience smaller than the one before, the last
    # (two classes keeping 10**-(8/9) and 10% of their images) about an eighth of the first
    benchmark = experiments.make_benchmark(s.benchmark, s.seed, None, s.imbalance_ratio)
    sizes = [len(e.dataset) for e in benchmark.train_stream]
    assert all(a > b for a, b in pairwise(sizes)) and sizes[0] > 6 * sizes[-1], sizes
    balanced = experiments.make_benchmark(s.benchmark, s.seed)
    assert sizes[0] <= len(balanced.train_stream[0].dataset)
    assert [len(e.dataset) for e in benchmark.test_stream] == [len(e.dataset) for e in balanced.test_stream]
    balanced_sizes = [len(e.dataset) for e in balanced.train_stream]
    assert max(balanced_sizes) < 1.1 * min(balanced_sizes)  # without the option: balanced

    (plugin,) = experiments.make_plugins(parsed(["run"]))  # the defaults: reservoir + random
    assert type(plugin.retrieval) is RandomRetrieval and type(plugin.storage_policy) is ReservoirSamplingBuffer
    (plugin,) = experiments.make_plugins(parsed(["run", "--retrieval", "mir"]))
    assert type(plugin.retrieval) is MIRRetrieval and plugin.retrieval.candidates == 50
    for storage, buffer in (
        ("reservoir", ReservoirSamplingBuffer),
        ("class-balanced-reservoir", ClassBalancedReservoirBuffer),
    ):
        s = parsed(["run", "--strategy", "replay", "--mem-size", "70", "--storage", storage])
        assert (s.storage, s.describe()) == (storage, f"replay, mem 70, {storage}, seed 0")
        (plugin,) = experiments.make_plugins(s)
        assert type(plugin) is ReplayPlugin
        assert type(plugin.storage_policy) is buffer and plugin.storage_policy.max_size == 70
    assert parsed(["run", "--strategy", "naive", "--imbalance-ratio", "0.5"]).imbalance_ratio == 0.5  # every strategy


def test_sweep_over_retrievals_on_a_long_tailed_stream(tmp_path, capsys, monkeypatch):
    """Retrieval is a grid dimension: one row per retrieval and seed, one table line per
    retrieval, one accuracy matrix per retrieval; the imbalance ratio reaches the benchmark."""
    from avalanche_replay_ext import experiments

    ratios = []

    def split_digits(*args, **kwargs):
        ratios.append(kwargs["imbalance_ratio"])
        return SplitDigits(*args, **kwargs)

    monkeypatch.setattr(experiments, "SplitDigits", split_digits)
    args = ["sweep", "--imbalance-ratio", "0.1", "--mem-sizes", "200", "--retrievals", "random", "balanced"]
    args += ["--seeds", "0", "1", "--epochs", "1", "--out", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    assert ratios == [0.1] * 4
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert [(r["retrieval"], r["seed"]) for r in rows] == [
        ("random", "0"),
        ("random", "1"),
        ("balanced", "0"),
        ("balanced", "1"),
    ]
    assert {(r["storage"], r["imbalance_ratio"], r["mem_size"], r["alpha"]) for r in rows} == {
        ("reservoir", "0.1", "200", "1.0")
    }
    record = json.loads((tmp_path / "results.json").read_text())
    matrices = {(r["retrieval"], r["seed"]): r["accuracy_matrix"] for r in record["results"]}
    assert matrices["random", 0] != matrices["balanced", 0] and matrices["random", 1] != matrices["balanced", 1]
    out = capsys.readouterr().out
    for retrieval in ("random", "balanced"):
        final = [float(r["final_accuracy"]) for r in rows if r["retrieval"] == retrieval]
        line = re.search(
            rf"\nalpha-replay\s+200\s+1\s+constant\s+-\s+reservoir\s+{retrieval}\s+2\s+(\S+) \+- (\S+)", out
        )
        assert line, out
        assert line.groups() == (f"{statistics.mean(final):.3f}", f"{statistics.pstdev(final):.3f}")
    assert len(re.findall(r"\nalpha-replay ", out)) == 2  # one line per retrieval, the seeds averaged
    pngs = {p.name for p in tmp_path.glob("*.png")}
    assert pngs == {
        "accuracy_matrix_mem200_alpha1_random.png",
        "accuracy_matrix_mem200_alpha1_balanced.png",
        "final_accuracy_vs_mem_size.png",
    }
    title = Image.open(tmp_path / "final_accuracy_vs_mem_size.png").text["Title"]
    assert title.startswith("alpha-replay on split-digits: final accuracy vs memory size, one line per retrieval\n")
    assert "mem 200, alpha 1, constant alpha schedule, reservoir storage\n" in title
    assert title.endswith("imbalance ratio 0.1, epochs 1, batch 32, lr 0.1, mean over 2 seeds")
    title = Image.open(tmp_path / "accuracy_matrix_mem200_alpha1_balanced.png").text["Title"]
    assert "balanced retrieval" in title and "random" not in title


def test_sweep_over_storages_with_avalanche_replay(tmp_path, capsys):
    args = ["sweep", "--strategy", "replay", "--storages", "reservoir", "class-balanced-reservoir"]
    args += ["--mem-sizes", "50", "--seeds", "0", "--epochs", "1", "--out", str(tmp_path), "--no-progress"]
    assert main(args) == 0
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert [(r["storage"], r["retrieval"], r["imbalance_ratio"]) for r in rows] == [
        ("reservoir", "", ""),
        ("class-balanced-reservoir", "", ""),
    ]
    assert all(float(r["final_accuracy"]) > 0.3 for r in rows)  # both replay (Naive stays below 0.25)
    assert rows[0]["final_accuracy"] != rows[1]["final_accuracy"]
    out = capsys.readouterr().out
    assert re.search(r"\nreplay\s+50\s+-\s+-\s+-\s+reservoir\s+-\s+1\s", out), out
    assert re.search(r"\nreplay\s+50\s+-\s+-\s+-\s+class-balanced-reservoir\s+-\s+1\s", out), out
    pngs = {p.name for p in tmp_path.glob("*.png")}
    assert pngs == {
        "accuracy_matrix_mem50_reservoir.png",
        "accuracy_matrix_mem50_class-balanced-reservoir.png",
        "final_accuracy_vs_mem_size.png",
    }
    title = Image.open(tmp_path / "final_accuracy_vs_mem_size.png").text["Title"]
    assert title.startswith("replay on split-digits: final accuracy vs memory size, one line per storage\nmem 50\n")


def test_policy_plots_have_one_line_per_storage_and_retrieval(tmp_path):
    policies = [(s, r) for s in ("reservoir", "class-balanced-reservoir") for r in ("random", "mir")]
    rows = [
        {"strategy": "alpha-replay", "benchmark": "split-digits", "mem_size": m, "alpha": 1.0}
        | {"alpha_schedule": "constant", "storage": s, "retrieval": r, "imbalance_ratio": 0.1}
        | {"epochs": 3, "batch_size": 32, "lr": 0.1, "seed": seed, "accuracy_matrix": [[0.5 + seed / 10]]}
        | {"final_accuracy": 0.2 + m / 1000 + 0.1 * i + seed / 100}
        for m in (10, 100)
        for i, (s, r) in enumerate(policies)
        for seed in (0, 1)
    ]
    title = cli.title(rows, "final accuracy vs memory size")
    assert title == (  # storage and retrieval vary: the lines, not the title
        "alpha-replay on split-digits: final accuracy vs memory size\n"
        "alpha 1, constant alpha schedule\nimbalance ratio 0.1, epochs 3, batch 32, lr 0.1, mean over 2 seeds"
    )
    ax = plots.final_accuracy_vs(rows, "mem_size", ("storage", "retrieval"), title).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [f"{s} + {r}" for s, r in policies]  # as swept
    assert ax.get_legend().get_title().get_text() == "storage + retrieval\nerror bars: std over 2 seeds"
    assert list(ax.get_xticks()) == [10, 100]
    for i, container in enumerate(ax.containers):  # each line: its policy's means, a little apart along x
        xs, ys = container.lines[0].get_data()
        assert list(ys) == pytest.approx([0.2 + m / 1000 + 0.1 * i + 0.005 for m in (10, 100)])
        assert xs[0] == pytest.approx(10 * 10 ** (0.015 * (i - 1.5))) and xs[0] * 10 == pytest.approx(xs[1])
    record = {"command_line": "avalanche-replay sweep", "versions": {"torch": "2"}, "seeds": [0, 1]}
    names = [p.name for p in cli.write_plots("sweep", tmp_path, rows, record)]
    assert names == [f"accuracy_matrix_mem{m}_alpha1_{s}_{r}.png" for m in (10, 100) for s, r in policies] + [
        "final_accuracy_vs_mem_size.png"
    ]
    title = Image.open(tmp_path / "final_accuracy_vs_mem_size.png").text["Title"]
    assert title.startswith("alpha-replay on split-digits: final accuracy vs memory size, one line per storage x")
    title = Image.open(tmp_path / "accuracy_matrix_mem100_alpha1_class-balanced-reservoir_mir.png").text["Title"]
    assert title.replace("\n", " ").startswith(
        "alpha-replay on split-digits mem 100, alpha 1, constant alpha schedule, class-balanced-reservoir storage, "
        "mir retrieval imbalance ratio 0.1"
    )


def test_der_and_derpp_build_dark_experience_replay():
    """--strategy der is DERPlugin with beta 0, derpp with --beta; --alpha weighs the logit term
    (default 0.1 for both, while alpha-replay keeps 1); storage, retrieval and the alpha schedule
    reach the plugin as for alpha replay."""
    from avalanche_replay_ext import experiments
    from avalanche_replay_ext.buffers import ClassBalancedReservoirBuffer, ReservoirSamplingBuffer
    from avalanche_replay_ext.plugins import AlphaReplayPlugin, DERPlugin
    from avalanche_replay_ext.retrieval import BalancedRetrieval, RandomRetrieval
    from avalanche_replay_ext.schedules import ConstantAlpha, LinearAlpha

    s = parsed(["run", "--strategy", "derpp", "--alpha", "0.2", "--beta", "0.7", "--mem-size", "80"])
    assert (s.strategy, s.mem_size, s.alpha, s.beta) == ("derpp", 80, 0.2, 0.7)
    assert s.describe() == "derpp, mem 80, alpha 0.2 (constant), beta 0.7, reservoir + random, seed 0"
    (plugin,) = experiments.make_plugins(s)
    assert type(plugin) is DERPlugin and type(plugin.schedule) is ConstantAlpha
    assert (plugin.schedule(0), plugin.schedule(3), plugin.beta_schedule(0), plugin.beta_schedule(3)) == (
        0.2,
        0.2,
        0.7,
        0.7,
    )
    assert type(plugin.storage_policy) is ReservoirSamplingBuffer and plugin.storage_policy.max_size == 80
    assert type(plugin.retrieval) is RandomRetrieval and plugin.mem_size == 80

    s = parsed(["run", "--strategy", "der"])  # the defaults
    assert (s.mem_size, s.alpha, s.alpha_schedule, s.storage, s.retrieval) == (
        200,
        0.1,
        "constant",
        "reservoir",
        "random",
    )
    assert s.describe() == "der, mem 200, alpha 0.1 (constant), reservoir + random, seed 0"  # no beta: always 0
    (plugin,) = experiments.make_plugins(s)
    assert type(plugin) is DERPlugin and (plugin.schedule(1), plugin.beta_schedule(1)) == (0.1, 0.0)
    (plugin,) = experiments.make_plugins(parsed(["run", "--strategy", "derpp"]))
    assert (plugin.schedule(1), plugin.beta_schedule(1)) == (0.1, 0.5)
    (plugin,) = experiments.make_plugins(parsed(["run"]))  # alpha replay's default stays 1
    assert type(plugin) is AlphaReplayPlugin and plugin.schedule(1) == 1.0
    assert [s.alpha for s in cli.settings(cli.parse_args(["sweep", "--strategy", "der", "--seeds", "0"]))] == [0.1] * 4
    assert [s.alpha for s in cli.settings(cli.parse_args(["sweep", "--seeds", "0", "--mem-sizes", "10"]))] == [1.0]
    assert (settings.Setting().alpha, settings.Setting("derpp").alpha, settings.Setting("naive").alpha) == (
        1.0,
        0.1,
        None,
    )

    args = ["run", "--strategy", "der", "--storage", "class-balanced-reservoir", "--retrieval", "balanced"]
    s = parsed([*args, "--alpha-schedule", "linear", "--alpha", "0.3", "--mem-size", "60"])
    assert s.describe() == "der, mem 60, alpha 0.3 (linear), class-balanced-reservoir + balanced, seed 0"
    (plugin,) = experiments.make_plugins(s)
    assert type(plugin.schedule) is LinearAlpha and plugin.schedule(2) == pytest.approx(0.6)
    assert plugin.beta_schedule(4) == 0.0  # the schedule is alpha's only
    assert type(plugin.storage_policy) is ClassBalancedReservoirBuffer and plugin.storage_policy.max_size == 60
    assert type(plugin.retrieval) is BalancedRetrieval and plugin.retrieval.groupby == "class"
    # every strategy that reads alpha has its default; der and derpp take every retrieval but mir
    assert set(settings.STRATEGY_DEFAULTS["alpha"]) == {s for s in settings.STRATEGIES if "alpha" in settings.USES[s]}
    assert settings.ALLOWED["der", "retrieval"] == settings.ALLOWED["derpp", "retrieval"] == ("random", "balanced")


def test_sweep_over_betas_with_derpp_and_der_defaults(tmp_path, capsys):
    """--betas is a grid dimension: one row, table line and accuracy matrix per beta, and a plot
    against beta; beta 0 trains exactly what der does; der records its default alpha 0.1 and no beta."""
    args = ["sweep", "--strategy", "derpp", "--betas", "0", "0.5", "--mem-sizes", "50", "--seeds", "0"]
    assert main([*args, "--epochs", "1", "--out", str(tmp_path / "derpp"), "--no-progress"]) == 0
    rows = list(csv.DictReader((tmp_path / "derpp" / "results.csv").open()))
    fields = ("strategy", "mem_size", "alpha", "alpha_schedule", "beta", "storage", "retrieval", "seed")
    assert [tuple(r[f] for f in fields) for r in rows] == [
        ("derpp", "50", "0.1", "constant", beta, "reservoir", "random", "0") for beta in ("0.0", "0.5")
    ]
    final = {r["beta"]: float(r["final_accuracy"]) for r in rows}
    assert final["0.5"] > final["0.0"] + 0.15, final  # the label term replays the memory's classes
    out = capsys.readouterr().out
    for row in rows:
        beta = f"{float(row['beta']):g}"
        line = re.search(rf"\nderpp\s+50\s+0\.1\s+constant\s+{beta}\s+reservoir\s+random\s+1\s+(\S+) \+- 0\.000", out)
        assert line and line[1] == f"{float(row['final_accuracy']):.3f}", out
    assert len(re.findall(r"\nderpp ", out)) == 2  # one line per beta
    record = json.loads((tmp_path / "derpp" / "results.json").read_text())
    assert [(r["beta"], r["alpha"]) for r in record["results"]] == [(0.0, 0.1), (0.5, 0.1)]
    pngs = {p.name for p in (tmp_path / "derpp").glob("*.png")}
    assert pngs == {
        "accuracy_matrix_mem50_alpha0.1_beta0.png",
        "accuracy_matrix_mem50_alpha0.1_beta0.5.png",
        "final_accuracy_vs_mem_size.png",
        "final_accuracy_vs_beta.png",
    }
    title = Image.open(tmp_path / "derpp" / "final_accuracy_vs_beta.png").text["Title"]
    assert title.startswith("derpp on split-digits: final accuracy vs beta, one line per memory size\n"), title
    assert "\nmem 50, alpha 0.1, constant alpha schedule, reservoir storage, random retrieval\n" in title
    title = Image.open(tmp_path / "derpp" / "final_accuracy_vs_mem_size.png").text["Title"]
    assert title.startswith("derpp on split-digits: final accuracy vs memory size, one line per beta\n"), title
    title = Image.open(tmp_path / "derpp" / "accuracy_matrix_mem50_alpha0.1_beta0.5.png").text["Title"]
    assert "alpha 0.1, constant alpha schedule, beta 0.5, reservoir storage" in title.replace("\n", " ")

    args = ["run", "--strategy", "der", "--mem-size", "50", "--epochs", "1", "--no-progress"]
    assert main([*args, "--out", str(tmp_path / "der")]) == 0
    (row,) = json.loads((tmp_path / "der" / "results.json").read_text())["results"]
    assert (row["strategy"], row["mem_size"], row["alpha"], row["alpha_schedule"], row["beta"]) == (
        "der",
        50,
        0.1,
        "constant",
        None,
    )
    assert row["accuracy_matrix"] == record["results"][0]["accuracy_matrix"]  # der is derpp with beta 0
    (csv_row,) = csv.DictReader((tmp_path / "der" / "results.csv").open())
    assert (csv_row["alpha"], csv_row["beta"], csv_row["storage"]) == ("0.1", "", "reservoir")
    assert re.search(r"\nder\s+50\s+0\.1\s+constant\s+-\s+reservoir\s+random\s+1\s", capsys.readouterr().out)
