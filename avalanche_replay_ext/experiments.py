"""One experiment setting, end to end: benchmark, strategy, training, accuracy matrix.

Shared by the CLI (``avalanche-replay run|sweep``) and the notebooks.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import torch
from avalanche.evaluation.metrics import accuracy_metrics
from avalanche.models import SimpleMLP
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin, ReplayPlugin, SupervisedPlugin
from tqdm.auto import tqdm

from .benchmarks import SplitDigits, SplitMNISTIdx
from .buffers import ClassBalancedReservoirBuffer, ReservoirSamplingBuffer
from .metrics import experience_accuracy_key, stream_accuracy_key
from .plugins import AlphaReplayPlugin, DERPlugin, GDumbPlugin
from .retrieval import BalancedRetrieval, MIRRetrieval, RandomRetrieval, RetrievalPolicy
from .schedules import ConstantAlpha, LinearAlpha
from .settings import BENCHMARKS, N_EXPERIENCES, RETRIEVALS, SCHEDULES, STORAGES, STRATEGIES, Setting

__all__ = [
    "BENCHMARKS",
    "RETRIEVALS",
    "SCHEDULES",
    "STORAGES",
    "STRATEGIES",
    "Result",
    "Setting",
    "make_benchmark",
    "make_plugins",
    "make_retrieval",
    "make_storage",
    "make_strategy",
    "run_setting",
]


@dataclass
class Result:
    """A finished run: ``accuracy_matrix[i][j]`` is the accuracy on test experience ``j`` after
    training experience ``i``; ``final_accuracy`` is on the whole test stream at the end."""

    setting: Setting
    accuracy_matrix: list[list[float]] = field(default_factory=list)
    final_accuracy: float = 0.0
    seconds: float = 0.0

    def row(self) -> dict[str, Any]:
        """Flat record for tables, CSV and JSON; the settings the strategy does not use are None."""
        last = self.accuracy_matrix[-1] if self.accuracy_matrix else []
        return {
            **{k: v if self.setting.applies(k) else None for k, v in asdict(self.setting).items()},
            "final_accuracy": self.final_accuracy,
            "average_accuracy": sum(last) / len(last) if last else 0.0,
            "seconds": self.seconds,
            "accuracy_matrix": self.accuracy_matrix,
        }


def make_benchmark(
    name: str, seed: int, data_dir: str | os.PathLike | None = None, imbalance_ratio: float | None = None
):
    """SplitDigits or SplitMNISTIdx (from ``data_dir``, default ``$AVALANCHE_REPLAY_MNIST_DIR``),
    ``N_EXPERIENCES`` (5) experiences, class order ``seed``; ``imbalance_ratio``: None (balanced) or
    the long tail of the training stream (see :func:`~avalanche_replay_ext.benchmarks.SplitDigits`)."""
    if name == "split-digits":
        return SplitDigits(N_EXPERIENCES, seed=seed, imbalance_ratio=imbalance_ratio)
    if name == "mnist-idx":
        return SplitMNISTIdx(N_EXPERIENCES, seed=seed, root=data_dir, imbalance_ratio=imbalance_ratio)
    raise ValueError(f"benchmark must be one of {BENCHMARKS}, got {name!r}")


def make_plugins(setting: Setting) -> list[SupervisedPlugin]:
    """The strategy's plugins; all randomness seeded from ``setting.seed``. ``replay``: Avalanche's
    ``ReplayPlugin`` on the setting's buffer; ``alpha-replay``: ``AlphaReplayPlugin`` with the
    setting's buffer and retrieval policy (with the reservoir, the plugin's own default buffer,
    seeded from the plugin's generator, as before the storage option existed: the same runs);
    ``der`` and ``derpp``: ``DERPlugin`` with ``beta=0`` (DER) or the setting's beta (DER++), the
    alpha schedule weighting its logit term, buffer and retrieval as for ``alpha-replay``."""
    s = setting
    if s.strategy == "naive":
        return []
    if s.strategy == "replay":
        return [ReplayPlugin(s.mem_size, storage_policy=make_storage(s))]
    if s.strategy in ("alpha-replay", "der", "derpp"):
        schedule = {"constant": ConstantAlpha, "linear": LinearAlpha}[s.alpha_schedule](s.alpha)
        storage = None if s.storage == "reservoir" else make_storage(s)
        kwargs = {"storage_policy": storage, "seed": s.seed, "retrieval": make_retrieval(s)}
        if s.strategy == "alpha-replay":
            return [AlphaReplayPlugin(s.mem_size, schedule, **kwargs)]
        return [DERPlugin(s.mem_size, schedule, beta=s.beta if s.strategy == "derpp" else 0.0, **kwargs)]
    if s.strategy == "gdumb":
        return [GDumbPlugin(s.mem_size, seed=s.seed)]
    raise ValueError(f"strategy must be one of {STRATEGIES}, got {s.strategy!r}")


def make_storage(setting: Setting) -> ReservoirSamplingBuffer | ClassBalancedReservoirBuffer:
    """The setting's buffer, ``mem_size`` slots, seeded with ``setting.seed``."""
    buffers = {"reservoir": ReservoirSamplingBuffer, "class-balanced-reservoir": ClassBalancedReservoirBuffer}
    if setting.storage not in buffers:
        raise ValueError(f"storage must be one of {STORAGES}, got {setting.storage!r}")
    return buffers[setting.storage](setting.mem_size, seed=setting.seed)


def make_retrieval(setting: Setting) -> RetrievalPolicy:
    """The setting's retrieval policy: ``RandomRetrieval()``, ``BalancedRetrieval("class")`` or
    ``MIRRetrieval()`` (50 candidates per step)."""
    policies = {"random": RandomRetrieval, "balanced": partial(BalancedRetrieval, "class"), "mir": MIRRetrieval}
    if setting.retrieval not in policies:
        raise ValueError(f"retrieval must be one of {RETRIEVALS}, got {setting.retrieval!r}")
    return policies[setting.retrieval]()


class _IterationBar(SupervisedPlugin):
    """tqdm bar over one experience's training iterations."""

    def __init__(self, enabled: bool) -> None:
        super().__init__()
        self.enabled, self.bar = enabled, None

    def before_training_exp(self, strategy, **kwargs):
        total = len(strategy.dataloader) * strategy.train_epochs
        self.bar = tqdm(
            total=total,
            desc=f"  exp {strategy.clock.train_exp_counter} iterations",
            leave=False,
            disable=not self.enabled,
        )

    def after_training_iteration(self, strategy, **kwargs):
        self.bar.update()

    def after_training_exp(self, strategy, **kwargs):
        self.bar.close()


def make_strategy(setting: Setting, input_size: int, progress: bool = True) -> Naive:
    """Avalanche's ``Naive`` on a ``SimpleMLP`` (256 hidden units, seeded) with the setting's plugins,
    SGD (momentum 0.9) and accuracy metrics; ``progress``: a tqdm bar over each experience's iterations."""
    s = setting
    torch.manual_seed(s.seed)
    model = SimpleMLP(num_classes=10, input_size=input_size, hidden_size=256, drop_rate=0.0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No loggers specified")
        evaluator = EvaluationPlugin(accuracy_metrics(experience=True, stream=True), loggers=[])
    return Naive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=s.lr, momentum=0.9),
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=s.batch_size,
        train_epochs=s.epochs,
        eval_mb_size=1000,
        plugins=[*make_plugins(s), _IterationBar(progress)],
        evaluator=evaluator,
    )


def run_setting(
    setting: Setting,
    progress: bool = True,
    data_dir: str | os.PathLike | None = None,
    log: Callable[[str], None] | None = None,
) -> Result:
    """Train ``setting`` on its benchmark (MNIST read from ``data_dir``, see :func:`make_benchmark`);
    evaluate on every test experience after each one. ``progress``: tqdm bars over experiences and
    iterations; ``log``: called with one line per experience (``... experience 2/5 trained ...``)."""
    s = setting
    benchmark = make_benchmark(s.benchmark, s.seed, data_dir, s.imbalance_ratio)
    input_size = benchmark.train_stream[0].dataset[0][0].numel()  # the MLP takes flattened samples
    strategy = make_strategy(s, input_size, progress)
    result = Result(s)
    start = time.perf_counter()
    n_train, n_test = len(benchmark.train_stream), len(benchmark.test_stream)
    for i, exp in enumerate(tqdm(benchmark.train_stream, desc=s.describe(), disable=not progress), 1):
        strategy.train(exp)
        metrics = strategy.eval(benchmark.test_stream)
        result.accuracy_matrix.append([metrics[experience_accuracy_key(j)] for j in range(n_test)])
        result.final_accuracy = metrics[stream_accuracy_key()]
        elapsed = time.perf_counter() - start
        if log is not None:
            log(f"{s.describe()}: experience {i}/{n_train} trained and evaluated ({elapsed - result.seconds:.1f} s)")
        result.seconds = elapsed
    return result
