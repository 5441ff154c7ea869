"""``avalanche-replay``: run or sweep replay experiments; prints a table, writes results and plots.

avalanche-replay                      # default: run alpha replay, mem 200, SplitDigits, 3 epochs
avalanche-replay --out runs/mine      # options without a command apply to the default command, run
avalanche-replay --out runs/mine --overwrite   # --out must be empty, or its contents replaced whole
avalanche-replay run --strategy gdumb --mem-size 300 --epochs 16
avalanche-replay sweep --strategy alpha-replay --mem-sizes 10 30 100 300 --alphas 0 0.5 1 2 --seeds 0 1 2
avalanche-replay sweep --imbalance-ratio 0.1 --mem-sizes 200 --retrievals random balanced \\
    --storages reservoir class-balanced-reservoir --seeds 0 1 2   # replay policies on a long-tailed stream
avalanche-replay run --strategy der --alpha 0.3   # Dark Experience Replay: replay stored logits, weight 0.3
avalanche-replay sweep --strategy derpp --mem-sizes 200 500 --alphas 0.1 0.3 --betas 0.5 1 --seeds 0 1 2   # DER++

`avalanche-replay run --help` and `avalanche-replay sweep --help` list the options and their defaults.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import importlib.metadata
import json
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import uuid
import warnings
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from itertools import product
from pathlib import Path
from types import ModuleType
from typing import Any

from .settings import (
    ALLOWED,
    BENCHMARKS,
    MNIST_DIR_ENV,
    N_EXPERIENCES,
    RETRIEVALS,
    SCHEDULES,
    STORAGES,
    STRATEGIES,
    STRATEGY_DEFAULTS,
    STRATEGY_FIELDS,
    USES,
    Setting,
)

PROG = "avalanche-replay"
COMMANDS = ("run", "sweep")
CSV_COLUMNS = (
    "strategy",
    "benchmark",
    "mem_size",
    "alpha",
    "alpha_schedule",
    "beta",
    "storage",
    "retrieval",
    "imbalance_ratio",
    "epochs",
    "seed",
    "batch_size",
    "lr",
    "final_accuracy",
    "average_accuracy",
    "seconds",
    "command_line",
    "avalanche_replay_ext_version",
    "avalanche_lib_version",
    "torch_version",
)
VERSIONS = {"avalanche_replay_ext": "avalanche-replay-ext", "avalanche_lib": "avalanche-lib", "torch": "torch"}
STRATEGY_OPTIONS = {  # option's dest -> (the Setting field it sets, its default for a strategy that uses it,
    # or a dict: strategy -> that strategy's default)
    "mem_size": ("mem_size", 200),
    "mem_sizes": ("mem_size", [10, 30, 100, 300]),
    "alpha": ("alpha", STRATEGY_DEFAULTS["alpha"]),
    "alphas": ("alpha", {s: [a] for s, a in STRATEGY_DEFAULTS["alpha"].items()}),
    "alpha_schedule": ("alpha_schedule", "constant"),
    "beta": ("beta", 0.5),
    "betas": ("beta", [0.5]),
    "storage": ("storage", "reservoir"),
    "storages": ("storage", ["reservoir"]),
    "retrieval": ("retrieval", "random"),
    "retrievals": ("retrieval", ["random"]),
}
STORAGE_HELP = "the buffer: reservoir (reservoir sampling) or class-balanced-reservoir (its class-balanced variant)"
RETRIEVAL_HELP = (
    "what each step replays from the buffer: random (reshuffled passes), balanced (every class stored "
    "equally often) or mir (maximally interfered retrieval, MIRRetrieval's default 50 candidates per step: "
    "alpha-replay only)"
)
ALPHA_HELP = "memory loss weight; for der and derpp, the weight of the MSE to the logits stored"
BETA_HELP = "DER++'s weight of the cross-entropy on the labels stored"
SCHEDULE_HELP = (
    "constant alpha, or alpha_t = alpha * t (t = experiences trained before); der, derpp: alpha's schedule, "
    "beta stays constant"
)
# The numbers an option passes to torch must fit the type torch gives them: memory sizes, epochs and
# batch sizes int64 (a larger batch size overflows in the DataLoader, mid-run), the learning rate and
# the loss weights float32, the model's dtype (a larger lr overflows in SGD's step; a larger weight
# makes the loss inf, silently; a learning rate below float32's normal range is about 0 there).
INT64_MAX = 2**63 - 1
FLOAT32_MAX = 3.4028234663852886e38  # the largest finite float32
FLOAT32_TINY = 1.1754943508222875e-38  # the smallest normal float32
POSITIVE_INT = "a positive int (>= 1) and <= 2**63 - 1 (int64's largest)"
WEIGHT = f"a finite number >= 0 and <= {FLOAT32_MAX!r} (float32's largest)"
LEARNING_RATE = f"a finite number in [{FLOAT32_TINY!r}, {FLOAT32_MAX!r}] (float32's positive normal range)"
QUIET_WARNINGS = (  # (message, category) of import-time notices a user cannot act on
    ("no QP solver found", UserWarning),  # qpsolvers, imported by Avalanche for GEM (not used here)
)


def _option(parse: Callable[[str], object], rule: Callable[[ModuleType, object], object]) -> Callable[[str], object]:
    """An argparse type: ``parse`` the text, then apply a rule of ``_checks`` (one message per rule).
    ``_checks`` imports torch, so it is imported when an option is converted, not for ``--help``."""

    def convert(text: str) -> object:
        from . import _checks

        try:
            value = parse(text)
        except ValueError:
            value = text
        try:
            return rule(_checks, value)
        except (TypeError, ValueError) as err:
            raise argparse.ArgumentTypeError(str(err).removeprefix("value ")) from None

    return convert


def _bounded(parse: Callable[[str], Any], low: float, high: float, allowed: str) -> Callable[[str], Any]:
    """An argparse type: ``parse`` the text; the value must lie in ``[low, high]`` (NaN does not),
    else the error says it must be ``allowed``."""

    def convert(text: str) -> Any:
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be {allowed}, got {value!r}")
        return value

    return convert


_positive_int = _bounded(int, 1, INT64_MAX, POSITIVE_INT)
_seed = _option(int, lambda c, v: c.check_seed(v, "value", optional=False))
_alpha = _bounded(float, 0.0, FLOAT32_MAX, WEIGHT)
_learning_rate = _bounded(float, FLOAT32_TINY, FLOAT32_MAX, LEARNING_RATE)
_ratio = _option(float, lambda c, v: c.check_range("value", v, 0.0, 1.0, open_low=True))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        usage=f"%(prog)s [-h] [{{{','.join(COMMANDS)}}}] [OPTION ...]",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="{run,sweep}")
    run = commands.add_parser("run", prog=f"{PROG} run", help="train one setting (the default command)")
    sweep = commands.add_parser(
        "sweep",
        prog=f"{PROG} sweep",
        help="train a grid of memory sizes x alphas x betas x storages x retrievals x seeds",
    )
    for p, name in ((run, "run"), (sweep, "sweep")):
        _add_common_options(p, Path("runs") / name)
    run.add_argument("--mem-size", type=_positive_int, metavar="N", help=_strategy_help("mem_size", "memory size"))
    run.add_argument("--alpha", type=_alpha, metavar="A", help=_strategy_help("alpha", ALPHA_HELP))
    run.add_argument("--beta", type=_alpha, metavar="B", help=_strategy_help("beta", BETA_HELP))
    run.add_argument("--storage", choices=STORAGES, metavar="S", help=_strategy_help("storage", STORAGE_HELP))
    run.add_argument("--retrieval", choices=RETRIEVALS, metavar="R", help=_strategy_help("retrieval", RETRIEVAL_HELP))
    run.add_argument(
        "--seed", type=_seed, metavar="N", default=0, help="class order, model and memory seed (default: %(default)s)"
    )
    sweep.add_argument(
        "--mem-sizes",
        type=_positive_int,
        nargs="+",
        metavar="N",
        help=_strategy_help("mem_sizes", "memory sizes"),
    )
    sweep.add_argument("--alphas", type=_alpha, nargs="+", metavar="A", help=_strategy_help("alphas", ALPHA_HELP))
    sweep.add_argument("--betas", type=_alpha, nargs="+", metavar="B", help=_strategy_help("betas", BETA_HELP))
    sweep.add_argument(
        "--storages", choices=STORAGES, nargs="+", metavar="S", help=_strategy_help("storages", STORAGE_HELP)
    )
    sweep.add_argument(
        "--retrievals", choices=RETRIEVALS, nargs="+", metavar="R", help=_strategy_help("retrievals", RETRIEVAL_HELP)
    )
    sweep.add_argument(
        "--seeds",
        type=_seed,
        nargs="+",
        metavar="N",
        default=[0, 1, 2],
        help="class order, model and memory seeds (default: %(default)s)",
    )
    return parser


def _users(field: str, value: object = None) -> str:
    """'--strategy replay, alpha-replay, gdumb, der or derpp': the strategies that use ``field`` (and, given a
    ``value``, that take it: see ``settings.ALLOWED``)."""
    users = [s for s in STRATEGIES if field in USES[s] and (value is None or value in ALLOWED.get((s, field), [value]))]
    return "--strategy " + _enumerate(users, "or")


def _enumerate(words: list[str], conjunction: str) -> str:
    """'a, b or c'."""
    *others, last = words
    return f"{', '.join(others)} {conjunction} {last}" if others else last


def _shown(default: object) -> str:
    values = default if isinstance(default, list) else [default]
    return " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def _strategy_help(dest: str, text: str) -> str:
    """``text`` with the default (per strategy where it differs: '1 for alpha-replay, 0.1 for der
    and derpp') and the strategies the option applies to."""
    field, default = STRATEGY_OPTIONS[dest]
    if isinstance(default, dict):
        by_value: dict[str, list[str]] = {}
        for strategy, value in default.items():
            by_value.setdefault(_shown(value), []).append(strategy)
        shown = ", ".join(f"{v} for {_enumerate(strategies, 'and')}" for v, strategies in by_value.items())
    else:
        shown = _shown(default)
    return f"{text} (default: {shown}; {_users(field)} only)"


def _add_common_options(p: argparse.ArgumentParser, out: Path) -> None:
    p.set_defaults(error=p.error)  # errors found after parsing print this command's usage
    p.add_argument("--strategy", choices=STRATEGIES, default="alpha-replay", help="what trains (default: %(default)s)")
    p.add_argument(
        "--alpha-schedule",
        choices=SCHEDULES,
        help=_strategy_help("alpha_schedule", SCHEDULE_HELP),
    )
    p.add_argument(
        "--benchmark",
        choices=BENCHMARKS,
        default="split-digits",
        help="5 experiences, 2 classes each (default: %(default)s)",
    )
    p.add_argument(
        "--data-dir", metavar="DIR", help=f"MNIST IDX folder for --benchmark mnist-idx (default: ${MNIST_DIR_ENV})"
    )
    p.add_argument(
        "--imbalance-ratio",
        type=_ratio,
        metavar="R",
        help="a long-tailed training stream: class k of the stream's 10 (k = 0..9, in stream order) keeps the "
        "share R ** (k / 9) of its training images, the last R; R in (0, 1]; the test sets stay balanced "
        "(default: balanced)",
    )
    p.add_argument(
        "--epochs", type=_positive_int, metavar="N", default=3, help="epochs per experience (default: %(default)s)"
    )
    p.add_argument(
        "--batch-size", type=_positive_int, default=32, metavar="N", help="minibatch size (default: %(default)s)"
    )
    p.add_argument("--lr", type=_learning_rate, default=0.1, help="SGD learning rate (default: %(default)s)")
    p.add_argument("--out", type=Path, metavar="DIR", default=out, help="output folder (default: %(default)s)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace what a non-empty --out holds: once the new outputs are all written, --out holds them "
        "and nothing else (default: a non-empty --out is an error)",
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        help="tqdm bars (--progress) or no progress report (--no-progress) (default: bars if stderr is a "
        "terminal, else one line per experience)",
    )


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Options given without a command apply to ``run``; the strategy's options are checked and given
    their defaults (the strategy's own where they differ), the others are None."""
    if not argv or argv[0] not in (*COMMANDS, "-h", "--help"):
        argv = ["run", *argv]
    args = build_parser().parse_args(argv)
    for dest, (field, default) in STRATEGY_OPTIONS.items():
        if dest not in vars(args):
            continue
        used = field in USES[args.strategy]
        if getattr(args, dest) is not None and not used:
            args.error(f"argument --{dest.replace('_', '-')}: applies to {_users(field)} only, not {args.strategy}")
        if getattr(args, dest) is None and used:
            setattr(args, dest, default[args.strategy] if isinstance(default, dict) else default)
        allowed = ALLOWED.get((args.strategy, field))  # None: every choice
        values = getattr(args, dest)
        for value in values if isinstance(values, list) else [values]:
            if allowed is not None and value not in allowed:
                option = f"--{dest.replace('_', '-')}"
                args.error(f"argument {option}: {value} applies to {_users(field, value)} only, not {args.strategy}")
    if args.data_dir is not None and args.benchmark != "mnist-idx":
        args.error(f"argument --data-dir: applies to --benchmark mnist-idx only, not {args.benchmark}")
    check_linear_alpha(args)
    return args


def check_linear_alpha(args: argparse.Namespace) -> None:
    """The linear schedule weighs the last experience's memory loss alpha * (N_EXPERIENCES - 1):
    that weight must fit float32 too."""
    if args.alpha_schedule != "linear":
        return
    dest = "alpha" if args.command == "run" else "alphas"
    t = N_EXPERIENCES - 1
    for alpha in getattr(args, dest) if dest == "alphas" else [args.alpha]:
        if alpha * t > FLOAT32_MAX:
            args.error(
                f"argument --{dest}: with --alpha-schedule linear the weight reaches alpha * {t} (after {t} "
                f"experiences), which must be <= {FLOAT32_MAX!r} (float32's largest), got alpha {alpha:g}"
            )


def settings(args: argparse.Namespace) -> list[Setting]:
    """The settings ``args`` trains; a field the strategy does not use keeps Setting's default."""
    base = Setting(
        strategy=args.strategy,
        benchmark=args.benchmark,
        imbalance_ratio=args.imbalance_ratio,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
    )
    base = replace(base, alpha_schedule=args.alpha_schedule) if args.alpha_schedule else base
    if args.command == "run":
        grid = ([args.mem_size], [args.alpha], [args.beta], [args.storage], [args.retrieval], [args.seed])
    else:
        grid = (
            args.mem_sizes or [None],
            args.alphas or [None],
            args.betas or [None],
            args.storages or [None],
            args.retrievals or [None],
            args.seeds,
        )
    fields = ("mem_size", "alpha", "beta", "storage", "retrieval", "seed")
    return [
        replace(base, **{f: v for f, v in zip(fields, values, strict=True) if v is not None})
        for values in product(*grid)
    ]


def mnist_folder(args: argparse.Namespace) -> Path:
    """The MNIST IDX folder: ``--data-dir``, else ``$AVALANCHE_REPLAY_MNIST_DIR``; it must exist."""
    how = f"pass --data-dir DIR or set ${MNIST_DIR_ENV}"
    given = args.data_dir or os.environ.get(MNIST_DIR_ENV)
    if not given:
        args.error(f"--benchmark mnist-idx needs the folder with the MNIST IDX files: {how}")
    path = Path(given).expanduser()
    if not path.is_dir():
        source = "--data-dir" if args.data_dir else f"${MNIST_DIR_ENV}"
        args.error(f"--benchmark mnist-idx: MNIST folder {str(path)!r} (from {source}) does not exist; {how}")
    return path


def check_mnist_files(args: argparse.Namespace, folder: Path, setting: Setting) -> None:
    """Build ``setting``'s benchmark from ``folder`` once, before training: files that cannot be
    read or do not hold MNIST (see ``load_mnist_idx``) are a usage error naming the file."""
    experiments = import_experiments()
    try:
        experiments.make_benchmark(setting.benchmark, setting.seed, folder, setting.imbalance_ratio)
    except (OSError, ValueError) as err:
        args.error(f"--benchmark mnist-idx: {err}")


def check_out(args: argparse.Namespace) -> None:
    """Before training: create ``--out``, which must not be the working directory (nor hold it) and
    must be empty unless ``--overwrite`` is given, and check that its parent, where the outputs
    are assembled (see :func:`save_outputs`), can be written."""
    out, cwd = args.out.resolve(), Path.cwd().resolve()
    if out == cwd or out in cwd.parents:
        args.error(f"argument --out: {str(args.out)!r} is the working directory or holds it: name a folder of its own")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        occupied = any(args.out.iterdir())
    except OSError as err:
        args.error(f"argument --out: cannot write to {str(args.out)!r}: {err.strerror or err}")
    if occupied and not args.overwrite:
        args.error(f"argument --out: folder {str(args.out)!r} is not empty: pass --overwrite to replace its contents")
    try:
        with tempfile.TemporaryDirectory(dir=out.parent):
            pass
    except OSError as err:
        args.error(
            f"argument --out: cannot write to {str(out.parent)!r}, the folder that holds --out (the outputs "
            f"are written there first, then moved into --out): {err.strerror or err}"
        )


def save_outputs(args: argparse.Namespace, rows: list[dict], record: dict[str, Any]) -> list[Path]:
    """Write the outputs (see :func:`write_outputs`) to a new folder beside ``--out``, then put that
    folder in ``--out``'s place and delete the previous one: ``--out`` holds either what it held
    before or all the new outputs, never a mix. Returns the paths written, under ``--out``."""
    out = args.out.resolve()
    new, old = (out.parent / f".{out.name}.{what}-{uuid.uuid4().hex[:8]}" for what in ("new", "old"))
    new.mkdir()
    try:
        names = [path.name for path in write_outputs(args.command, new, rows, record)]
        if out.exists():
            out.rename(old)
        new.rename(out)
    except BaseException:
        if old.exists() and not out.exists():
            old.rename(out)
        shutil.rmtree(new, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return [args.out / name for name in names]


def import_experiments() -> ModuleType:
    """``experiments`` (torch, Avalanche: seconds to import), without the notices in QUIET_WARNINGS."""
    with warnings.catch_warnings():
        for message, category in QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=category)
        return importlib.import_module(".experiments", __package__)


def provenance(argv: list[str], seeds: list[int]) -> dict[str, Any]:
    """What reproduces the outputs: the command line as given, the versions installed, the seeds."""
    versions = {}
    for key, dist in VERSIONS.items():
        try:
            versions[key] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[key] = None
    return {"command_line": shlex.join([PROG, *argv]), "versions": versions, "seeds": sorted(set(seeds))}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    runs = settings(args)
    data_dir = mnist_folder(args) if args.benchmark == "mnist-idx" else None
    if data_dir is not None:
        check_mnist_files(args, data_dir, runs[0])
    check_out(args)
    bars = sys.stderr.isatty() if args.progress is None else args.progress
    log = partial(print, file=sys.stderr, flush=True) if args.progress is None and not bars else None
    try:
        experiments = import_experiments()
        results = [experiments.run_setting(s, bars, data_dir, log) for s in runs]
    except (OSError, ValueError, TypeError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    rows = [r.row() for r in results]
    print_table(rows)
    if args.command == "run":
        last = results[0].accuracy_matrix[-1]
        print("accuracy per experience after the stream: " + " ".join(f"{a:.3f}" for a in last))
    for path in save_outputs(args, rows, provenance(argv, [r["seed"] for r in rows])):
        print(f"wrote {path}")
    return 0


def _cell(value: object, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def print_table(rows: list[dict]) -> None:
    """Mean (+- std over seeds) final and average accuracy per setting; '-': not used by the strategy."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        key = (r["strategy"], r["mem_size"], r["alpha"], r["alpha_schedule"], r.get("beta"), r["storage"])
        groups.setdefault((*key, r["retrieval"]), []).append(r)
    widths = {f: 2 + max(len(f), *(len(_cell(r[f])) for r in rows)) for f in ("storage", "retrieval")}
    print(
        f"\n{'strategy':<13}{'mem':>6}{'alpha':>7}{'schedule':>10}{'beta':>6}{'storage':>{widths['storage']}}"
        f"{'retrieval':>{widths['retrieval']}}{'seeds':>7}{'final acc':>18}{'avg acc':>10}"
    )
    for (strategy, mem, alpha, schedule, beta, storage, retrieval), group in groups.items():
        final = [g["final_accuracy"] for g in group]
        avg = statistics.mean(g["average_accuracy"] for g in group)
        cell = f"{statistics.mean(final):.3f} +- {statistics.pstdev(final):.3f}"
        print(
            f"{strategy:<13}{_cell(mem):>6}{_cell(alpha, 'g'):>7}{_cell(schedule):>10}{_cell(beta, 'g'):>6}"
            f"{_cell(storage):>{widths['storage']}}{_cell(retrieval):>{widths['retrieval']}}{len(group):>7}{cell:>18}"
            f"{avg:>10.3f}"
        )


def write_outputs(command: str, out: Path, rows: list[dict], record: dict[str, Any]) -> list[Path]:
    """results.json, results.csv and the PNG plots, each with ``record`` (see :func:`provenance`);
    returns the paths written."""
    paths = [out / "results.json", out / "results.csv"]
    paths[0].write_text(json.dumps({"command": command, **record, "results": rows}, indent=2))
    versions = {f"{key}_version": v for key, v in record["versions"].items()}
    with paths[1].open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows({**r, "command_line": record["command_line"], **versions} for r in rows)
    return paths + write_plots(command, out, rows, record)


def write_plots(command: str, out: Path, rows: list[dict], record: dict[str, Any]) -> list[Path]:
    """The accuracy matrix of each setting (mean over seeds) and, for sweeps, final accuracy against
    memory size, alpha and beta, one line per other value swept (alpha, beta, memory size, storage,
    retrieval); each PNG's metadata holds the command line, versions and seeds. Rows without a
    ``beta`` (written before DER++) count as None."""
    from . import plots

    def save(fig, name: str) -> Path:
        meta = {"Title": fig.axes[0].get_title(), "Description": record["command_line"], "Comment": _note(record)}
        return plots.save(fig, out / name, meta)

    rows = [{"beta": None, **r} for r in rows]
    varies = [f for f in ("mem_size", "alpha", "beta", "storage", "retrieval") if len({r[f] for r in rows}) > 1]
    policies = [f for f in ("storage", "retrieval") if f in varies]  # in the file names and the lines
    by_setting: dict[tuple, list[dict]] = {}
    for r in rows:
        by_setting.setdefault((r["mem_size"], r["alpha"], r["beta"], *(r[f] for f in policies)), []).append(r)
    paths = []
    for (mem, alpha, beta, *policy), group in by_setting.items():
        name = "accuracy_matrix" if command == "run" else "accuracy_matrix" + _suffix(mem, alpha, beta, policy)
        paths.append(save(plots.accuracy_matrix(mean_matrix(group), title(group)), f"{name}.png"))
    if command == "sweep" and rows[0]["mem_size"] is not None:
        weights = [f for f in ("alpha", "beta") if f in varies]
        lines = [*weights, *policies] or (["alpha"] if rows[0]["alpha"] is not None else [])
        what = "final accuracy vs memory size" + _per_line([f for f in lines if f in varies])
        fig = plots.final_accuracy_vs(rows, "mem_size", tuple(lines) or None, title(rows, what))
        paths.append(save(fig, "final_accuracy_vs_mem_size.png"))
        for x in weights:
            lines = ["mem_size", *(f for f in weights if f != x), *policies]
            what = f"final accuracy vs {x}" + _per_line(lines)
            fig = plots.final_accuracy_vs(rows, x, tuple(lines), title(rows, what))
            paths.append(save(fig, f"final_accuracy_vs_{x}.png"))
    return paths


def _per_line(fields: list[str]) -> str:
    """', one line per alpha', ', one line per storage x retrieval' ('' for no field)."""
    names = {"mem_size": "memory size"}
    return ", one line per " + " x ".join(names.get(f, f) for f in fields) if fields else ""


def _suffix(mem: int | None, alpha: float | None, beta: float | None, policy: list[str]) -> str:
    """'_mem200_alpha1' ('_mem200_alpha0.1_beta0.5' for DER++), then the storage and retrieval
    where the sweep varies them ('_reservoir_mir')."""
    return "".join(
        [
            ("" if mem is None else f"_mem{mem}"),
            ("" if alpha is None else f"_alpha{alpha:g}"),
            ("" if beta is None else f"_beta{beta:g}"),
            *(f"_{p}" for p in policy),
        ]
    )


def _note(record: dict[str, Any]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in record["versions"].items())
    return f"seeds: {' '.join(map(str, record['seeds']))}; versions: {versions}"


def mean_matrix(rows: list[dict]) -> list[list[float]]:
    """The rows' accuracy matrices averaged element-wise (over seeds)."""
    return [
        [statistics.mean(cells) for cells in zip(*lines, strict=True)]
        for lines in zip(*(r["accuracy_matrix"] for r in rows), strict=True)
    ]


SHOWN = {  # Setting field -> how a title shows a value that is the same in every row
    "mem_size": "mem {}".format,
    "alpha": lambda v: f"alpha {v:g}",
    "alpha_schedule": "{} alpha schedule".format,
    "beta": lambda v: f"beta {v:g}",
    "storage": "{} storage".format,
    "retrieval": "{} retrieval".format,
    "imbalance_ratio": lambda v: f"imbalance ratio {v:g}",
    "epochs": "epochs {}".format,
    "batch_size": "batch {}".format,
    "lr": lambda v: f"lr {v:g}",
}


def title(rows: list[dict], what: str = "") -> str:
    """Three lines: '<strategy> on <benchmark>[: what]'; the strategy's own settings; the training
    settings and the seed, or 'mean over N seeds'. Only settings the rows share and the strategy
    uses (those that vary are the plot's axis or lines)."""
    first = rows[0]
    same = {
        f: fmt(first[f])
        for f, fmt in SHOWN.items()
        if first.get(f) is not None and len({r.get(f) for r in rows}) == 1  # .get: rows written before a field
    }
    seeds = sorted({r["seed"] for r in rows})
    lines = [
        f"{first['strategy']} on {first['benchmark']}" + (f": {what}" if what else ""),
        ", ".join(text for f, text in same.items() if f in STRATEGY_FIELDS),
        ", ".join([*(text for f, text in same.items() if f not in STRATEGY_FIELDS), _seeds(seeds)]),
    ]
    return "\n".join(line for line in lines if line)


def _seeds(seeds: list[int]) -> str:
    return f"mean over {len(seeds)} seeds" if len(seeds) > 1 else f"seed {seeds[0]}"


if __name__ == "__main__":
    sys.exit(main())
