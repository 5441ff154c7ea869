"""Experience-level replay, ours vs Avalanche 0.6: buffer updated after each experience.

MNIST 8000/2000 (SplitMNISTIdx, $AVALANCHE_REPLAY_MNIST_DIR), 5 experiences, SimpleMLP, one epoch,
batch 10, memory 1000, SGD(0.005, momentum 0.9), seeds 0-4. Avalanche: Naive, and
`ReplayPlugin(1000)` (its default experience-balanced buffer; 10 current + 10 memory samples per
step, one mean loss). Ours: `AlphaReplayPlugin(1000)` with alpha 1 and with `LinearAlpha(0.25)`
(alpha_t = t / 4: 1 on the last experience), reservoir buffer, 10 + 10 samples per step.

    python perf/experience_replay.py
    python perf/experience_replay.py --quick    # 2 experiences of 200 samples, 1 seed
"""

from __future__ import annotations

from _replay import benchmark
from avalanche.training.plugins import ReplayPlugin

from avalanche_replay_ext import AlphaReplayPlugin, LinearAlpha

AVALANCHE = "Avalanche ReplayPlugin(1000)"
OURS = "ours AlphaReplayPlugin(1000, alpha=1)"
NAIVE = "Avalanche Naive (no replay)"


def methods(train: list) -> dict:
    return {
        NAIVE: lambda seed: ([], train),
        AVALANCHE: lambda seed: ([ReplayPlugin(1000)], train),
        OURS: lambda seed: ([AlphaReplayPlugin(1000, 1.0, seed=seed)], train),
        "ours AlphaReplayPlugin(1000, LinearAlpha(0.25))": lambda seed: (
            [AlphaReplayPlugin(1000, LinearAlpha(0.25), seed=seed)],
            train,
        ),
    }


def main(argv: list[str] | None = None) -> dict:
    return benchmark(argv, __doc__, methods, [(OURS, AVALANCHE)], seeds=[0, 1, 2, 3, 4], ceiling=NAIVE)


if __name__ == "__main__":
    main()
