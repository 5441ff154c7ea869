"""The benchmark scripts run (quick mode) and print numbers; their speed is not tested here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).parent.parent / "benchmarks"
RUN = BENCHMARKS / "run.py"


def test_benchmarks_run_quick_and_print_numbers(mnist_dir):
    proc = subprocess.run([sys.executable, str(RUN), "--quick"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    scripts = ("buffer_updates", "online_throughput", "experience_replay", "memory", "gdumb_samplers", "gdumb_accuracy")
    for script in scripts:
        assert f"== {script} --quick" in out
    assert re.search(r"ReservoirSamplingBuffer / ours ReservoirSamplingBuffer: update \d+\.\dx", out)
    ratio = r"\d+\.\d\dx samples/s, accuracy 0\.\d{3} vs 0\.\d{3}"
    assert re.search(r"ratio ours / Avalanche ReplayPlugin\(ClassBalancedBuffer\), online stream: " + ratio, out)
    assert re.search(r"ratio ours / Avalanche ReplayPlugin\(1000\): " + ratio, out)
    assert re.search(r"ours AlphaReplayPlugin\(5000\)\s+\d+\s+\d+\s+\d+", out)
    assert re.search(r"ParametricBuffer: 0\.\d{3}", out)
    assert re.search(r"500\s+400\s+0\.\d{3} \+- 0\.\d{3}\s+0\.\d{3}", out)


def test_buffer_updates_serves_samples_as_splitmnist(mnist_dir):
    script = BENCHMARKS / "buffer_updates.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--splitmnist"], capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "100 updates of 10 samples (as SplitMNIST serves them)" in proc.stdout
    ratios = r"ParametricBuffer\(class\) / ours GreedyClassBalancedBuffer: update \d+\.\dx, read \d+\.\dx"
    assert re.search(ratios, proc.stdout)
