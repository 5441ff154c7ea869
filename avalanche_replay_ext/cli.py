"""``avalanche-replay``: run or sweep replay experiments, with progress bars, tables and plots.

avalanche-replay                      # default: alpha replay, mem 200, SplitDigits, 3 epochs
avalanche-replay run --strategy gdumb --mem-size 300 --epochs 16
avalanche-replay sweep --strategy alpha-replay --mem-sizes 10 30 100 300 --alphas 0 0.5 1 2 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from itertools import product
from pathlib import Path

from . import plots
from ._checks import check_alpha, check_range, check_seed, check_size
from .benchmarks.mnist_idx import MNIST_DIR_ENV, mnist_dir
from .experiments import BENCHMARKS, SCHEDULES, STRATEGIES, Result, Setting, run_setting

CSV_COLUMNS = (
    "strategy",
    "benchmark",
    "mem_size",
    "alpha",
    "alpha_schedule",
    "epochs",
    "seed",
    "batch_size",
    "lr",
    "final_accuracy",
    "average_accuracy",
    "seconds",
)


def _option(parse: Callable[[str], object], check: Callable[[str, object], object]) -> Callable[[str], object]:
    """An argparse type: ``parse`` the text, then apply a rule of ``_checks`` (one message per rule)."""

    def convert(text: str) -> object:
        try:
            value = parse(text)
        except ValueError:
            value = text
        try:
            return check("value", value)
        except (TypeError, ValueError) as err:
            raise argparse.ArgumentTypeError(str(err).removeprefix("value ")) from None

    return convert


_positive_int = _option(int, check_size)
_seed = _option(int, lambda name, value: check_seed(value, name, optional=False))
_alpha = _option(float, check_alpha)
_positive_float = _option(float, partial(check_range, low=0.0, high=math.inf, open_low=True))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avalanche-replay", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", metavar="{run,sweep}")
    run = commands.add_parser("run", help="train one setting")
    sweep = commands.add_parser("sweep", help="train a grid of memory sizes x alphas x seeds")
    for p, name in ((run, "run"), (sweep, "sweep")):
        p.add_argument("--strategy", choices=STRATEGIES, default="alpha-replay")
        p.add_argument(
            "--alpha-schedule",
            choices=SCHEDULES,
            default="constant",
            help="alpha replay: constant alpha, or alpha_t = alpha * t (t = experiences trained before)",
        )
        p.add_argument("--benchmark", choices=BENCHMARKS, default="split-digits")
        p.add_argument("--data-dir", help=f"MNIST IDX folder for --benchmark mnist-idx (default: ${MNIST_DIR_ENV})")
        p.add_argument("--epochs", type=_positive_int, default=3)
        p.add_argument("--batch-size", type=_positive_int, default=32)
        p.add_argument("--lr", type=_positive_float, default=0.1)
        p.add_argument("--out", type=Path, default=Path("runs") / name, help="output folder")
        p.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument("--mem-size", type=_positive_int, default=200)
    run.add_argument("--alpha", type=_alpha, default=1.0)
    run.add_argument("--seed", type=_seed, default=0)
    sweep.add_argument("--mem-sizes", type=_positive_int, nargs="+", default=[10, 30, 100, 300])
    sweep.add_argument("--alphas", type=_alpha, nargs="+", default=[1.0])
    sweep.add_argument("--seeds", type=_seed, nargs="+", default=[0, 1, 2])
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command is None:  # no arguments: the default run
        args = parser.parse_args(["run"])
    data_dir = None
    if args.benchmark == "mnist-idx":
        try:
            data_dir = mnist_dir(args.data_dir)
        except FileNotFoundError as err:
            parser.error(f"--benchmark mnist-idx: {err}")
    base = Setting(
        strategy=args.strategy,
        alpha_schedule=args.alpha_schedule,
        benchmark=args.benchmark,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
    )
    if args.command == "run":
        settings = [replace(base, mem_size=args.mem_size, alpha=args.alpha, seed=args.seed)]
    else:
        alphas = args.alphas if args.strategy == "alpha-replay" else args.alphas[:1]
        settings = [
            replace(base, mem_size=m, alpha=a, seed=s) for m, a, s in product(args.mem_sizes, alphas, args.seeds)
        ]
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        results = [run_setting(s, progress=not args.no_progress, data_dir=data_dir) for s in settings]
    except (OSError, ValueError, TypeError) as err:
        print(f"avalanche-replay: error: {err}", file=sys.stderr)
        return 2
    rows = [r.row() for r in results]
    print_table(rows)
    if args.command == "run":
        last = results[0].accuracy_matrix[-1]
        print("accuracy per experience after the stream: " + " ".join(f"{a:.3f}" for a in last))
    for path in write_outputs(args.command, args.out, results, rows):
        print(f"wrote {path}")
    return 0


def print_table(rows: list[dict]) -> None:
    """Mean (+- std over seeds) final and average accuracy per setting."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["strategy"], r["mem_size"], r["alpha"], r["alpha_schedule"]), []).append(r)
    print(f"\n{'strategy':<13}{'mem':>6}{'alpha':>7}{'schedule':>10}{'seeds':>7}{'final acc':>18}{'avg acc':>10}")
    for (strategy, mem, alpha, schedule), group in groups.items():
        final = [g["final_accuracy"] for g in group]
        avg = statistics.mean(g["average_accuracy"] for g in group)
        cell = f"{statistics.mean(final):.3f} +- {statistics.pstdev(final):.3f}"
        print(f"{strategy:<13}{mem:>6}{alpha:>7g}{schedule:>10}{len(group):>7}{cell:>18}{avg:>10.3f}")


def write_outputs(command: str, out: Path, results: list[Result], rows: list[dict]) -> list[Path]:
    """results.json, results.csv and the PNG plots; returns the paths written."""
    paths = [out / "results.json", out / "results.csv"]
    paths[0].write_text(json.dumps({"command": command, "results": rows}, indent=2))
    with paths[1].open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    by_setting: dict[tuple, list[Result]] = {}
    for r in results:
        by_setting.setdefault((r.setting.mem_size, r.setting.alpha), []).append(r)
    for (mem, alpha), group in by_setting.items():  # accuracy matrix, averaged over seeds
        n = len(group)
        mean = [
            [sum(r.accuracy_matrix[i][j] for r in group) / n for j in range(len(group[0].accuracy_matrix[i]))]
            for i in range(len(group[0].accuracy_matrix))
        ]
        name = "accuracy_matrix.png" if command == "run" else f"accuracy_matrix_mem{mem}_alpha{alpha:g}.png"
        title = f"{group[0].setting.strategy}, mem {mem}" + (f", alpha {alpha:g}" if alpha != 1 else "")
        paths.append(plots.accuracy_matrix(mean, out / name, title))
    if command == "sweep":
        strategy = results[0].setting.strategy
        paths.append(
            plots.final_accuracy_vs(
                rows,
                "mem_size",
                "alpha",
                out / "final_accuracy_vs_mem_size.png",
                f"{strategy}: final accuracy vs memory size",
            )
        )
        if len({r["alpha"] for r in rows}) > 1:
            paths.append(
                plots.final_accuracy_vs(
                    rows,
                    "alpha",
                    "mem_size",
                    out / "final_accuracy_vs_alpha.png",
                    f"{strategy}: final accuracy vs alpha",
                )
            )
    return paths


if __name__ == "__main__":
    sys.exit(main())
