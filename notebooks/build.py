"""Write each tutorial notebook from its jupytext source, execute it here, and save it with its outputs.

    python notebooks/build.py                   # all of them: NN_name.py -> NN_name.ipynb
    python notebooks/build.py 03_alpha_replay   # some (stems, .py or .ipynb names)

The sources are the `NN_name.py` files (jupytext percent format, paired with `ipynb`); the kernel runs
in this folder, where the notebooks import `_setup.py`. An error in a cell stops the build and leaves
that `.ipynb` as it was. tests/test_notebooks.py checks that each `.ipynb` holds its source's cells
and executes it again.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import jupytext
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent


def sources(names: list[str]) -> list[Path]:
    """The notebook sources named by ``names`` (all ``NN_*.py`` when empty)."""
    if not names:
        return sorted(HERE.glob("[0-9][0-9]_*.py"))
    paths = [HERE / (Path(name).stem + ".py") for name in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise SystemExit(f"no notebook source {', '.join(missing)} in {HERE}")
    return paths


def build(source: Path, timeout: int = 900) -> Path:
    """Execute ``source`` in this folder and write its ``.ipynb`` (raises on a failing cell)."""
    nb = jupytext.read(source)
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:02d}"  # not jupytext's random ids: a rebuild's diff shows only what changed
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", record_timing=False, resources={"metadata": {"path": str(HERE)}}
    )
    client.execute()
    target = source.with_suffix(".ipynb")
    jupytext.write(nb, target)
    return target


def main(names: list[str]) -> None:
    for source in sources(names):
        start = time.perf_counter()
        target = build(source)
        print(f"wrote {target.relative_to(HERE.parent)} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
