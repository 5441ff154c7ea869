"""The benchmark scripts run (quick mode) and print numbers; their speed is not tested here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).parent.parent / "benchmarks" / "run.py"


def test_benchmarks_run_quick_and_print_numbers(mnist_dir):
    proc = subprocess.run([sys.executable, str(RUN), "--quick"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    for script in ("buffer_updates", "online_throughput", "gdumb_samplers", "gdumb_accuracy"):
        assert f"== {script} --quick" in out
    assert re.search(r"ReservoirSamplingBuffer / ours ReservoirSamplingBuffer: update \d+\.\dx", out)
    assert re.search(r"ratio ours / Avalanche: \d+\.\dx samples/s", out)
    assert re.search(r"ParametricBuffer: 0\.\d{3}", out)
    assert re.search(r"500\s+400\s+0\.\d{3} \+- 0\.\d{3}\s+0\.\d{3}", out)
