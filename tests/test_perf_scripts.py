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
TESTS = (
    "test_benchmarks_run_quick_and_print_numbers",
    "test_scale_prints_each_section_with_goals",
    "test_buffer_updates_serves_samples_as_splitmnist",
)
START_EARLY = dict.fromkeys(TESTS, quick_run) if HAVE_MNIST else {}


def test_benchmarks_run_quick_and_print_numbers(mnist_dir):
    proc = quick_run().result()
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    scripts = ("buffer_updates", "buffer_scaling", "stock_online", "online_throughput", "experience_replay")
    scripts += ("balanced_replay", "der_replay", "der_masking", "memory")
    for script in (*scripts, "checkpoint_sizes", "scale", "gdumb_samplers", "gdumb_accuracy"):
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
    for masking in ("True ", "False"):
        assert re.search(rf"masking={masking} DER\+\+ 0\.\d{{3}} \+- 0\.000", out), masking
    assert re.search(r"500\s+400\s+0\.\d{3} \+- 0\.\d{3}\s+0\.\d{3}", out)


def test_scale_prints_each_section_with_goals(mnist_dir):
    proc = quick_run().result()
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = re.split(r"\n== \w+ --quick", proc.stdout.split("== scale --quick\n")[1])[0]  # up to the next script
    for section, sizes in [("updates", "dataset sizes 1,000 / 10,000"), ("online", "buffer 100 / 1,000 slots")]:
        assert re.search(rf"== {section} \| python perf/scale\.py --quick \| {sizes} .*\| seed 0 \| device cpu\n", out)
    assert re.search(r"== images \| python perf/scale\.py --quick \| 500 CIFAR-shaped .*\| seed 0 \| device cpu\n", out)
    rss = r"\d+ \(\+\d+\)"
    ms = r"\d+\.\d{3}"  # median ms at each size, then the slowest and the mean at the largest
    assert re.search(rf"  Avalanche Parametric\(class\)\s+{ms}\s+{ms}\s+\d+\.\d\d\s+{ms}\s+{rss}\s+{rss}\s+\d+\n", out)
    goal = r"goal (<=|>=) [\d.]+x: (met|not met)\n"
    ours = r"Reservoir \d+\.\d\dx, GreedyClassBalanced \d+\.\d\dx, ClassBalancedReservoir \d+\.\d\dx; "
    for constructor in ("nc_benchmark, online", "torchvision-style, list targets, subsets", "concat_datasets, subsets"):
        assert re.search(re.escape(constructor) + ": ours at 10,000 / ours at 1,000: " + ours + goal, out)
    assert re.search(r"  Avalanche at 10,000 / ours at 10,000: Reservoir / Reservoir \d+\.\dx, .*; " + goal, out)
    assert re.search(r"Avalanche ReplayPlugin, online stream\s+\d+\s+\d+\s+\d+\s+\d+\n", out)
    steps = r"online stream \d+\.\d\dx, one experience \d+\.\d\dx; "
    assert re.search(r"ours at 1,000 / ours at 100 steps/s: " + steps + goal, out)
    assert re.search(r"ours / Naive at 20 \(same path\) steps/s: online stream .*; " + goal, out)
    row = r"per experience 32 \+ 32, workers 2 ours AlphaReplayPlugin\s+\d+\.\d\s+[+-]\d+%\s+\d+\n"
    assert re.search(row, out)
    assert re.search(
        r"ours overhead / Avalanche's overhead: online 10 \+ 10, workers 0 .*; goal <= 1: (met|not met)\n", out
    )
    assert "plots: scale_updates.png, scale_online.png, scale_images.png in " in out


def test_buffer_updates_serves_samples_as_splitmnist(mnist_dir):
    proc = quick_run().result()
    assert proc.returncode == 0, proc.stderr[-2000:]
    section = proc.stdout.split("== buffer_updates --quick --splitmnist\n")[1].split("\n== ")[0]
    assert "100 updates of 10 samples (as SplitMNIST serves them)" in section
    ratios = r"Avalanche Parametric\(class\) / ours GreedyClassBalanced: update \d+\.\dx, .* read \d+\.\dx"
    assert re.search(ratios, section)
