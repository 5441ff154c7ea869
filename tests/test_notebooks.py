"""The tutorial notebooks hold their jupytext sources' cells, run end to end (nbclient) and print what
the tutorial shows. Rebuild them with `python notebooks/build.py` (notebooks/README.md).

The runs here use a shorter grid than the tutorial (``OVERRIDES``, injected after each notebook's
cell tagged ``parameters``) and share one kernel (``_notebooks_run.py``), started when the tests are
collected (``START_EARLY``) so that it runs while other tests do."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from helpers import Started, start

NOTEBOOKS = Path(__file__).parent.parent / "notebooks"
EXPECTED = {  # a few lines each notebook must print
    "01_dataloading_buffers_replay.ipynb": ["[0, 1, 2, 3, 4]", "(group 6) -> size 3", "Experience (4)"],
    "02_memory_sizes.ipynb": ["memory  1000: final accuracy"],
    "03_alpha_replay.ipynb": ["final accuracy on the test stream", "linear alpha 1.0"],
    "04_gdumb.ipynb": ["ParametricBuffer:", "after experience 4: greedy {1: 3, 4: 3, 5: 3, 7: 3, 9: 3, 3: 3, 0: 3"],
    "05_balanced_replay.ipynb": ["training samples per class", "class-balanced reservoir + balanced", "MIR(50)"],
    "06_der.ipynb": ["final accuracy on the test stream, memory", "DER++"],
}
OVERRIDES = {  # the tutorial's grids, shortened: every line above is still printed
    "01_dataloading_buffers_replay.ipynb": None,
    "02_memory_sizes.ipynb": "mem_sizes, seeds = [0, 1000], [0]",
    "03_alpha_replay.ipynb": "seeds, constant_alphas, linear_alphas = [0], [0.0, 1.0], [1.0]",
    "04_gdumb.ipynb": "seeds, passes = [0], 2",
    "05_balanced_replay.ipynb": "seeds = [0]",
    "06_der.ipynb": "seeds = [0]",
}


def notebooks_run() -> Started:
    script = Path(__file__).parent / "_notebooks_run.py"
    command = [sys.executable, str(script), ".", json.dumps(OVERRIDES)]
    return start("notebooks", command, own_folder=True)


START_EARLY = {"test_notebook_runs_and_prints": notebooks_run}


@pytest.fixture(scope="module")
def executed() -> Path:
    """The folder holding every notebook as executed."""
    started = notebooks_run()
    proc = started.result()
    assert proc.returncode == 0, proc.stderr[-3000:]
    return started.cwd


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_runs_and_prints(name, executed):
    nb = nbformat.read(executed / name, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == (OVERRIDES[name] is not None)  # ran with the shorter grid, if it has one
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    for line in EXPECTED[name]:
        assert line in text, line
    if name.startswith("01"):
        assert text.count("current size: 30") >= 10  # reservoir and parametric cells, 5 updates each
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) == (0 if name.startswith("01") else 1)


def test_saved_notebooks_carry_their_outputs():
    for name in EXPECTED:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])]
        assert code and all(c.outputs for c in code[1:]), name  # every cell after the setup printed something


def cells(path: Path) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source) for c in jupytext.read(path).cells]


def test_each_notebook_has_its_source():
    assert sorted(p.with_suffix(".ipynb").name for p in NOTEBOOKS.glob("[0-9][0-9]_*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_saved_notebook_is_in_sync_with_its_source(name):
    """The `.ipynb` holds its `.py` source's cells, in order, same types and text (outputs aside)."""
    source = NOTEBOOKS / name.replace(".ipynb", ".py")
    assert cells(NOTEBOOKS / name) == cells(source), f"stale: run `python notebooks/build.py {source.stem}`"
    assert jupytext.read(source).metadata["jupytext"]["formats"] == "ipynb,py:percent"
