"""How our buffers scale with their capacity and with what they hold (no Avalanche side: these are
costs Avalanche's buffers do not have in this form; the reservoir is the yardstick).

- Tensor rows: 10 samples of 3x32x32 float32 (12 KB each) in a 10,000-slot buffer: rows allocated,
  `state_dict` and pickle sizes. Then 100,000 such slots filled by minibatches: time to rebuild
  `buffer` after one more minibatch, and the memory that rebuild allocates.
- `GreedyClassBalancedBuffer.resize` halving 5k / 10k / 20k full slots (100 classes), beside the
  reservoir's `resize` on the same sizes (best of 3): the ratio must stay flat as the size doubles.
- `buffer_groups` (and building every group's dataset) on a 100,000-slot, 1000-class greedy buffer.

    python perf/buffer_scaling.py
    python perf/buffer_scaling.py --quick    # a tenth of the sizes
"""

from __future__ import annotations

import argparse
import io
import pickle
import warnings

import torch
from _measure import rss_mb, timed

from avalanche_replay_ext import GreedyClassBalancedBuffer, ReservoirSamplingBuffer


def tensor_rows(slots: int, filled: int) -> None:
    sample = torch.randn(3, 32, 32)
    buf = ReservoirSamplingBuffer(10_000, seed=0)
    buf.update_from_batch(sample.expand(10, 3, 32, 32).clone(), torch.arange(10))
    saved = io.BytesIO()
    torch.save(buf.state_dict(), saved)
    print(
        f"10 samples of {sample.numel() * 4 // 1024} KB in a 10,000-slot buffer: {len(buf._slots.rows.x)} rows "
        f"allocated, state_dict {saved.tell() / 1024:.0f} KB, pickle {len(pickle.dumps(buf)) / 1024:.0f} KB"
    )
    big = ReservoirSamplingBuffer(slots, seed=0)
    for start in range(0, filled, 1000):
        big.update_from_batch(sample.expand(1000, 3, 32, 32).clone(), torch.arange(start, start + 1000) % 10)
    big.buffer  # noqa: B018 - the first view
    big.update_from_batch(sample.expand(10, 3, 32, 32).clone(), torch.arange(10))
    before = rss_mb()
    ms = timed(lambda: big.buffer)[0]
    print(
        f"{len(big.buffer):,} tensor samples held: rebuilding `buffer` after a 10-sample update takes {ms:.1f} ms "
        f"and adds {rss_mb() - before:.0f} MB of resident memory (the rows themselves: "
        f"{len(big.buffer) * sample.numel() * 4 / 2**20:.0f} MB)"
    )


def full(cls, size: int, classes: int):
    buf = cls(size, seed=0)
    y = torch.randint(0, classes, (size,), generator=torch.Generator().manual_seed(0))
    buf.update_from_batch(torch.zeros(size, 1), y)
    return buf


def halving_ms(cls, size: int) -> float:
    """Best of 3: time to halve a full buffer of ``size`` slots (a fresh one each time)."""
    times = []
    for _ in range(3):
        buf = full(cls, size, 100)
        times.append(timed(lambda buf=buf: buf.resize(None, size // 2))[0])
    return min(times)


def resizes(sizes: list[int]) -> None:
    print("halving a full buffer (100 classes):   greedy (ms)   reservoir (ms)   greedy / reservoir")
    for size in sizes:
        g, r = halving_ms(GreedyClassBalancedBuffer, size), halving_ms(ReservoirSamplingBuffer, size)
        print(f"  {size:>6} -> {size // 2:<6}{g:>28.1f}{r:>17.1f}{g / r:>21.1f}x")


def groups(size: int, classes: int) -> None:
    buf = full(GreedyClassBalancedBuffer, size, classes)
    before = rss_mb()
    ms = timed(lambda: buf.buffer_groups)[0]
    all_ms = timed(lambda: buf.buffer_datasets)[0]
    print(
        f"buffer_groups on {size:,} slots, {classes} classes: {ms:.0f} ms; every group's dataset built: "
        f"{all_ms:.0f} ms more; resident memory +{rss_mb() - before:.0f} MB"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    scale = 10 if args.quick else 1
    tensor_rows(100_000 // scale, 100_000 // scale)
    resizes([5_000 // scale, 10_000 // scale, 20_000 // scale])
    groups(100_000 // scale, 1000 // scale)


if __name__ == "__main__":
    main()
