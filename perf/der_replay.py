"""Dark Experience Replay side by side: our DER and DER++ (logits stored as samples enter), our
ER, Avalanche's `DER` strategy and `Replay`, Naive.

MNIST 8000/2000 (SplitMNISTIdx, $AVALANCHE_REPLAY_MNIST_DIR), 5 experiences, SimpleMLP, batch 10
(+ 10 memory samples per memory minibatch), one pass, SGD(0.005, momentum 0.9) for every method,
memory 200 and 500, seeds 0-2. Ours: `AlphaReplayPlugin(mem, 1, update_every="iteration")` (ER),
`DERPlugin(mem, alpha=ALPHA, beta=0)` (DER) and `DERPlugin(mem, alpha=ALPHA, beta=BETA)` (DER++, two
memory minibatches; also sharing one, and on a class-balanced reservoir). Avalanche's:
`DER(mem_size=mem, batch_size_mem=10, alpha=ALPHA, beta=BETA)` (logits computed after each
experience, one memory minibatch for both terms) and
`ReplayPlugin(mem, batch_size_mem=10)` in Naive, as `Replay` does.

    python perf/der_replay.py            # memory 200 and 500, seeds 0-2
    python perf/der_replay.py --quick    # 2 experiences of 200 samples, memory 200, 1 seed
"""

from __future__ import annotations

import argparse
import functools

from _replay import compare, setup
from avalanche.training import DER as AVALANCHE_DER
from avalanche.training.plugins import ReplayPlugin

from avalanche_replay_ext import AlphaReplayPlugin, ClassBalancedReservoirBuffer, DERPlugin

ALPHA, BETA, BATCH_MEM = 0.3, 0.5, 10
NAIVE = "Avalanche Naive (no replay)"
OUR_ER = "ours ER (AlphaReplayPlugin, iteration)"
OUR_DER = f"ours DER (alpha {ALPHA})"
OUR_DERPP = f"ours DER++ (alpha {ALPHA}, beta {BETA})"
OUR_DERPP_SHARED = "ours DER++, one shared memory minibatch"
OUR_DERPP_CB = "ours DER++, class-balanced reservoir"
THEIR_DER = f"Avalanche DER (alpha {ALPHA}, beta {BETA})"
THEIR_REPLAY = "Avalanche Replay (ReplayPlugin)"


def methods(train: list, mem: int) -> dict:
    def ours(make):
        return lambda seed: ([make(seed)], train)

    their_der = functools.partial(AVALANCHE_DER, mem_size=mem, batch_size_mem=BATCH_MEM, alpha=ALPHA, beta=BETA)
    return {
        NAIVE: lambda seed: ([], train),
        OUR_ER: ours(lambda seed: AlphaReplayPlugin(mem, 1.0, BATCH_MEM, update_every="iteration", seed=seed)),
        OUR_DER: ours(lambda seed: DERPlugin(mem, ALPHA, 0.0, BATCH_MEM, seed=seed)),
        OUR_DERPP: ours(lambda seed: DERPlugin(mem, ALPHA, BETA, BATCH_MEM, seed=seed)),
        OUR_DERPP_SHARED: ours(lambda seed: DERPlugin(mem, ALPHA, BETA, BATCH_MEM, seed=seed, share_minibatch=True)),
        OUR_DERPP_CB: ours(
            lambda seed: DERPlugin(mem, ALPHA, BETA, BATCH_MEM, ClassBalancedReservoirBuffer(mem, seed=seed), seed)
        ),
        THEIR_DER: lambda seed: (their_der, train),
        THEIR_REPLAY: lambda seed: ([ReplayPlugin(mem, batch_size_mem=BATCH_MEM)], train),
    }


def report(results: dict) -> None:
    """The goal: our DER++ above our ER and above Avalanche's DER by more than the seeds' spread
    (the larger std of the two), at a speed within 1.3x of our ER."""
    for other in (OUR_ER, THEIR_DER):
        gap = results[OUR_DERPP]["accuracy"] - results[other]["accuracy"]
        spread = max(results[OUR_DERPP]["std"], results[other]["std"])
        print(f"DER++ - {other}: {gap:+.3f} (seeds' spread {spread:.3f}: beats it {gap > spread})")
    slowdown = results[OUR_ER]["samples_per_s"] / results[OUR_DERPP]["samples_per_s"]
    pairs = zip(results[OUR_ER]["speeds"], results[OUR_DERPP]["speeds"], strict=True)
    per_seed = ", ".join(f"{a / b:.2f}" for a, b in pairs)
    print(f"speed ours ER / ours DER++: {slowdown:.2f}x (per seed {per_seed}; goal <= 1.3x)")
    for mine, theirs in ((OUR_DERPP_SHARED, OUR_DERPP), (OUR_DERPP, THEIR_DER), (OUR_DER, THEIR_DER)):
        print(f"speed {mine} / {theirs}: {results[mine]['samples_per_s'] / results[theirs]['samples_per_s']:.2f}x")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    train, test = setup(args.quick)
    out = {}
    for mem in [200] if args.quick else [200, 500]:
        print(f"\nmemory {mem}")
        out[mem] = compare(methods(train, mem), [0] if args.quick else [0, 1, 2], train, test)
        report(out[mem])
    return out


if __name__ == "__main__":
    main()
