"""Every side-by-side benchmark against Avalanche 0.6, one after the other.

    python perf/run.py            # the full set (timings: perf/README.md)
    python perf/run.py --quick    # every script in its quick mode: checks they run

MNIST measures read $AVALANCHE_REPLAY_MNIST_DIR. Each script can also run alone; see perf/README.md.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import buffer_scaling  # noqa: E402
import buffer_updates  # noqa: E402
import checkpoint_sizes  # noqa: E402
import experience_replay  # noqa: E402
import gdumb_accuracy  # noqa: E402
import gdumb_samplers  # noqa: E402
import memory  # noqa: E402
import online_throughput  # noqa: E402
import stock_online  # noqa: E402

SCRIPTS = [
    buffer_updates,
    buffer_scaling,
    stock_online,
    online_throughput,
    experience_replay,
    memory,
    checkpoint_sizes,
    gdumb_samplers,
    gdumb_accuracy,
]


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    flags = ["--quick"] if "--quick" in args else []
    for script in SCRIPTS:
        print(f"\n== {script.__name__} {' '.join(flags)}", flush=True)
        start = time.perf_counter()
        script.main(flags)
        print(f"({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
