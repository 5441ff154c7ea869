"""Buffer update cost, ours vs Avalanche 0.6, on the same stream of 10-sample minibatches.

1000 updates of 10 samples (random indices of the SplitMNISTIdx training experiences, or SplitDigits
when no MNIST folder is set) into a 500-slot buffer, offered as indices into the experience's
dataset or as a distinct dataset per update (`dataset.subset(indices)`, the form online streams and
Avalanche's buffers use). Per buffer: mean time per update, first vs last quarter of the stream
(flatness), the time to build `buffer` afterwards, to read all stored items once and to iterate a
DataLoader over them (best of 5 and 3), and the pickled size; each the best of 3 interleaved runs
(1 with --quick).

`--splitmnist` serves the same MNIST images the way Avalanche 0.6's `SplitMNIST` does: uint8
images converted to float per item (its `TensorMNIST`), then its `Normalize` transform.

    python perf/buffer_updates.py
    python perf/buffer_updates.py --splitmnist  # samples as SplitMNIST serves them
    python perf/buffer_updates.py --quick       # 100 updates
"""

from __future__ import annotations

import argparse
import gc
import os
import pickle
import warnings
from types import SimpleNamespace

import torch
from _measure import timed
from avalanche.benchmarks import nc_benchmark
from avalanche.training.storage_policy import ClassBalancedBuffer, ParametricBuffer
from avalanche.training.storage_policy import ReservoirSamplingBuffer as AvalancheReservoir
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import Normalize

from avalanche_replay_ext import (
    ClassBalancedReservoirBuffer,
    GreedyClassBalancedBuffer,
    ReservoirSamplingBuffer,
    SplitDigits,
    SplitMNISTIdx,
)
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


UPDATE = "update_from_dataset"
BUFFERS = {  # name -> (factory, offered as, update method)
    "ours Reservoir, indices": (lambda: ReservoirSamplingBuffer(500, seed=0), "indices", UPDATE),
    "ours Reservoir, datasets": (lambda: ReservoirSamplingBuffer(500, seed=0), "datasets", UPDATE),
    "ours GreedyClassBalanced, indices": (lambda: GreedyClassBalancedBuffer(500, seed=0), "indices", UPDATE),
    "ours GreedyClassBalanced, datasets": (lambda: GreedyClassBalancedBuffer(500, seed=0), "datasets", UPDATE),
    "ours ClassBalancedReservoir, indices": (lambda: ClassBalancedReservoirBuffer(500, seed=0), "indices", UPDATE),
    "ours ClassBalancedReservoir, datasets": (lambda: ClassBalancedReservoirBuffer(500, seed=0), "datasets", UPDATE),
    "Avalanche Reservoir, datasets": (lambda: AvalancheReservoir(500), "datasets", UPDATE),
    "Avalanche ClassBalanced, datasets": (lambda: ClassBalancedBuffer(500), "datasets", UPDATE),
    "Avalanche Parametric(class), datasets": (
        lambda: ParametricBuffer(500, groupby="class"),
        "experiences",  # it takes whole experiences only
        "post_adapt",
    ),
}


def offers(updates: list, form: str) -> list[tuple]:
    """The stream's (dataset, indices) minibatches as the arguments of one update each, built
    before timing: indices into the experience's dataset, or a distinct dataset per minibatch."""
    if form == "indices":
        return list(updates)
    subsets = [d.subset(i.tolist()) for d, i in updates]
    return [(None, SimpleNamespace(dataset=d)) for d in subsets] if form == "experiences" else [(d,) for d in subsets]


def measure(name: str, updates: list) -> dict:
    make, form, method = BUFFERS[name]
    buf = make()
    update = getattr(buf, method)
    gc.collect()
    gc.disable()  # as timeit does: collections of the stream's own garbage are no update's cost
    try:
        times = [timed(lambda args=args: update(*args))[0] for args in offers(updates, form)]
    finally:
        gc.enable()
    view_ms, data = timed(lambda: buf.buffer)
    read_ms = min(timed(lambda: [data[i] for i in range(len(data))])[0] for _ in range(5))
    loader = DataLoader(data, batch_size=32, collate_fn=data.collate_fn)
    loader_ms = min(timed(lambda: list(loader))[0] for _ in range(3))
    q = len(times) // 4
    return {
        "ms": sum(times) / len(times),
        "first": sum(times[:q]) / q,
        "last": sum(times[-q:]) / q,
        "view_ms": view_ms,
        "read_ms": read_ms,
        "loader_ms": loader_ms,
        "pickle_kb": len(pickle.dumps(buf)) / 1024,
        "size": len(data),
    }


def report(results: dict, served: str, n: int) -> None:
    print(f"{n} updates of 10 samples ({served}) into a 500-slot buffer, each offered as indices into its")
    print("experience's dataset or as a distinct dataset (`dataset.subset(indices)`, as online streams give them)")
    head = ["ms/update", "last/first", "view (ms)", "read all (ms)", "DataLoader (ms)", "pickle (KB)", "size"]
    print(f"{'buffer, offered as':<40}" + "".join(f"{h:>16}" for h in head))
    for name, r in results.items():
        row = [f"{r['ms']:.3f}", f"{r['last'] / r['first']:.2f}", f"{r['view_ms']:.2f}", f"{r['read_ms']:.1f}"]
        row += [f"{r['loader_ms']:.1f}", f"{r['pickle_kb']:.0f}", f"{r['size']}"]
        print(f"{name:<40}" + "".join(f"{v:>16}" for v in row))
    print("ours, distinct datasets / indices (goal <= 1.5x):")
    for ours in ("ours Reservoir", "ours GreedyClassBalanced", "ours ClassBalancedReservoir"):
        d, i = results[f"{ours}, datasets"], results[f"{ours}, indices"]
        print(
            f"  {ours}: update {d['ms'] / i['ms']:.2f}x, view {d['view_ms'] / i['view_ms']:.2f}x, "
            f"read {d['read_ms'] / i['read_ms']:.2f}x, pickle {d['pickle_kb'] / i['pickle_kb']:.2f}x"
        )
    print("Avalanche / ours, both fed distinct datasets (higher: ours faster):")
    greedy, cbrs = "GreedyClassBalanced", "ClassBalancedReservoir"
    pairs = [
        ("Reservoir", "Reservoir"),
        (greedy, "ClassBalanced"),
        (greedy, "Parametric(class)"),
        (cbrs, "ClassBalanced"),
    ]
    for ours, theirs in pairs:
        o, t = results[f"ours {ours}, datasets"], results[f"Avalanche {theirs}, datasets"]
        with_view = (n * t["ms"] + t["view_ms"]) / (n * o["ms"] + o["view_ms"])
        print(
            f"  Avalanche {theirs} / ours {ours}: update {t['ms'] / o['ms']:.1f}x, updates + view {with_view:.1f}x, "
            f"read {t['read_ms'] / o['read_ms']:.1f}x, DataLoader {t['loader_ms'] / o['loader_ms']:.1f}x"
        )


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--splitmnist", action="store_true", help="serve the samples as SplitMNIST does (needs MNIST)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    updates = list(stream(100 if args.quick else 1000, args.splitmnist))
    runs = [{name: measure(name, updates) for name in BUFFERS} for _ in range(1 if args.quick else 3)]
    results = {name: {k: min(run[name][k] for run in runs) for k in runs[0][name]} for name in BUFFERS}
    report(results, "as SplitMNIST serves them" if args.splitmnist else "as tensors", len(updates))
    return results


if __name__ == "__main__":
    main()
