"""What is stored and what is replayed, on long-tailed streams, side by side with Avalanche.

MNIST 8000/2000 (SplitMNISTIdx, $AVALANCHE_REPLAY_MNIST_DIR), 5 experiences, the training stream
long-tailed with `imbalance_ratio` 0.1 and 0.01 (class c of the class order keeps
round(800 * ratio ** (c / 9)) images; the test set stays balanced), SimpleMLP, batch 10, one
pass, SGD(0.005, momentum 0.9), memory 500, seeds 0-2 (class order fixed). Ours: online
`AlphaReplayPlugin(500, alpha=1, update_every="iteration", batch_size_mem=10)` with every
storage x retrieval pair (reservoir or class-balanced reservoir; random or class-balanced
retrieval) and with MIR (`MIRRetrieval(50)`, on either buffer), trained a whole experience per
`strategy.train`. Avalanche's: `ReplayPlugin(500, batch_size_mem=10, ClassBalancedBuffer(500,
adaptive_size=True))` and its `MIRPlugin(batch_size_mem=10, mem_size=500, subsample=50)`, on
`split_online_stream(experience_size=10)`, the online path they are built for. Naive in each path
is that path's speed ceiling.

    python perf/balanced_replay.py            # ratios 0.1 and 0.01, seeds 0-2
    python perf/balanced_replay.py --quick    # ratio 0.1, 2 experiences of the quick split, 1 seed
"""

from __future__ import annotations

import argparse

from _replay import QUICK_TEST_SIZE, compare, setup
from avalanche.benchmarks.scenarios.online import split_online_stream
from avalanche.training.plugins import MIRPlugin, ReplayPlugin
from avalanche.training.storage_policy import ClassBalancedBuffer

from avalanche_replay_ext import (
    AlphaReplayPlugin,
    BalancedRetrieval,
    ClassBalancedReservoirBuffer,
    MIRRetrieval,
    RandomRetrieval,
    ReservoirSamplingBuffer,
    SplitMNISTIdx,
)

MEM, BATCH_MEM, CANDIDATES = 500, 10, 50
STORAGES = {"reservoir": ReservoirSamplingBuffer, "class-balanced reservoir": ClassBalancedReservoirBuffer}
RETRIEVALS = {"random": RandomRetrieval, "balanced": lambda: BalancedRetrieval("class")}
NAIVE = "Naive, whole experiences (ceiling of ours)"
NAIVE_ONLINE = "Naive, split_online_stream (ceiling of Avalanche's)"
OURS_RANDOM = "ours reservoir + random"
OURS_MIR = "ours reservoir + MIR(50)"
OURS_CB_MIR = "ours class-balanced reservoir + MIR(50)"
THEIR_BALANCED = "Avalanche ReplayPlugin(ClassBalancedBuffer)"
THEIR_MIR = "Avalanche MIRPlugin(subsample 50)"


def methods(train: list) -> dict:
    def ours(storage: str, retrieval):
        def make(seed: int):
            buffer = STORAGES[storage](MEM, seed=seed)
            plugin = AlphaReplayPlugin(
                MEM, 1.0, BATCH_MEM, buffer, update_every="iteration", seed=seed, retrieval=retrieval()
            )
            return [plugin], train

        return make

    def online(seed: int):
        return split_online_stream(train, experience_size=10, seed=seed)

    table = {NAIVE: lambda seed: ([], train)}
    for storage in STORAGES:
        for name, retrieval in RETRIEVALS.items():
            table[f"ours {storage} + {name}"] = ours(storage, retrieval)
    table[OURS_MIR] = ours("reservoir", lambda: MIRRetrieval(CANDIDATES))
    table[OURS_CB_MIR] = ours("class-balanced reservoir", lambda: MIRRetrieval(CANDIDATES))
    table[NAIVE_ONLINE] = lambda seed: ([], online(seed))
    table[THEIR_BALANCED] = lambda seed: (
        [ReplayPlugin(MEM, batch_size_mem=BATCH_MEM, storage_policy=ClassBalancedBuffer(MEM, adaptive_size=True))],
        online(seed),
    )
    table[THEIR_MIR] = lambda seed: (
        [MIRPlugin(batch_size_mem=BATCH_MEM, mem_size=MEM, subsample=CANDIDATES)],
        online(seed),
    )
    return table


def report(results: dict) -> None:
    """The issue's comparisons: the best balanced pair (class-balanced storage or retrieval) and the
    best of ours overall, each against reservoir + random and against Avalanche's best, by more
    than the seeds' spread (the larger std of the two); MIR's cost."""
    ours = [k for k in results if k.startswith("ours")]
    balanced = [k for k in ours if "balanced" in k and "MIR" not in k]
    theirs = max((THEIR_BALANCED, THEIR_MIR), key=lambda k: results[k]["accuracy"])
    for label, pool in (("best balanced pair", balanced), ("best of ours", ours)):
        best = max(pool, key=lambda k: results[k]["accuracy"])
        for other in (OURS_RANDOM, theirs):
            gap = results[best]["accuracy"] - results[other]["accuracy"]
            spread = max(results[best]["std"], results[other]["std"])
            print(f"{label} ({best}) - {other}: {gap:+.3f} (seeds' spread {spread:.3f}: beats it {gap > spread})")
    for mine, base in ((OURS_MIR, OURS_RANDOM), (THEIR_MIR, THEIR_BALANCED), (OURS_MIR, THEIR_MIR)):
        ratio = results[mine]["samples_per_s"] / results[base]["samples_per_s"]
        print(f"speed {mine} / {base}: {ratio:.2f}x samples/s")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    setup(args.quick)  # quiet, one thread
    out = {}
    for ratio in [0.1] if args.quick else [0.1, 0.01]:
        bm = SplitMNISTIdx(5, seed=0, test_size=QUICK_TEST_SIZE if args.quick else 2000, imbalance_ratio=ratio)
        train = list(bm.train_stream)[: 2 if args.quick else 5]
        print(f"\nimbalance_ratio {ratio}: {[len(e.dataset) for e in train]} training samples per experience")
        out[ratio] = compare(methods(train), [0] if args.quick else [0, 1, 2], train, bm.test_stream)
        report(out[ratio])
    return out


if __name__ == "__main__":
    main()
