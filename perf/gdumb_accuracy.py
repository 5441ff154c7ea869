"""GDumb accuracy on MNIST (8000/2000 split of the 10k test set), ours vs Avalanche 0.6's GDumb.

Same split, class order, augmentation, model, optimizer, batch size and passes for both; mean and
std over seeds of the final accuracy on the whole test stream. Runs are spread over 2 processes.

    python perf/gdumb_accuracy.py            # the full table
    python perf/gdumb_accuracy.py --quick    # one short run per column, to check it works
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from concurrent.futures import ProcessPoolExecutor

import torch
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.supervised import GDumb as AvalancheGDumb
from torch import nn
from torchvision.transforms import RandomCrop

from avalanche_replay_ext import GDumb, SplitMNISTIdx
from avalanche_replay_ext.benchmarks.mnist_idx import MNIST_MEAN, MNIST_STD
from avalanche_replay_ext.metrics import stream_accuracy_key

SETTINGS = [  # (memory, hidden units, goal for ours)
    (500, 400, 0.90),
    (300, 100, 0.87),
]


def mlp(hidden: int) -> nn.Module:
    """GDumb's MNIST MLP: two hidden layers with batch norm and ReLU."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, hidden, bias=False),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden, bias=False),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Linear(hidden, 10),
    )


def benchmark(crop: bool = True):
    """SplitMNISTIdx (5 x 2 classes, class order seed 0) with GDumb's MNIST augmentation:
    random 28x28 crops of the image padded by 4 background pixels."""
    background = (0 - MNIST_MEAN) / MNIST_STD
    return SplitMNISTIdx(5, seed=0, train_transform=RandomCrop(28, padding=4, fill=background) if crop else None)


def run(
    which: str, mem: int, hidden: int, passes: int, seed: int, crop: bool = True, cutmix_prob: float = 0.5
) -> float:
    """Final stream accuracy of one GDumb run ("ours" or "avalanche")."""
    warnings.filterwarnings("ignore")
    torch.set_num_threads(1)
    bm = benchmark(crop)
    torch.manual_seed(seed)
    model = mlp(hidden)
    args = dict(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-6),
        criterion=nn.CrossEntropyLoss(),
        mem_size=mem,
        train_mb_size=16,
        train_epochs=passes,
        eval_mb_size=1000,
        evaluator=EvaluationPlugin(accuracy_metrics(stream=True), loggers=[]),
    )
    if which == "ours":
        strategy = GDumb(**args, gdumb_kwargs={"seed": seed, "cutmix_prob": cutmix_prob})
    else:
        strategy = AvalancheGDumb(**args)
    for exp in bm.train_stream:
        strategy.train(exp)
    return strategy.eval(bm.test_stream)[stream_accuracy_key()]


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 passes, seed 0, first setting only")
    parser.add_argument("--passes", type=int, default=128)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--first-only", action="store_true", help="only the first setting (mem 500, 400 units)")
    parser.add_argument("--no-crop", action="store_true", help="ablation: no random-crop augmentation")
    parser.add_argument("--cutmix-prob", type=float, default=0.5, help="ablation: our CutMix probability")
    args = parser.parse_args(argv)
    settings, passes, seeds = (SETTINGS[:1], 4, [0]) if args.quick else (SETTINGS, args.passes, args.seeds)
    settings = settings[:1] if args.first_only else settings
    print(
        f"GDumb on MNIST 8000/2000, 5 experiences x 2 classes, {passes} passes, batch 16, seeds {seeds}, "
        f"crop {not args.no_crop}, our cutmix_prob {args.cutmix_prob}"
    )
    start = time.perf_counter()
    extra = (not args.no_crop, args.cutmix_prob)
    jobs = [(w, m, h, passes, s, *extra) for m, h, _ in settings for w in ("ours", "avalanche") for s in seeds]
    with ProcessPoolExecutor(max_workers=2) as pool:
        results = dict(zip(jobs, pool.map(run, *zip(*jobs, strict=True)), strict=True))
    print(f"{'memory':>6} {'hidden':>6} {'ours':>15} {'Avalanche 0.6':>15} {'goal':>5}")
    rows = []
    for mem, hidden, goal in settings:
        accs = {w: [results[(w, mem, hidden, passes, s, *extra)] for s in seeds] for w in ("ours", "avalanche")}
        cell = {w: f"{statistics.mean(a):.3f} +- {statistics.pstdev(a):.3f}" for w, a in accs.items()}
        mark = "ok" if statistics.mean(accs["ours"]) >= goal else "MISSED"
        print(f"{mem:>6} {hidden:>6} {cell['ours']:>15} {cell['avalanche']:>15} {goal:>5} {mark}")
        print(f"{'':>13} per seed: ours {accs['ours']}, Avalanche {accs['avalanche']}")
        rows.append({"memory": mem, "hidden": hidden, "goal": goal, **accs})
    print(f"({time.perf_counter() - start:.0f} s)")
    return rows


if __name__ == "__main__":
    main()
