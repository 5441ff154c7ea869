"""Execute the tutorial notebooks one after the other in one kernel (nbclient), for the notebook tests.

    python tests/_notebooks_run.py OUT_DIR OVERRIDES_JSON

OVERRIDES_JSON maps each notebook's file name to None or to code that runs right after its cell
tagged ``parameters`` (papermill's convention): the tests run a shorter grid than the tutorial.
Each notebook starts after ``%reset -f``, so none sees another's variables; they share the
imports, which is most of what a fresh kernel would cost. Writes OUT_DIR/<name>: the notebook as
executed, its injected cell included. The kernel runs in OUT_DIR, next to a copy of ``_setup.py``.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"


def with_overrides(nb: nbformat.NotebookNode, code: str | None) -> list:
    """The notebook's cells, ``code`` inserted after the cell tagged ``parameters``."""
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        if code is not None and "parameters" in cell.metadata.get("tags", []):
            cells.append(nbformat.v4.new_code_cell(code, metadata={"tags": ["injected-parameters"]}))
    if code is not None and len(cells) == len(nb.cells):
        raise ValueError("overrides given for a notebook without a cell tagged 'parameters'")
    return cells


def main(out: Path, overrides: dict[str, str | None]) -> None:
    shutil.copy(NOTEBOOKS / "_setup.py", out)
    notebooks = {name: nbformat.read(NOTEBOOKS / name, as_version=4) for name in overrides}
    combined, spans = nbformat.v4.new_notebook(), {}
    for name, nb in notebooks.items():
        combined.cells.append(nbformat.v4.new_code_cell("%reset -f"))
        cells = with_overrides(nb, overrides[name])
        spans[name] = (len(combined.cells), len(combined.cells) + len(cells))
        combined.cells += cells
    client = NotebookClient(combined, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(out)}})
    client.execute()
    for name, (first, end) in spans.items():
        notebooks[name].cells = combined.cells[first:end]
        nbformat.write(notebooks[name], out / name)


if __name__ == "__main__":
    main(Path(sys.argv[1]), json.loads(sys.argv[2]))
