"""What one experiment trains: the strategies, benchmarks, schedules and replay policies to choose
from, and :class:`Setting`. Standard library only, so the command line's parser
(``avalanche-replay --help``) reads it without importing torch or Avalanche; ``experiments`` trains
what it describes."""

from __future__ import annotations

from dataclasses import dataclass

_DER_FIELDS = ("mem_size", "alpha", "alpha_schedule", "storage", "retrieval")
USES = {  # strategy -> the Setting fields of its own that it reads (the others apply to every strategy)
    "naive": (),
    "replay": ("mem_size", "storage"),
    "alpha-replay": ("mem_size", "alpha", "alpha_schedule", "storage", "retrieval"),
    "gdumb": ("mem_size",),
    "der": _DER_FIELDS,  # DERPlugin with beta 0
    "derpp": (*_DER_FIELDS, "beta"),  # DERPlugin with beta > 0 (DER++)
}
STRATEGIES = tuple(USES)
STRATEGY_FIELDS = ("mem_size", "alpha", "alpha_schedule", "beta", "storage", "retrieval")
STRATEGY_DEFAULTS = {  # Setting field -> strategy -> its default there, for a default that depends on the strategy
    "alpha": {"alpha-replay": 1.0, "der": 0.1, "derpp": 0.1},  # AlphaReplayPlugin's and DERPlugin's defaults
}
BENCHMARKS = ("split-digits", "mnist-idx")
SCHEDULES = ("constant", "linear")
STORAGES = ("reservoir", "class-balanced-reservoir")  # buffers.ReservoirSamplingBuffer, ClassBalancedReservoirBuffer
RETRIEVALS = ("random", "balanced", "mir")  # retrieval.RandomRetrieval, BalancedRetrieval("class"), MIRRetrieval
ALLOWED = {  # (strategy, Setting field) -> the values it takes, where fewer than every choice
    ("der", "retrieval"): ("random", "balanced"),  # DERPlugin rejects MIRRetrieval
    ("derpp", "retrieval"): ("random", "balanced"),
}
N_EXPERIENCES = 5  # every benchmark's: 10 classes, 2 per experience
MNIST_DIR_ENV = "AVALANCHE_REPLAY_MNIST_DIR"  # the same name as benchmarks.MNIST_DIR_ENV (test_cli checks)


def strategy_default(field: str, strategy: str) -> object:
    """``field``'s default for ``strategy`` where :data:`STRATEGY_DEFAULTS` names one, else None."""
    return STRATEGY_DEFAULTS.get(field, {}).get(strategy)


@dataclass
class Setting:
    """What one run trains: strategy, memory, alpha (and DER++'s beta), storage and retrieval
    policies, data, epochs, seed. ``alpha``: None for the strategy's default (1 for alpha-replay,
    0.1 for der and derpp, None for the others). ``beta``: the weight of DER++'s label term.
    ``imbalance_ratio``: None for the balanced stream, else the benchmark's long tail (the last
    class of the stream keeps that share of its training images)."""

    strategy: str = "alpha-replay"
    mem_size: int = 200
    alpha: float | None = None
    alpha_schedule: str = "constant"
    beta: float = 0.5
    storage: str = "reservoir"
    retrieval: str = "random"
    benchmark: str = "split-digits"
    imbalance_ratio: float | None = None
    epochs: int = 3
    seed: int = 0
    batch_size: int = 32
    lr: float = 0.1

    def __post_init__(self) -> None:
        if self.alpha is None:
            self.alpha = strategy_default("alpha", self.strategy)

    def applies(self, field: str) -> bool:
        """Whether ``field`` shapes this run (``mem_size`` does not for naive, ``alpha`` only for
        alpha replay, DER and DER++, ``beta`` only for DER++)."""
        return field not in STRATEGY_FIELDS or field in USES[self.strategy]

    def describe(self) -> str:
        """The strategy and its own settings, e.g.
        ``alpha-replay, mem 200, alpha 1 (constant), reservoir + random, seed 0`` or
        ``derpp, mem 200, alpha 0.1 (constant), beta 0.5, reservoir + random, seed 0``."""
        parts = [self.strategy]
        if self.applies("mem_size"):
            parts.append(f"mem {self.mem_size}")
        if self.applies("alpha"):
            parts.append(f"alpha {self.alpha:g} ({self.alpha_schedule})")
        if self.applies("beta"):
            parts.append(f"beta {self.beta:g}")
        if self.applies("storage"):
            parts.append(" + ".join([self.storage, *([self.retrieval] if self.applies("retrieval") else [])]))
        if self.imbalance_ratio is not None:
            parts.append(f"imbalance ratio {self.imbalance_ratio:g}")
        return ", ".join([*parts, f"seed {self.seed}"])
