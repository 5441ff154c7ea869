"""PNG plots of experiment results (matplotlib figures without pyplot: no display, no global state).

The functions return the figure, so a caller can read its title, ticks and legend before
:func:`save` writes it."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

LABELS = {"mem_size": "memory size (samples)", "alpha": "alpha (memory loss weight)"}


def accuracy_matrix(matrix: list[list[float]], title: str) -> Figure:
    """Heatmap: rows = experience trained, columns = experience tested."""
    fig = Figure(figsize=(5.5, 4.8))
    ax = fig.add_subplot()
    image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", color="w" if value < 0.6 else "k", fontsize=8)
    ax.set(xlabel="experience tested", ylabel="after training experience")
    ax.set_title(title, fontsize=9)
    ax.set_xticks(range(len(matrix[0])))
    ax.set_yticks(range(len(matrix)))
    fig.colorbar(image, ax=ax, label="accuracy")
    fig.tight_layout()
    return fig


def final_accuracy_vs(rows: list[dict], x: str, line: str | None, title: str) -> Figure:
    """Final stream accuracy against ``x`` (``mem_size`` or ``alpha``), one line per value of
    ``line`` (None: one line), mean over the rows' seeds with their std as error bars; the x axis
    ticks at exactly the values tested (log scale for memory sizes)."""
    groups: dict = defaultdict(lambda: defaultdict(list))
    for r in rows:
        groups[None if line is None else r[line]][r[x]].append(r["final_accuracy"])
    n_seeds = len({r["seed"] for r in rows})
    fig = Figure(figsize=(6, 4.5))
    ax = fig.add_subplot()
    for key, by_x in sorted(groups.items()):
        xs = sorted(by_x)
        means = [statistics.mean(by_x[v]) for v in xs]
        stds = [statistics.pstdev(by_x[v]) for v in xs] if n_seeds > 1 else None
        label = rows[0]["strategy"] if line is None else f"{line.replace('_', ' ')} = {key:g}"
        ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=label)
    tested = sorted({r[x] for r in rows})
    if x == "mem_size":
        ax.set_xscale("log")
    ax.set_xticks(tested, [f"{v:g}" for v in tested])
    ax.xaxis.set_minor_locator(NullLocator())  # no unlabelled ticks between the sizes tested
    ax.set(xlabel=LABELS.get(x, x), ylabel="final accuracy (test stream)", ylim=(0, 1))
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    note = f"error bars: std over {n_seeds} seeds" if n_seeds > 1 else "1 seed: no error bars"
    ax.legend(fontsize=8, title=note, title_fontsize=8)
    fig.tight_layout()
    return fig


def save(fig: Figure, path: Path, metadata: dict[str, str] | None = None) -> Path:
    """Write ``fig`` as a PNG at ``path``, with ``metadata`` in its text chunks (e.g. ``Description``)."""
    fig.savefig(path, dpi=100, metadata=metadata)
    return path
