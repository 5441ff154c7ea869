"""The speed and accuracy scripts (perf/) run in quick mode and print numbers; their speed is not tested
here. The command starts when the tests are collected (``START_EARLY``) and runs while other tests
do."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from helpers import Started, start

from avalanche_replay_ext.benchmarks import MNIST_DIR_ENV

PERF = Path(__file__).parent.parent / "perf"
RUN = PERF / "run.py"


def quick_run() -> Started:
    return start("perf/run.py --quick", [sys.executable, str(RUN), "--quick"])


HAVE_MNIST = os.path.isdir(os.environ.get(MNIST_DIR_ENV, ""))  # without it the tests skip: start nothing
TESTS = ("test_benchmarks_run_quick_and_print_numbers", "test_buffer_updates_serves_samples_as_splitmnist")
START_EARLY = dict.fromkeys(TESTS, quick_run) if HAVE_MNIST else {}


def test_benchmarks_run_quick_and_print_numbers(mnist_dir):
    proc = quick_run().result()
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    scripts = ("buffer_updates", "buffer_scaling", "stock_online", "online_throughput", "experience_replay")
    scripts += ("balanced_replay", "der_replay", "memory")
    for script in (*scripts, "checkpoint_sizes", "gdumb_samplers", "gdumb_accuracy"):
        assert f"== {script} --quick\n" in out
    assert "== buffer_updates --quick --splitmnist\n" in out
    assert re.search(r"ours Reservoir: update \d+\.\d\dx, view \d+\.\d\dx, read \d+\.\d\dx, pickle \d+\.\d\dx", out)
    assert re.search(r"Avalanche Reservoir / ours Reservoir: update \d+\.\dx, updates \+ view \d+\.\dx", out)
    assert re.search(r"in a 10,000-slot buffer: \d+ rows allocated, state_dict \d+ KB", out)
    assert re.search(r"1000 -> 500 \s+\d+\.\d\s+\d+\.\d\s+\d+\.\dx", out)
    ratio = r"\d+\.\d\dx samples/s \(per seed \d+\.\d\d\), accuracy 0\.\d{3} vs 0\.\d{3}\n  ceiling .*: \d+\.\d\dx"
    for ours, theirs in [
        ("ReplayPlugin(ours ReservoirSamplingBuffer)", "ReplayPlugin(Avalanche ReservoirSamplingBuffer)"),
        ("ReplayPlugin(ours GreedyClassBalancedBuffer)", "ReplayPlugin(Avalanche ClassBalancedBuffer)"),
        ("ReplayPlugin(ours ClassBalancedReservoirBuffer)", "ReplayPlugin(Avalanche ClassBalancedBuffer)"),
        (
            'ours AlphaReplayPlugin(update_every="iteration")',
            "Avalanche ReplayPlugin(ClassBalancedBuffer), online stream",
        ),
        ("ours AlphaReplayPlugin(1000, alpha=1)", "Avalanche ReplayPlugin(1000)"),
    ]:
        assert re.search(re.escape(f"ratio {ours} / {theirs}: ") + ratio, out), (ours, theirs)
    assert re.search(r"ours AlphaReplayPlugin\(5000\)\s+\d+\s+\d+\s+\d+", out)
    size = r"\s+\d+\.\d\d /\s+\d+\.\d\d \d+\.\d\dx"
    for case in ("SplitMNISTIdx, ours AlphaReplayPlugin(200, iteration)", "own: nc_benchmark(TensorDataset)"):
        assert re.search(re.escape(case) + ".*?" + size * 2 + r"\s+-?\d+\.\d KB", out), case
    assert re.search(r"ours class-balanced reservoir \+ balanced\s+\d+\s+0\.\d{3} \+- 0\.000", out)
    assert re.search(r"best balanced pair \(.*\) - ours reservoir \+ random: [+-]0\.\d{3}", out)
    assert re.search(r"speed ours reservoir \+ MIR\(50\) / Avalanche MIRPlugin\(subsample 50\): \d+\.\d\dx", out)
    assert re.search(r"ours DER\+\+ \(alpha 0\.3, beta 0\.5\)\s+\d+\s+0\.\d{3} \+- 0\.000", out)
    assert re.search(r"speed ours ER / ours DER\+\+: \d+\.\d\dx \(per seed \d+\.\d\d; goal <= 1\.3x\)", out)
    assert re.search(r"ParametricBuffer: 0\.\d{3}", out)
    assert re.search(r"500\s+400\s+0\.\d{3} \+- 0\.\d{3}\s+0\.\d{3}", out)


def test_buffer_updates_serves_samples_as_splitmnist(mnist_dir):
    proc = quick_run().result()
    assert proc.returncode == 0, proc.stderr[-2000:]
    section = proc.stdout.split("== buffer_updates --quick --splitmnist\n")[1].split("\n== ")[0]
    assert "100 updates of 10 samples (as SplitMNIST serves them)" in section
    ratios = r"Avalanche Parametric\(class\) / ours GreedyClassBalanced: update \d+\.\dx, .* read \d+\.\dx"
    assert re.search(ratios, section)
