"""Online replay throughput, ours vs Avalanche 0.6, buffer updated after every 10-sample minibatch.

MNIST 8000/2000 (SplitMNISTIdx, $AVALANCHE_REPLAY_MNIST_DIR), 5 experiences, SimpleMLP, batch 10,
memory 1000, one pass, SGD(0.005, momentum 0.9), seeds 0-2. Avalanche's way: `split_online_stream`
of 10-sample experiences with `ReplayPlugin(1000, storage_policy=ClassBalancedBuffer(1000))`. Ours:
`AlphaReplayPlugin(1000, alpha=1, update_every="iteration")` in one `train(exp)` per experience.
Naive (no replay, one `train(exp)` per experience) is the ceiling any replay plugin can reach.

    python perf/online_throughput.py
    python perf/online_throughput.py --quick    # 2 experiences of 200 samples, 1 seed
"""

from __future__ import annotations

from _replay import benchmark
from avalanche.benchmarks.scenarios.online import split_online_stream
from avalanche.training.plugins import ReplayPlugin
from avalanche.training.storage_policy import ClassBalancedBuffer

from avalanche_replay_ext import AlphaReplayPlugin

AVALANCHE = "Avalanche ReplayPlugin(ClassBalancedBuffer), online stream"
OURS = 'ours AlphaReplayPlugin(update_every="iteration")'
NAIVE = "Avalanche Naive (no replay; the ceiling)"


def methods(train: list) -> dict:
    return {
        NAIVE: lambda seed: ([], train),
        AVALANCHE: lambda seed: (
            [ReplayPlugin(1000, storage_policy=ClassBalancedBuffer(1000))],
            split_online_stream(train, experience_size=10, seed=seed),
        ),
        OURS: lambda seed: ([AlphaReplayPlugin(1000, 1.0, update_every="iteration", seed=seed)], train),
    }


def main(argv: list[str] | None = None) -> dict:
    return benchmark(argv, __doc__, methods, [(OURS, AVALANCHE)], seeds=[0, 1, 2], ceiling=NAIVE)


if __name__ == "__main__":
    main()
