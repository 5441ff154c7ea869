"""PNG plots of experiment results (matplotlib figures without pyplot: no display, no global state).

The functions return the figure, so a caller can read its title, ticks and legend before
:func:`save` writes it."""

from __future__ import annotations

import math
import statistics
import textwrap
from collections import defaultdict
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

LABELS = {
    "mem_size": "memory size (samples)",
    "alpha": "alpha (memory loss weight)",
    "beta": "beta (memory label loss weight)",
}


def accuracy_matrix(matrix: list[list[float]], title: str) -> Figure:
    """Heatmap: rows = experience trained, columns = experience tested."""
    fig = Figure(figsize=(5.5, 4.8))
    ax = fig.add_subplot()
    image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", color="w" if value < 0.6 else "k", fontsize=8)
    ax.set(xlabel="experience tested", ylabel="after training experience")
    ax.set_title(_wrap(title, 68), fontsize=9)  # centred over the axes, left of the colour bar
    ax.set_xticks(range(len(matrix[0])))
    ax.set_yticks(range(len(matrix)))
    fig.colorbar(image, ax=ax, label="accuracy")
    fig.tight_layout()
    return fig


def final_accuracy_vs(rows: list[dict], x: str, line: str | tuple[str, ...] | None, title: str) -> Figure:
    """Final stream accuracy against ``x`` (``mem_size``, ``alpha`` or ``beta``), one line per value of the
    field ``line`` or per combination of the fields in a tuple (None: one line), mean over the
    rows' seeds with their std as error bars; the x axis ticks at exactly the values tested (log
    scale for memory sizes).

    Lines come in the order of their numbers, and of the text values' first rows (the order a
    sweep was given its storages); several lines are shifted a little apart along x so that their
    points and error bars do not hide each other. A number shows as ``alpha = 1``; text values
    (storage, retrieval) show as ``reservoir + random``, the legend's title naming their fields."""
    fields = () if line is None else (line,) if isinstance(line, str) else tuple(line)
    groups: dict = defaultdict(lambda: defaultdict(list))
    for r in rows:
        groups[tuple(r[f] for f in fields)][r[x]].append(r["final_accuracy"])
    first = {f: list(dict.fromkeys(r[f] for r in rows)) for f in fields}
    texts = [f for f in fields if not all(_is_number(v) for v in first[f])]

    def order(key: tuple) -> tuple:
        return tuple(first[f].index(v) if f in texts else v for f, v in zip(fields, key, strict=True))

    def label(key: tuple) -> str:
        values = dict(zip(fields, key, strict=True))
        numbers = [f"{f.replace('_', ' ')} = {values[f]:g}" for f in fields if f not in texts]
        return ", ".join([*numbers, *([" + ".join(str(values[f]) for f in texts)] if texts else [])])

    tested = sorted({r[x] for r in rows})
    n_seeds = len({r["seed"] for r in rows})
    fig = Figure(figsize=(6, 4.5))
    ax = fig.add_subplot()
    for i, (key, by_x) in enumerate(sorted(groups.items(), key=lambda item: order(item[0]))):
        xs = sorted(by_x)
        means = [statistics.mean(by_x[v]) for v in xs]
        stds = [statistics.pstdev(by_x[v]) for v in xs] if n_seeds > 1 else None
        shifted = _shift(xs, tested, i - (len(groups) - 1) / 2, log=x == "mem_size")
        ax.errorbar(shifted, means, yerr=stds, marker="o", capsize=3, label=label(key) or rows[0]["strategy"])
    if x == "mem_size":
        ax.set_xscale("log")
    ax.set_xticks(tested, [f"{v:g}" for v in tested])
    ax.xaxis.set_minor_locator(NullLocator())  # no unlabelled ticks between the sizes tested
    if len(tested) == 1:  # room around the one value tested, whatever the shifts
        ax.set_xlim(*((tested[0] / 2, tested[0] * 2) if x == "mem_size" else (tested[0] - 1, tested[0] + 1)))
    ax.set(xlabel=LABELS.get(x, x), ylabel="final accuracy (test stream)", ylim=(0, 1))
    ax.set_title(_wrap(title, 84), fontsize=9)
    ax.grid(alpha=0.3)
    note = f"error bars: std over {n_seeds} seeds" if n_seeds > 1 else "1 seed: no error bars"
    ax.legend(fontsize=8, title="\n".join([*([" + ".join(texts)] if texts else []), note]), title_fontsize=8)
    fig.tight_layout()
    return fig


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _shift(xs: list[float], tested: list[float], offset: float, log: bool) -> list[float]:
    """``xs`` moved ``offset`` steps of 1.5% of the tested range (of its decades on a log axis;
    one decade, or 1, when a single value was tested)."""
    if not offset:
        return xs
    if log:
        decades = math.log10(tested[-1] / tested[0]) or 1.0
        return [v * 10 ** (0.015 * decades * offset) for v in xs]
    span = (tested[-1] - tested[0]) or 1.0
    return [v + 0.015 * span * offset for v in xs]


def _wrap(title: str, width: int) -> str:
    """``title`` with each line longer than ``width`` characters (what fits the figure at 9 pt)
    broken at spaces."""
    return "\n".join("\n".join(textwrap.wrap(t, width, break_on_hyphens=False)) or t for t in title.split("\n"))


def save(fig: Figure, path: Path, metadata: dict[str, str] | None = None) -> Path:
    """Write ``fig`` as a PNG at ``path``, with ``metadata`` in its text chunks (e.g. ``Description``)."""
    fig.savefig(path, dpi=100, metadata=metadata)
    return path
