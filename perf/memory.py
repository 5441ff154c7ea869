"""Peak memory (RSS) of a replay run with a 5000-slot buffer, ours vs Avalanche 0.6.

MNIST 8000/2000 (SplitMNISTIdx, $AVALANCHE_REPLAY_MNIST_DIR), 5 experiences, SimpleMLP, one epoch,
batch 10: Avalanche's `ReplayPlugin(5000)` vs our `AlphaReplayPlugin(5000)`, and Naive as the
no-buffer baseline. Each run is a fresh process, forked from a server that has imported torch,
Avalanche and this package (``_measure.in_fresh_process``), as every run would. It reports its RSS
after loading the data and its peak RSS after training (VmHWM, which starts afresh in a new
process). The MNIST images take 31 MB (10,000 x 784 float32); a buffer that copied 5000 of them
would add about 16 MB.

    python perf/memory.py
    python perf/memory.py --quick    # 2 experiences of 200 samples
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from _measure import in_fresh_process

METHODS = ("Avalanche Naive (no buffer)", "Avalanche ReplayPlugin(5000)", "ours AlphaReplayPlugin(5000)")


def high_water_mb() -> float:
    """Peak resident memory of this process since it started (``ru_maxrss`` would also count the
    parent's memory at the fork)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def child(method: str, quick: bool, out: str) -> None:
    """One run, in a process of its own; its readings go to ``out`` as JSON."""
    from _measure import rss_mb
    from _replay import run, setup
    from avalanche.training.plugins import ReplayPlugin

    from avalanche_replay_ext import AlphaReplayPlugin

    train, test = setup(quick)
    plugins = {
        METHODS[0]: [],
        METHODS[1]: [ReplayPlugin(5000)],
        METHODS[2]: [AlphaReplayPlugin(5000, 1.0, seed=0)],
    }[method]
    before = rss_mb()
    run(plugins, train, sum(len(e.dataset) for e in train), test, seed=0)
    buffer = plugins[0].storage_policy.buffer if plugins else []
    peak = high_water_mb()
    Path(out).write_text(json.dumps({"before": before, "peak": peak, "buffer": len(buffer)}))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    results = {}
    print(f"{'method':<34}{'RSS after loading (MB)':>24}{'peak RSS (MB)':>15}{'buffer size':>13}")
    for method in METHODS:
        with tempfile.TemporaryDirectory() as tmp:
            in_fresh_process(child, method, args.quick, f"{tmp}/result.json")
            r = results[method] = json.loads(Path(tmp, "result.json").read_text())
        print(f"{method:<34}{r['before']:>24.0f}{r['peak']:>15.0f}{r['buffer']:>13}")
    ours, theirs, naive = results[METHODS[2]], results[METHODS[1]], results[METHODS[0]]
    print(
        f"peak RSS ours / Avalanche: {ours['peak'] / theirs['peak']:.2f}x; above Naive's peak: "
        f"ours {ours['peak'] - naive['peak']:+.0f} MB, Avalanche {theirs['peak'] - naive['peak']:+.0f} MB"
    )
    return results


if __name__ == "__main__":
    main()
