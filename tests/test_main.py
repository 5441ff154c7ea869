"""``python -m avalanche_replay_ext``: the README's first command ends with it."""

from __future__ import annotations

import re
import subprocess
import sys


def test_demo_run_prints_accuracy_per_experience():
    out = subprocess.run(
        [sys.executable, "-m", "avalanche_replay_ext"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    accs = [float(a) for a in re.findall(r"experience \d: accuracy (\d\.\d+)", out)]
    assert len(accs) == 5 and all(0.0 <= a <= 1.0 for a in accs), out
    # measured: average 0.777 (seed 0); Naive without replay ends near 0.2
    assert sum(accs) / 5 > 0.6, out


def test_demo_rejects_bad_arguments():
    proc = subprocess.run(
        [sys.executable, "-m", "avalanche_replay_ext", "--mem-size", "-5"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 2 and "must be positive" in proc.stderr
