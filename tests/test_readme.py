"""README.md runs as written: its Python blocks, top to bottom, as one script run as ``__main__``
in an empty folder (they write checkpoints). mktestdocs finds the blocks; the script runs as a
file, as a user's would, so that dill pickles what it defines by reference to ``__main__``. The
block fenced as ``py`` needs torchrun: it runs in ``test_distributed.py``."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

from mktestdocs import grab_code_blocks

README = Path(__file__).parent.parent / "README.md"


def test_every_python_block_runs_in_order(tmp_path, monkeypatch, capsys):
    script = tmp_path / "readme.py"
    script.write_text("\n".join(grab_code_blocks(README.read_text(), lang="python")))
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(script), run_name="__main__")
    out = capsys.readouterr().out
    assert out.startswith("30 30 [")  # the first block's buffer after the first experience
    assert re.search(r"final accuracy 0\.\d{3}, last alpha 4\.0\n", out)  # LinearAlpha(1.0) at t = 4
    assert "{0: 27, 1: 28, 2: 5} [0, 1]\n" in out  # the class-balanced reservoir on a 500/50/5 stream
    assert re.search(r"GDumb on ParametricBuffer: 0\.\d{3}\n", out)
    assert (tmp_path / "ckpt.pkl").exists() and (tmp_path / "my_run.ckpt").exists()


def test_ci_runs_the_readme_test_command_verbatim():
    bash = grab_code_blocks(README.read_text(), lang="bash")
    (command,) = [b.strip() for b in bash if "pytest" in b]
    tested = command.split(" && ")[-1]  # after installing the test extra
    assert tested == ".venv/bin/python -m pytest -q -rs"
    assert tested in (README.parent / ".ci" / "run").read_text().splitlines()


def test_readme_fits_the_registry_page():
    """No link that breaks outside the repository, no path of a particular machine."""
    text = README.read_text()
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert links and all(link.startswith(("https://", "#")) for link in links), links
    assert "../" not in text and "/work/" not in text
