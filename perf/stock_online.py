"""Our buffers in Avalanche's own online path, side by side with Avalanche's buffers.

The path a new user takes first: a stock `Naive` with Avalanche's `ReplayPlugin(1000,
storage_policy=buffer)`, trained with one `strategy.train(sub)` per 10-sample mini-experience of
`split_online_stream(..., experience_size=10)`. MNIST 8000/2000 (SplitMNISTIdx,
$AVALANCHE_REPLAY_MNIST_DIR), 5 experiences, SimpleMLP, batch 10 (+ 10 memory samples), memory
1000, one pass, SGD(0.005, momentum 0.9), seeds 0-2. Pairs: our `ReservoirSamplingBuffer` vs
Avalanche's `ReservoirSamplingBuffer`, our `GreedyClassBalancedBuffer` vs Avalanche's
`ClassBalancedBuffer(adaptive_size=True)`, and our `ClassBalancedReservoirBuffer` vs that same
buffer; Naive on the same online stream, with no replay, is the
ceiling any buffer can reach in this path.

    python perf/stock_online.py            # seeds 0-2
    python perf/stock_online.py --quick    # 2 experiences of 200 samples, 1 seed
"""

from __future__ import annotations

from _replay import benchmark
from avalanche.benchmarks.scenarios.online import split_online_stream
from avalanche.training.plugins import ReplayPlugin
from avalanche.training.storage_policy import ClassBalancedBuffer
from avalanche.training.storage_policy import ReservoirSamplingBuffer as AvalancheReservoir

from avalanche_replay_ext import ClassBalancedReservoirBuffer, GreedyClassBalancedBuffer, ReservoirSamplingBuffer

NAIVE = "Avalanche Naive, no replay (the ceiling)"
THEIR_RESERVOIR = "ReplayPlugin(Avalanche ReservoirSamplingBuffer)"
OUR_RESERVOIR = "ReplayPlugin(ours ReservoirSamplingBuffer)"
THEIR_BALANCED = "ReplayPlugin(Avalanche ClassBalancedBuffer)"
OUR_GREEDY = "ReplayPlugin(ours GreedyClassBalancedBuffer)"
OUR_CBRS = "ReplayPlugin(ours ClassBalancedReservoirBuffer)"


def methods(train: list) -> dict:
    def replay(make_buffer):
        return lambda seed: ([ReplayPlugin(1000, storage_policy=make_buffer(seed))], online(seed))

    def online(seed: int):
        return split_online_stream(train, experience_size=10, seed=seed)

    return {
        NAIVE: lambda seed: ([], online(seed)),
        THEIR_RESERVOIR: replay(lambda seed: AvalancheReservoir(1000)),
        OUR_RESERVOIR: replay(lambda seed: ReservoirSamplingBuffer(1000, seed=seed)),
        THEIR_BALANCED: replay(lambda seed: ClassBalancedBuffer(1000, adaptive_size=True)),
        OUR_GREEDY: replay(lambda seed: GreedyClassBalancedBuffer(1000, seed=seed)),
        OUR_CBRS: replay(lambda seed: ClassBalancedReservoirBuffer(1000, seed=seed)),
    }


def main(argv: list[str] | None = None) -> dict:
    pairs = [(OUR_RESERVOIR, THEIR_RESERVOIR), (OUR_GREEDY, THEIR_BALANCED), (OUR_CBRS, THEIR_BALANCED)]
    return benchmark(argv, __doc__, methods, pairs, seeds=[0, 1, 2], ceiling=NAIVE)


if __name__ == "__main__":
    main()
