"""PNG plots of experiment results (matplotlib, no display needed)."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def accuracy_matrix(matrix: list[list[float]], path: Path, title: str) -> Path:
    """Heatmap: rows = experience trained, columns = experience tested."""
    fig, ax = plt.subplots(figsize=(5, 4.2))
    image = ax.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", color="w" if value < 0.6 else "k", fontsize=8)
    ax.set(xlabel="experience tested", ylabel="after training experience", title=title)
    ax.set_xticks(range(len(matrix[0])))
    ax.set_yticks(range(len(matrix)))
    fig.colorbar(image, ax=ax, label="accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def final_accuracy_vs(rows: list[dict], x: str, line: str, path: Path, title: str) -> Path:
    """Final stream accuracy against ``x`` (e.g. ``mem_size``), one line per value of ``line``,
    mean and std over seeds as error bars."""
    groups: dict = defaultdict(lambda: defaultdict(list))
    for r in rows:
        groups[r[line]][r[x]].append(r["final_accuracy"])
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for key, by_x in sorted(groups.items()):
        xs = sorted(by_x)
        means = [statistics.mean(by_x[v]) for v in xs]
        stds = [statistics.pstdev(by_x[v]) for v in xs]
        ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=f"{line} = {key}")
    if x == "mem_size":
        ax.set_xscale("log")
    ax.set(xlabel=x.replace("_", " "), ylabel="final accuracy (test stream)", ylim=(0, 1), title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
