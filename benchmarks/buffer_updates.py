"""Buffer update cost, ours vs Avalanche 0.6, on the same stream of 10-sample minibatches.

1000 updates of 10 samples (random indices of the SplitMNISTIdx training experiences, or SplitDigits
when no MNIST folder is set) into a 500-slot buffer. Per buffer: mean time per update, first vs
last quarter of the stream (flatness), and the time to read all stored items once.

`--splitmnist` serves the same MNIST images the way Avalanche 0.6's `SplitMNIST` does: uint8
images converted to float per item (its `TensorMNIST`), then its `Normalize` transform.

    python benchmarks/buffer_updates.py               # ~1 min
    python benchmarks/buffer_updates.py --splitmnist  # samples as SplitMNIST serves them
    python benchmarks/buffer_updates.py --quick       # 100 updates
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from types import SimpleNamespace

import torch
from avalanche.benchmarks import nc_benchmark
from avalanche.training.storage_policy import ClassBalancedBuffer, ParametricBuffer
from avalanche.training.storage_policy import ReservoirSamplingBuffer as AvalancheReservoir
from torch.utils.data import Dataset
from torchvision.transforms import Normalize

from avalanche_replay_ext import GreedyClassBalancedBuffer, ReservoirSamplingBuffer, SplitDigits, SplitMNISTIdx
from avalanche_replay_ext.benchmarks import MNIST_DIR_ENV, load_mnist_idx
from avalanche_replay_ext.benchmarks.mnist_idx import MNIST_MEAN, MNIST_STD


class TensorMNISTLike(Dataset):
    """uint8 images converted per item, as Avalanche 0.6's ``TensorMNIST`` (inside ``SplitMNIST``) does."""

    def __init__(self, images: torch.Tensor, targets: torch.Tensor) -> None:
        self.data, self.targets = images, targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.data[i].float().unsqueeze(0) / 255.0, int(self.targets[i])


def splitmnist_like():
    """The MNIST images (back to uint8) in 5 class-incremental experiences, served as ``SplitMNIST``."""
    x, y = load_mnist_idx()
    images = ((x[:, 0] * MNIST_STD + MNIST_MEAN) * 255).round().to(torch.uint8)
    normalize = Normalize((MNIST_MEAN,), (MNIST_STD,))  # SplitMNIST's default transform
    train, test = TensorMNISTLike(images[:8000], y[:8000]), TensorMNISTLike(images[8000:], y[8000:])
    return nc_benchmark(train, test, 5, task_labels=False, seed=0, train_transform=normalize, eval_transform=normalize)


def stream(n_updates: int, splitmnist: bool = False, batch: int = 10):
    """(dataset, indices) minibatches walking through the experiences in order."""
    if splitmnist:
        bm = splitmnist_like()
    else:
        bm = SplitMNISTIdx(5, seed=0) if os.environ.get(MNIST_DIR_ENV) else SplitDigits(5, seed=0)
    gen = torch.Generator().manual_seed(0)
    per_exp = n_updates // len(bm.train_stream)
    for exp in bm.train_stream:
        for _ in range(per_exp):
            yield exp.dataset, torch.randint(0, len(exp.dataset), (batch,), generator=gen)


BUFFERS = {  # name -> (factory, update(buffer, dataset, indices))
    "ours ReservoirSamplingBuffer": (
        lambda: ReservoirSamplingBuffer(500, seed=0),
        lambda b, d, i: b.update_from_dataset(d, i),
    ),
    "ours GreedyClassBalancedBuffer": (
        lambda: GreedyClassBalancedBuffer(500, seed=0),
        lambda b, d, i: b.update_from_dataset(d, i),
    ),
    "Avalanche ReservoirSamplingBuffer": (
        lambda: AvalancheReservoir(500),
        lambda b, d, i: b.update_from_dataset(d.subset(i.tolist())),
    ),
    "Avalanche ClassBalancedBuffer": (
        lambda: ClassBalancedBuffer(500),
        lambda b, d, i: b.update_from_dataset(d.subset(i.tolist())),
    ),
    "Avalanche ParametricBuffer(class)": (
        lambda: ParametricBuffer(500, groupby="class"),
        lambda b, d, i: b.post_adapt(None, SimpleNamespace(dataset=d.subset(i.tolist()))),
    ),
}


def measure(name: str, updates: list) -> dict:
    make, update = BUFFERS[name]
    buf = make()
    times = []
    for dataset, idx in updates:
        start = time.perf_counter()
        update(buf, dataset, idx)
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    data = buf.buffer
    for i in range(len(data)):
        data[i]
    read = time.perf_counter() - start
    q = len(times) // 4
    return {
        "ms": 1e3 * sum(times) / len(times),
        "first": sum(times[:q]) / q,
        "last": sum(times[-q:]) / q,
        "read_ms": 1e3 * read,
        "size": len(data),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--splitmnist", action="store_true", help="serve the samples as SplitMNIST does (needs MNIST)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    updates = list(stream(100 if args.quick else 1000, args.splitmnist))
    results = {name: measure(name, updates) for name in BUFFERS}
    served = "as SplitMNIST serves them" if args.splitmnist else "as tensors"
    print(f"{len(updates)} updates of 10 samples ({served}) into a 500-slot buffer")
    print(f"{'buffer':<36}{'ms/update':>10}{'last/first quarter':>20}{'read all (ms)':>15}{'size':>6}")
    for name, r in results.items():
        print(f"{name:<36}{r['ms']:>10.3f}{r['last'] / r['first']:>20.2f}{r['read_ms']:>15.1f}{r['size']:>6}")
    print("ratios, Avalanche / ours (higher: ours faster):")
    pairs = [
        ("ours ReservoirSamplingBuffer", "Avalanche ReservoirSamplingBuffer"),
        ("ours GreedyClassBalancedBuffer", "Avalanche ClassBalancedBuffer"),
        ("ours GreedyClassBalancedBuffer", "Avalanche ParametricBuffer(class)"),
    ]
    for ours, theirs in pairs:
        print(
            f"  {theirs} / {ours}: update {results[theirs]['ms'] / results[ours]['ms']:.1f}x, "
            f"read {results[theirs]['read_ms'] / results[ours]['read_ms']:.1f}x"
        )
    return results


if __name__ == "__main__":
    main()
