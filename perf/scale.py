"""Our replay at the scale users run, side by side with Avalanche 0.6 in one run of this script.

Three sections (`--sections`, default all), each printing a table with the peak RSS of every run,
its ratios and goal lines, and a plot (`--out`, default perf/figures/: scale_updates.png,
scale_online.png, scale_images.png):

- updates: buffer update cost vs the size of the dataset behind the offers (10k, 100k, 1M samples
  of 4 floats, one row expanded, random labels in 10 classes). Each way Avalanche 0.6 builds
  datasets: `class_incremental_benchmark`, `benchmark_from_datasets`, `nc_benchmark` and a
  `.concat` experience, offered as the 10-sample mini-experiences of `split_online_stream` (100
  from each of 5 experiences); a tensor dataset, torchvision-style datasets (`targets` a list,
  tensor or ndarray) and `concat_datasets`, offered as `.subset(range(i, i + 10))` spread over the
  dataset. Each size's offers are built once, before timing; then the median ms per
  `buffer.post_adapt(None, exp)` (what Avalanche's ReplayPlugin calls) over 500 updates of a
  500-slot buffer (also the slowest update and the mean of all), best of 3 runs: ours
  (`ReservoirSamplingBuffer`, `GreedyClassBalancedBuffer`, `ClassBalancedReservoirBuffer`) vs
  Avalanche's (`ReservoirSamplingBuffer`, `ClassBalancedBuffer`, `ParametricBuffer(groupby="class")`).
- online: steps/s vs buffer size (1k, 10k, 100k slots, prefilled to full from a 120k-sample
  MNIST-shaped synthetic dataset; SimpleMLP, SGD), 20 warm-up then 300 timed steps (or 60 s of
  them), the median of 3 interleaved runs: our `AlphaReplayPlugin(batch_size_mem=10, update_every="iteration")` on
  `split_online_stream` (experience_size 10, one `strategy.train(sub)` each) and on one big
  experience (`train_mb_size=10`), Avalanche's `ReplayPlugin(batch_size=10, batch_size_mem=10,
  storage_policy=ReservoirSamplingBuffer)` on the same online stream, and Naive on 20-sample
  steps in both paths (the ceiling).
- images: a CIFAR-shaped pipeline: 50k synthetic uint8 32x32x3 images served as PIL images, train
  transforms RandomCrop(32, 4) + RandomHorizontalFlip + ToTensor + Normalize, SlimResNet18 (the
  reduced ResNet-18 of GEM, nf=20), a 1000-slot buffer prefilled; online 10 + 10 and per
  experience 32 + 32 (our plugin updating per experience), `num_workers` 0 and 2; 5 warm-up +
  40 timed steps, the median of 3 interleaved runs; time per step and the replay overhead over
  Naive at the same step size (20, 64), ours vs Avalanche's ReplayPlugin (both with our / its
  reservoir).

Every measured run is a fresh process forked from the fork server that preloaded torch and
Avalanche (`_measure.start_fresh_process`); in `updates`, one per constructor and size, which
builds its offers and then runs every buffer in turn, each with a buffer of its own (no fork per
run: a child's first touch of each shared page would copy it, a cost users do not pay).
Peak RSS is that process's `ru_maxrss`; in `updates` the resident memory after each run, and how
much it grew during the run. DataLoader workers are not counted. Steps are timed from the end of the last
warm-up iteration to the end of the last timed one, so an online step includes its
`strategy.train` call's set-up and the buffer update; mini-experiences are split before timing.
With `--device cuda` the models run on the GPU (synchronized before each time mark) and
`strategy.train` gets `pin_memory=True` (Avalanche's Naive and our plugin pass it to their
DataLoaders; Avalanche's ReplayPlugin does not take it).

    python perf/scale.py                                 # every section, full sizes
    python perf/scale.py --sections updates,online       # some sections
    python perf/scale.py --device cuda                   # models on the GPU, pin_memory=True
    python perf/scale.py --quick                         # tiny sizes, few steps, a narrow SlimResNet18 (nf=4);
                                                         # plots to a temp folder
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import multiprocessing
import random
import resource
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from _measure import in_fresh_process, rss_mb, timed
from avalanche.benchmarks import nc_benchmark
from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
from avalanche.benchmarks.scenarios.online import split_online_stream
from avalanche.benchmarks.scenarios.supervised import class_incremental_benchmark
from avalanche.benchmarks.utils import (
    _make_taskaware_classification_dataset,
    _make_taskaware_tensor_classification_dataset,
)
from avalanche.benchmarks.utils.utils import concat_datasets
from avalanche.models import SimpleMLP, SlimResNet18
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin, ReplayPlugin, SupervisedPlugin
from avalanche.training.storage_policy import ClassBalancedBuffer, ParametricBuffer
from avalanche.training.storage_policy import ReservoirSamplingBuffer as AvalancheReservoir
from torch.utils.data import Dataset, TensorDataset

from avalanche_replay_ext import (
    AlphaReplayPlugin,
    ClassBalancedReservoirBuffer,
    GreedyClassBalancedBuffer,
    ReservoirSamplingBuffer,
)

SEED = 0
SECTIONS = ("updates", "online", "images")
FIGURES = Path(__file__).parent / "figures"
CLASSES = 10
RUNS_CPU_S: list[float] = []  # CPU seconds of each fresh process run so far
LR = 0.005  # SGD(0.005, momentum 0.9), as the replay scripts (``_replay.LR``; not imported: it loads MNIST helpers)


def quiet() -> None:
    """One thread, no warnings (Avalanche's deprecated `ExemplarsBuffer.update`, called by its
    ReplayPlugin, re-enables its warning on every call: drop warnings at the source)."""
    warnings.filterwarnings("ignore")
    warnings.showwarning = lambda *args, **kwargs: None
    torch.set_num_threads(1)


def peak_rss_mb() -> float:
    """Peak resident memory of this process (``ru_maxrss``; in a forked process it starts from the
    RSS at the fork, not from the parent's peak)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(task: str, kwargs: dict, path: str) -> None:
    """Run ``task(**kwargs)`` in this fresh process; its result and peak RSS go to ``path`` (JSON).
    DataLoader workers start as in a user's process, forked (here the default would be the fork
    server, which takes seconds per worker)."""
    multiprocessing.set_start_method("fork", force=True)
    quiet()
    result = globals()[task](**kwargs)
    result["rss_mb"] = peak_rss_mb()
    result["cpu_s"] = sum(
        usage.ru_utime + usage.ru_stime
        for usage in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    )  # with the processes it forked and waited for (buffer runs, DataLoader workers)
    Path(path).write_text(json.dumps(result))


def fresh(task: Callable[..., dict], **kwargs) -> dict:
    """``task(**kwargs)`` run in a fresh process (``_measure.in_fresh_process``); its result, with
    ``rss_mb`` its peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        in_fresh_process(_child, task.__name__, kwargs, f"{tmp}/result.json")
        result = json.loads(Path(tmp, "result.json").read_text())
    RUNS_CPU_S.append(result["cpu_s"])
    return result


def median_run(runs: list[dict]) -> dict:
    """Of repeated runs of one configuration, the one with the median ``ms`` (the lower middle of an even count)."""
    return sorted(runs, key=lambda r: r["ms"])[(len(runs) - 1) // 2]


def seed_all() -> None:
    """Avalanche's buffers draw from the global generators."""
    torch.manual_seed(SEED)
    random.seed(SEED)
    np.random.seed(SEED)


def verdict(ok: bool) -> str:
    return "met" if ok else "not met"


def sizes_text(sizes: list[int]) -> str:
    return " / ".join(f"{s:,}" for s in sizes)


def header(section: str, run: SimpleNamespace, details: str) -> None:
    print(f"\n== {section} | python perf/scale.py {run.command} | {details} | seed {SEED} | device {run.device_name}")


# ---- updates: update cost vs the dataset size behind the offers -------------------------------
UPDATE_SIZES = {False: [10_000, 100_000, 1_000_000], True: [1_000, 10_000]}
N_UPDATES = {False: 500, True: 20}
REPEATS = {False: 3, True: 1}  # runs of each (constructor, buffer) pair; the fastest is kept
SLOTS = 500
EXPERIENCES = 5
OFFER = 10  # samples per update


class TorchvisionStyle(Dataset):
    """A dataset as torchvision's are: ``data`` and ``targets`` (a list, tensor or ndarray) attributes."""

    def __init__(self, data: torch.Tensor, targets) -> None:
        self.data, self.targets = data, targets

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.data[i], int(self.targets[i])


def labelled(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` inputs of 4 floats (one row expanded: no memory) and random labels in 10 classes."""
    y = torch.randint(0, CLASSES, (n,), generator=torch.Generator().manual_seed(SEED))
    return torch.zeros(1, 4).expand(n, 4), y


def classification(x: torch.Tensor, y: torch.Tensor):
    """A ``TensorDataset`` with a ``targets`` tensor, wrapped as Avalanche wraps classification data."""
    data = TensorDataset(x, y)
    data.targets = y
    return _make_taskaware_classification_dataset(data)


def minis(stream, n: int) -> list:
    """The first ``n`` 10-sample mini-experiences of ``split_online_stream``, spread evenly over the
    stream's experiences."""
    per = n // len(stream)
    return [m for e in stream for m in itertools.islice(split_online_stream([e], OFFER, seed=SEED), per)]


def subsets(data, n: int) -> list:
    """``n`` offers ``data.subset(range(i, i + 10))``, ``i`` spread over the whole dataset."""
    step = (len(data) - OFFER) // max(n - 1, 1)
    return [SimpleNamespace(dataset=data.subset(range(i * step, i * step + OFFER))) for i in range(n)]


def by_class_pairs(x: torch.Tensor, y: torch.Tensor) -> list:
    """5 experiences of 2 classes each, subsets of one tensor classification dataset."""
    whole = _make_taskaware_tensor_classification_dataset(x, y)
    return [whole.subset(torch.nonzero(y // 2 == e).flatten()) for e in range(EXPERIENCES)]


def halves(x: torch.Tensor, y: torch.Tensor) -> list:
    h = len(y) // 2
    return [
        _make_taskaware_tensor_classification_dataset(x[:h], y[:h]),
        _make_taskaware_tensor_classification_dataset(x[h:], y[h:]),
    ]


def concat(parts: list):
    """``parts[0].concat(parts[1])``: the method, where ``concat_datasets`` is the function."""
    return parts[0].concat(parts[1])


def nc_stream(x: torch.Tensor, y: torch.Tensor):
    test = TensorDataset(x[:1000], y[:1000])
    test.targets = y[:1000]
    train = TensorDataset(x, y)
    train.targets = y
    return nc_benchmark(train, test, EXPERIENCES, task_labels=False, seed=SEED).train_stream


CONSTRUCTORS: dict[str, Callable[[torch.Tensor, torch.Tensor, int], list]] = {  # name -> (x, y, n) -> offers
    "class_incremental_benchmark, online": lambda x, y, n: minis(
        class_incremental_benchmark(
            {"train": classification(x, y)}, num_experiences=EXPERIENCES, seed=SEED
        ).train_stream,
        n,
    ),
    "benchmark_from_datasets, online": lambda x, y, n: minis(
        benchmark_from_datasets(train=by_class_pairs(x, y)).train_stream, n
    ),
    "nc_benchmark, online": lambda x, y, n: minis(nc_stream(x, y), n),
    "a.concat(b), online": lambda x, y, n: minis(benchmark_from_datasets(train=[concat(halves(x, y))]).train_stream, n),
    "tensor dataset, subsets": lambda x, y, n: subsets(_make_taskaware_tensor_classification_dataset(x, y), n),
    "torchvision-style, list targets, subsets": lambda x, y, n: subsets(
        _make_taskaware_classification_dataset(TorchvisionStyle(x, y.tolist())), n
    ),
    "torchvision-style, tensor targets, subsets": lambda x, y, n: subsets(
        _make_taskaware_classification_dataset(TorchvisionStyle(x, y)), n
    ),
    "torchvision-style, ndarray targets, subsets": lambda x, y, n: subsets(
        _make_taskaware_classification_dataset(TorchvisionStyle(x, y.numpy())), n
    ),
    "concat_datasets, subsets": lambda x, y, n: subsets(concat_datasets(halves(x, y)), n),
}
BUFFERS = {
    "ours Reservoir": lambda: ReservoirSamplingBuffer(SLOTS, seed=SEED),
    "ours GreedyClassBalanced": lambda: GreedyClassBalancedBuffer(SLOTS, seed=SEED),
    "ours ClassBalancedReservoir": lambda: ClassBalancedReservoirBuffer(SLOTS, seed=SEED),
    "Avalanche Reservoir": lambda: AvalancheReservoir(SLOTS),
    "Avalanche ClassBalanced": lambda: ClassBalancedBuffer(SLOTS),
    "Avalanche Parametric(class)": lambda: ParametricBuffer(SLOTS, groupby="class"),
}
PAIRS = [  # (ours, Avalanche's), as in buffer_updates.py
    ("ours Reservoir", "Avalanche Reservoir"),
    ("ours GreedyClassBalanced", "Avalanche ClassBalanced"),
    ("ours GreedyClassBalanced", "Avalanche Parametric(class)"),
    ("ours ClassBalancedReservoir", "Avalanche ClassBalanced"),
]


def time_updates(name: str, offers: list) -> dict:
    """Per ``post_adapt(None, exp)`` of a fresh buffer over the offers: the median ms (``ms``: the
    typical update), the slowest (our buffers' first offer from a label leaf reads the leaf's
    labels, once per buffer), the mean of all; and what the buffer holds after."""
    seed_all()
    gc.collect()
    start, buf = rss_mb(), BUFFERS[name]()
    gc.disable()  # as timeit does
    try:
        times = [timed(lambda exp=exp: buf.post_adapt(None, exp))[0] for exp in offers]
    finally:
        gc.enable()
    held, rss = len(buf.buffer), rss_mb()
    return {
        "ms": statistics.median(times),
        "max_ms": max(times),
        "all_ms": statistics.mean(times),
        "held": held,
        "rss_mb": rss,
        "rss_grew": rss - start,
    }


def warm_up() -> None:
    """Every buffer over a few offers of every constructor on 200 samples of their own: the timed
    runs start with warm code paths (first calls, lazy imports) but nothing cached of the data they
    are timed on."""
    x, y = labelled(200)
    for constructor in CONSTRUCTORS.values():
        offers = constructor(x, y, EXPERIENCES)
        for make in BUFFERS.values():
            buf = make()
            for exp in offers:
                buf.post_adapt(None, exp)


def update_costs(size: int, constructor: str, n_updates: int, repeats: int) -> dict:
    """One constructor at one size (a fresh process): build its offers once, then run each buffer
    ``repeats`` times, interleaved, each run with a buffer of its own; keep each buffer's fastest
    run."""
    warm_up()
    x, y = labelled(size)
    build_ms, offers = timed(lambda: CONSTRUCTORS[constructor](x, y, n_updates))
    gc.collect()
    gc.freeze()  # what was built stays out of the collections
    runs = [{name: time_updates(name, offers) for name in BUFFERS} for _ in range(repeats)]
    return {
        "build_s": build_ms / 1e3,
        "buffers": {name: min((r[name] for r in runs), key=lambda r: r["ms"]) for name in BUFFERS},
    }


def updates_section(run: SimpleNamespace) -> dict:
    sizes, n, repeats = UPDATE_SIZES[run.quick], N_UPDATES[run.quick], REPEATS[run.quick]
    header(
        "updates",
        run,
        f"dataset sizes {sizes_text(sizes)} | {n} updates of {OFFER} samples into {SLOTS} slots, offers built "
        f"before timing, {f'best of {repeats} runs' if repeats > 1 else 'one run'} each",
    )
    results = {
        c: {size: fresh(update_costs, size=size, constructor=c, n_updates=n, repeats=repeats) for size in sizes}
        for c in CONSTRUCTORS
    }
    print_updates(results, sizes)
    update_goals(results, sizes)
    return results


def print_updates(results: dict, sizes: list[int]) -> None:
    at = "".join(f"{f'@{s:,}':>11}" for s in sizes)
    rss_at = "".join(f"{f'@{s:,}':>15}" for s in sizes)
    print("ms/update: the median update at each size; at the largest, the slowest (ours: the first offer from a")
    print("label leaf, which reads its labels once per buffer) and the mean of all")
    print(
        f"{'constructor / buffer':<44}ms/update{at}  slowest @{sizes[-1]:,}  mean @{sizes[-1]:,}"
        f"   RSS MB after (+ during the run){rss_at}   held"
    )
    for constructor, by_size in results.items():
        builds = ", ".join(f"{by_size[s]['build_s']:.1f} s" for s in sizes)
        print(f"{constructor} (offers built in {builds})")
        for name in BUFFERS:
            rows = [by_size[s]["buffers"][name] for s in sizes]
            ms = "".join(f"{r['ms']:>11.3f}" for r in rows)
            rss = "".join(f"{rss_cell(r):>15}" for r in rows)
            last = rows[-1]
            print(f"  {name:<42}{'':9}{ms}{last['max_ms']:>11.2f}{last['all_ms']:>11.3f}{'':8}{rss}{last['held']:>7}")


def rss_cell(r: dict) -> str:
    return f"{r['rss_mb']:.0f} (+{max(r['rss_grew'], 0):.0f})"


def update_goals(results: dict, sizes: list[int]) -> None:
    small, big = sizes[0], sizes[-1]
    ours = [name for name in BUFFERS if name.startswith("ours")]
    for constructor, by_size in results.items():
        ms = {s: {name: r["ms"] for name, r in by_size[s]["buffers"].items()} for s in sizes}
        flat = {name: ms[big][name] / ms[small][name] for name in ours}
        print(
            f"{constructor}: ours at {big:,} / ours at {small:,}: "
            + ", ".join(f"{name[5:]} {r:.2f}x" for name, r in flat.items())
            + f"; goal <= 1.2x: {verdict(max(flat.values()) <= 1.2)}"
        )
        faster = [(o, t, ms[big][t] / ms[big][o]) for o, t in PAIRS]
        print(
            f"  Avalanche at {big:,} / ours at {big:,}: "
            + ", ".join(f"{t[10:]} / {o[5:]} {r:.1f}x" for o, t, r in faster)
            + f"; goal >= 5x: {verdict(min(r for *_, r in faster) >= 5)}"
        )


# ---- steps: the online and images sections share one timed training run ------------------------
BUDGET_S = 60.0  # a run stops timing after this many seconds of timed steps (Avalanche's at 100k slots)


class StepClock(SupervisedPlugin):
    """Marks the end of every training iteration; stops training after ``warmup + steps``, or
    after ``budget_s`` seconds of timed steps (at least one), whichever comes first."""

    def __init__(self, warmup: int, steps: int, budget_s: float, cuda: bool) -> None:
        super().__init__()
        self.warmup, self.steps, self.budget_s, self.cuda = warmup, steps, budget_s, cuda
        self.marks: list[float] = []

    @property
    def timed(self) -> int:
        """Timed steps so far."""
        return max(len(self.marks) - self.warmup, 0)

    @property
    def done(self) -> bool:
        spent = self.timed and self.marks[-1] - self.marks[self.warmup - 1]
        return self.timed >= self.steps or (self.timed > 0 and spent >= self.budget_s)

    def after_training_iteration(self, strategy, **kwargs) -> None:
        if self.cuda:
            torch.cuda.synchronize()
        self.marks.append(time.perf_counter())
        if self.done:
            strategy.stop_training()

    def result(self) -> dict:
        """ms per step from the end of the last warm-up iteration to the end of the last timed
        one, and how many steps that covers."""
        if not self.done:
            raise RuntimeError(f"only {len(self.marks)} of {self.warmup + self.steps} iterations ran")
        return {"ms": 1e3 * (self.marks[-1] - self.marks[self.warmup - 1]) / self.timed, "steps": self.timed}


def mnist_like(n: int):
    """``n`` MNIST-shaped samples, one experience: sample i is the 784 floats of a random vector
    from position i (each contiguous, as in a dense tensor, without 376 MB per process), random
    labels in 10 classes."""
    gen = torch.Generator().manual_seed(SEED)
    x = torch.rand(n + 784, generator=gen).as_strided((n, 1, 28, 28), (1, 784, 28, 1))
    y = torch.randint(0, CLASSES, (n,), generator=gen)
    return benchmark_from_datasets(train=[_make_taskaware_tensor_classification_dataset(x, y)]).train_stream[0]


class CIFARLike(Dataset):
    """CIFAR-10 as torchvision serves it: uint8 HWC images in ``data``, int ``targets``, PIL images out."""

    def __init__(self, n: int) -> None:
        rng = np.random.default_rng(SEED)
        self.data = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        self.targets = rng.integers(0, CLASSES, n).tolist()

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        from PIL import Image

        return Image.fromarray(self.data[i]), self.targets[i]


def cifar_like(n: int):
    """``n`` CIFAR-shaped images, one experience, with CIFAR's train / eval transform groups."""
    from torchvision import transforms as T

    normalize = T.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
    train = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), normalize])
    groups = {"train": train, "eval": T.Compose([T.ToTensor(), normalize])}
    data = _make_taskaware_classification_dataset(CIFARLike(n), transform_groups=groups)
    return benchmark_from_datasets(train=[data]).train_stream[0]


DATA = {"mnist": mnist_like, "cifar": cifar_like}
MODELS = {"mnist": lambda nf: SimpleMLP(num_classes=CLASSES), "cifar": lambda nf: SlimResNet18(CLASSES, nf=nf)}


def replay_plugins(kind: str, slots: int, batch: int, exp, update_every: str) -> list:
    """The replay plugin of ``kind`` with its buffer filled from ``exp`` (ours: one
    ``update_from_dataset``; Avalanche's: one ``post_adapt``), or none for Naive."""
    if kind == "naive":
        return []
    if kind == "ours":
        buf = ReservoirSamplingBuffer(slots, seed=SEED)
        buf.update_from_dataset(exp.dataset)
        plugin = AlphaReplayPlugin(slots, 1.0, batch, buf, update_every=update_every, seed=SEED)
    else:
        buf = AvalancheReservoir(slots)
        buf.post_adapt(None, exp)
        plugin = ReplayPlugin(slots, batch_size=batch, batch_size_mem=batch, storage_policy=buf)
    if len(buf.buffer) != slots:
        raise RuntimeError(f"{kind}'s buffer holds {len(buf.buffer)} samples after its prefill, not {slots}")
    return [plugin]


def naive(model: torch.nn.Module, plugins: list, batch: int, device: str) -> Naive:
    """Avalanche's Naive with ``plugins``, SGD, no metrics and no loggers."""
    return Naive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9),
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=batch,
        train_epochs=1,
        device=device,
        plugins=plugins,
        evaluator=EvaluationPlugin(loggers=[]),
    )


def step_cost(data: str, n: int, nf: int, kind: str, path: str, batch: int, slots: int, update_every: str,
              warmup: int, steps: int, device: str, workers: int) -> dict:  # fmt: skip
    """One training run (a fresh process): ms per step after ``warmup`` steps, on one experience
    (``path="experience"``) or one ``strategy.train`` per mini-experience of ``split_online_stream``
    (split before timing). Naive steps on ``2 * batch`` samples (replay: ``batch`` new + ``batch``
    from memory)."""
    seed_all()
    exp = DATA[data](n)
    plugins = replay_plugins(kind, slots, batch, exp, update_every)
    size = 2 * batch if kind == "naive" else batch
    clock = StepClock(warmup, steps, BUDGET_S, device == "cuda")
    strategy = naive(MODELS[data](nf), [*plugins, clock], size, device)
    subs = [exp] if path == "experience" else split_online_stream([exp], size, seed=SEED)
    subs = list(itertools.islice(subs, warmup + steps))
    kwargs = {"num_workers": workers, **({"pin_memory": True} if device == "cuda" else {})}
    for sub in subs:
        strategy.train(sub, **kwargs)
        if clock.done:
            break
    return clock.result()


# ---- online: step cost vs buffer size ------------------------------------------------------------
ONLINE_SLOTS = {False: [1_000, 10_000, 100_000], True: [100, 1_000]}
ONLINE_DATA = {False: 120_000, True: 2_000}
ONLINE_STEPS = {False: (20, 300), True: (2, 5)}  # warm-up, timed
ONLINE_BATCH = 10
ONLINE_METHODS = {  # name -> (kind, path); Naive does not depend on the buffer size
    "ours AlphaReplayPlugin, online stream": ("ours", "online"),
    "ours AlphaReplayPlugin, one experience": ("ours", "experience"),
    "Avalanche ReplayPlugin, online stream": ("avalanche", "online"),
    "Naive at 20, online stream": ("naive", "online"),
    "Naive at 20, one experience": ("naive", "experience"),
}


def online_section(run: SimpleNamespace) -> dict:
    slots, (warmup, steps), n = ONLINE_SLOTS[run.quick], ONLINE_STEPS[run.quick], ONLINE_DATA[run.quick]
    header(
        "online",
        run,
        f"buffer {sizes_text(slots)} slots prefilled from {n:,} MNIST-shaped samples | SimpleMLP, SGD, "
        f"steps of {ONLINE_BATCH} + {ONLINE_BATCH}, {warmup} warm-up + {steps} timed, "
        f"median of {REPEATS[run.quick]} runs",
    )
    same = dict(data="mnist", n=n, nf=0, batch=ONLINE_BATCH, update_every="iteration", workers=0)
    same.update(warmup=warmup, steps=steps, device=run.device)
    runs: dict = {}
    for _ in range(REPEATS[run.quick]):  # interleaved, so that the machine's slow spells spread over all
        for name, (kind, path) in ONLINE_METHODS.items():
            for s in slots[:1] if kind == "naive" else slots:
                runs.setdefault((name, s), []).append(fresh(step_cost, **same, kind=kind, path=path, slots=s))
    results = {
        name: {s: median_run(runs[name, slots[0] if kind == "naive" else s]) for s in slots}
        for name, (kind, _) in ONLINE_METHODS.items()
    }
    print_online(results, slots, steps)
    online_goals(results, slots)
    return results


def print_online(results: dict, slots: list[int], steps: int) -> None:
    head = "".join(f"{f'@{s:,}':>10}" for s in slots)
    print(f"{'method':<42}steps/s{head}   peak RSS MB{head}")
    for name, by_slots in results.items():
        rate = "".join(f"{1e3 / by_slots[s]['ms']:>10.0f}" for s in slots)
        rss = "".join(f"{by_slots[s]['rss_mb']:>10.0f}" for s in slots)
        print(f"{name:<42}{'':7}{rate}{'':14}{rss}")
    capped({f"{name} @{s:,}": by_slots[s] for name, by_slots in results.items() for s in slots}, steps)


def capped(runs: dict, steps: int) -> None:
    """Name the runs that timed fewer than ``steps`` steps (stopped at ``BUDGET_S``)."""
    short = [f"{label} ({r['steps']} steps)" for label, r in runs.items() if r["steps"] < steps]
    if short:
        print(f"timed for {BUDGET_S:.0f} s, fewer than {steps} steps: {', '.join(short)}")


def online_goals(results: dict, slots: list[int]) -> None:
    def rate(name: str, s: int) -> float:
        return 1e3 / results[name][s]["ms"]

    small, big = slots[0], slots[-1]
    ours = {
        "online stream": "ours AlphaReplayPlugin, online stream",
        "one experience": "ours AlphaReplayPlugin, one experience",
    }
    flat = {path: rate(name, big) / rate(name, small) for path, name in ours.items()}
    print(
        f"ours at {big:,} / ours at {small:,} steps/s: "
        + ", ".join(f"{path} {r:.2f}x" for path, r in flat.items())
        + f"; goal >= 0.9x: {verdict(min(flat.values()) >= 0.9)}"
    )
    ceiling = {path: [rate(name, s) / rate(f"Naive at 20, {path}", s) for s in slots] for path, name in ours.items()}
    print(
        "ours / Naive at 20 (same path) steps/s: "
        + "; ".join(f"{path} " + ", ".join(f"{r:.2f}x" for r in rs) for path, rs in ceiling.items())
        + f" (at {sizes_text(slots)}); goal >= 0.9x: {verdict(min(min(rs) for rs in ceiling.values()) >= 0.9)}"
    )
    theirs = "Avalanche ReplayPlugin, online stream"
    print(
        "ours / Avalanche ReplayPlugin (online stream) steps/s: "
        + "; ".join(
            f"{path} " + ", ".join(f"{rate(name, s) / rate(theirs, s):.2f}x" for s in slots)
            for path, name in ours.items()
        )
        + f" (at {sizes_text(slots)})"
    )


# ---- images: an image pipeline ---------------------------------------------------------------------
IMAGE_DATA = {False: 50_000, True: 500}
IMAGE_SLOTS = {False: 1_000, True: 100}
IMAGE_STEPS = {False: (5, 40), True: (1, 2)}
IMAGE_NF = {False: 20, True: 4}  # SlimResNet18's width; --quick: a narrow one, to check the pipeline runs
IMAGE_SETTINGS = {  # name -> (path, batch, our update_every)
    "online 10 + 10": ("online", 10, "iteration"),
    "per experience 32 + 32": ("experience", 32, "experience"),
}
IMAGE_METHODS = {"ours AlphaReplayPlugin": "ours", "Avalanche ReplayPlugin": "avalanche", "Naive": "naive"}
WORKERS = (0, 2)


def images_section(run: SimpleNamespace) -> dict:
    n, slots, (warmup, steps), nf = (
        IMAGE_DATA[run.quick],
        IMAGE_SLOTS[run.quick],
        IMAGE_STEPS[run.quick],
        IMAGE_NF[run.quick],
    )
    header(
        "images",
        run,
        f"{n:,} CIFAR-shaped PIL images, RandomCrop + flip + ToTensor + Normalize | SlimResNet18(nf={nf}), SGD | "
        f"buffer {slots:,} slots prefilled | {warmup} warm-up + {steps} timed steps, "
        f"median of {REPEATS[run.quick]} runs",
    )
    same = dict(data="cifar", n=n, nf=nf, slots=slots, warmup=warmup, steps=steps, device=run.device)
    runs: dict = {}
    for _ in range(REPEATS[run.quick]):  # interleaved, as in the online section
        for (setting, (path, batch, update_every)), workers in itertools.product(IMAGE_SETTINGS.items(), WORKERS):
            for name, kind in IMAGE_METHODS.items():
                kwargs = dict(kind=kind, path=path, batch=batch, update_every=update_every, workers=workers)
                runs.setdefault((setting, workers), {}).setdefault(name, []).append(fresh(step_cost, **same, **kwargs))
    results = {key: {name: median_run(rs) for name, rs in by_name.items()} for key, by_name in runs.items()}
    print_images(results, steps)
    return results


def overhead(runs: dict, name: str) -> float:
    """Time per step over Naive's at the same step size, minus 1."""
    return runs[name]["ms"] / runs["Naive"]["ms"] - 1


def print_images(results: dict, steps: int) -> None:
    print(f"{'setting, workers':<34}{'method':<26}{'ms/step':>9}{'overhead over Naive':>21}{'peak RSS MB':>13}")
    for (setting, workers), runs in results.items():
        for i, (name, r) in enumerate(runs.items()):
            label = f"{setting}, workers {workers}" if i == 0 else ""
            naive_size = 2 * IMAGE_SETTINGS[setting][1]
            extra = f"{overhead(runs, name):+.0%}" if name != "Naive" else f"(at {naive_size} a step)"
            print(f"{label:<34}{name:<26}{r['ms']:>9.1f}{extra:>21}{r['rss_mb']:>13.0f}")
    capped(
        {f"{name}, {setting}, workers {w}": r for (setting, w), runs in results.items() for name, r in runs.items()},
        steps,
    )
    ratios, ok = [], True
    for (setting, workers), runs in results.items():
        ours, theirs = overhead(runs, "ours AlphaReplayPlugin"), overhead(runs, "Avalanche ReplayPlugin")
        ok = ok and ours <= theirs
        ratio = f"{ours / theirs:.2f}" if theirs > 0 else f"n/a (Avalanche's {theirs:+.0%})"
        ratios.append(f"{setting}, workers {workers} {ratio}")
    print(f"ours overhead / Avalanche's overhead: {'; '.join(ratios)}; goal <= 1: {verdict(ok)}")


# ---- plots -----------------------------------------------------------------------------------------
def plot_updates(results: dict, run: SimpleNamespace, out: Path) -> Path:
    from matplotlib.figure import Figure

    sizes = UPDATE_SIZES[run.quick]
    fig = Figure(figsize=(15, 8.5))
    axes = fig.subplots(2, 3, sharex=True, sharey=True).flatten()
    for ax, name in zip(axes, BUFFERS, strict=True):
        for constructor, by_size in results.items():
            ax.plot(sizes, [by_size[s]["buffers"][name]["ms"] for s in sizes], marker="o", label=constructor)
        ax.set(xscale="log", yscale="log", title=name, xlabel="dataset size (samples)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("ms per update (10 samples, 500 slots)")
    axes[3].set_ylabel("ms per update (10 samples, 500 slots)")
    axes[0].legend(fontsize=7)
    fig.suptitle("Buffer update cost vs the dataset behind the offers (one line per constructor, a panel per buffer)")
    fig.tight_layout()
    return save(fig, out / "scale_updates.png")


def plot_online(results: dict, run: SimpleNamespace, out: Path) -> Path:
    from matplotlib.figure import Figure

    slots = ONLINE_SLOTS[run.quick]
    fig = Figure(figsize=(8, 5))
    ax = fig.add_subplot()
    for name, by_slots in results.items():
        rates = [1e3 / by_slots[s]["ms"] for s in slots]
        style = {"linestyle": "--", "marker": None} if name.startswith("Naive") else {"marker": "o"}
        ax.plot(slots, rates, label=name, **style)
    ax.set(xscale="log", yscale="log", xlabel="buffer size (slots)", ylabel="training steps / s")
    ax.set_title("Online replay: steps/s vs buffer size (10 new + 10 memory samples a step)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, out / "scale_online.png")


def plot_images(results: dict, run: SimpleNamespace, out: Path) -> Path:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.5))
    left, right = fig.subplots(1, 2)
    groups = [
        f"{' '.join(setting.split()[:-3])}\n{' '.join(setting.split()[-3:])}\nworkers {w}" for setting, w in results
    ]
    width = 0.27
    for i, name in enumerate(IMAGE_METHODS):
        xs = [g + (i - 1) * width for g in range(len(groups))]
        left.bar(xs, [runs[name]["ms"] for runs in results.values()], width, label=name)
        if name != "Naive":
            right.bar(xs, [100 * overhead(runs, name) for runs in results.values()], width, label=name)
    for ax, ylabel in ((left, "ms per step"), (right, "overhead over Naive at the same step size (%)")):
        ax.set_xticks(range(len(groups)), groups, fontsize=8)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
    right.axhline(0, color="k", linewidth=0.8)
    fig.suptitle("CIFAR-shaped pipeline, SlimResNet18: time per step and replay overhead")
    fig.tight_layout()
    return save(fig, out / "scale_images.png")


def save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=100)
    return path


# ---- command line ---------------------------------------------------------------------------------
def parse(argv: list[str] | None) -> SimpleNamespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few steps; plots to a temp folder")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, of {', '.join(SECTIONS)}")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--out", type=Path, help=f"folder for the plots (default {FIGURES}; --quick: a temp folder)")
    args = parser.parse_args(argv)
    sections = [s for s in args.sections.split(",") if s]
    if unknown := set(sections) - set(SECTIONS):
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here")
    name = f"cuda ({torch.cuda.get_device_name()})" if args.device == "cuda" else "cpu"
    command = " ".join(sys.argv[1:] if argv is None else argv)
    return SimpleNamespace(
        quick=args.quick, sections=sections, device=args.device, device_name=name, out=args.out, command=command
    )


def main(argv: list[str] | None = None) -> dict:
    run = parse(argv)
    quiet()
    sections = {
        "updates": (updates_section, plot_updates),
        "online": (online_section, plot_online),
        "images": (images_section, plot_images),
    }
    results, plots = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        out = run.out or (Path(tmp) if run.quick else FIGURES)
        out.mkdir(parents=True, exist_ok=True)
        for name in (s for s in SECTIONS if s in run.sections):
            measure, plot = sections[name]
            start, runs = time.perf_counter(), len(RUNS_CPU_S)
            results[name] = measure(run)
            plots.append(plot(results[name], run, out))
            wall, cpu = time.perf_counter() - start, sum(RUNS_CPU_S[runs:])
            print(f"({name}: {wall:.0f} s; its {len(RUNS_CPU_S) - runs} runs used {cpu:.0f} s of CPU)")
        kept = "" if run.out or not run.quick else " (a temp folder, removed: --quick keeps the committed plots)"
        print(f"\nplots: {', '.join(p.name for p in plots)} in {out}{kept}")
    return results


if __name__ == "__main__":
    main()
