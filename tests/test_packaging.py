"""The package builds as an sdist and a wheel that `twine check` accepts (the README renders as the
registry page), with its license, type marker and console script. The build runs in this
environment (``--no-isolation``: the test extra brings setuptools), so it needs no network."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parent.parent


def test_build_and_twine_check(tmp_path):
    build = [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(tmp_path), str(ROOT)]
    proc = subprocess.run(build, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    dists = sorted(p.name for p in tmp_path.iterdir())
    assert [d.rsplit(".", 1)[-1] for d in dists] == ["whl", "gz"], dists  # a wheel and an sdist
    check = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, tmp_path.iterdir())],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0 and check.stdout.count("PASSED") == 2, check.stdout + check.stderr
    with zipfile.ZipFile(tmp_path / dists[0]) as wheel:
        names = wheel.namelist()
        metadata = wheel.read(next(n for n in names if n.endswith("/METADATA"))).decode()
        entry_points = wheel.read(next(n for n in names if n.endswith("/entry_points.txt"))).decode()
    assert "avalanche_replay_ext/py.typed" in names
    assert any(n.endswith("/licenses/LICENSE") for n in names), names
    assert "License-Expression: MIT" in metadata and "Provides-Extra: notebooks" in metadata
    assert "Project-URL" not in metadata and "Author" not in metadata  # none invented
    assert "avalanche-replay = avalanche_replay_ext.cli:main" in entry_points
