"""Every side-by-side benchmark against Avalanche 0.6, one after the other.

    python perf/run.py                          # the full set (timings: perf/README.md)
    python perf/run.py --quick                  # every script in its quick mode: checks they run
    python perf/run.py stock_online memory      # only the scripts named

MNIST measures read $AVALANCHE_REPLAY_MNIST_DIR. Each script can also run alone; see perf/README.md.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import balanced_replay  # noqa: E402
import buffer_scaling  # noqa: E402
import buffer_updates  # noqa: E402
import checkpoint_sizes  # noqa: E402
import der_masking  # noqa: E402
import der_replay  # noqa: E402
import experience_replay  # noqa: E402
import gdumb_accuracy  # noqa: E402
import gdumb_samplers  # noqa: E402
import memory  # noqa: E402
import online_throughput  # noqa: E402
import scale  # noqa: E402
import stock_online  # noqa: E402

SCRIPTS = [  # (script, its own flags)
    (buffer_updates, []),
    (buffer_updates, ["--splitmnist"]),
    (buffer_scaling, []),
    (stock_online, []),
    (online_throughput, []),
    (experience_replay, []),
    (balanced_replay, []),
    (der_replay, []),
    (der_masking, []),
    (memory, []),
    (checkpoint_sizes, []),
    (scale, []),
    (gdumb_samplers, []),
    (gdumb_accuracy, []),
]


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    flags = ["--quick"] if "--quick" in args else []
    names = [a for a in args if a != "--quick"]
    known = list(dict.fromkeys(script.__name__ for script, _ in SCRIPTS))
    unknown = set(names) - set(known)
    if unknown:
        sys.exit(f"run.py: unknown scripts {sorted(unknown)}; choose from {known}")
    for script, own in SCRIPTS:
        if names and script.__name__ not in names:
            continue
        print(f"\n== {script.__name__} {' '.join(flags + own)}", flush=True)
        start = time.perf_counter()
        script.main(flags + own)
        print(f"({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
