"""What one experiment trains: the strategies, benchmarks and schedules to choose from, and
:class:`Setting`. Standard library only, so the command line's parser (``avalanche-replay --help``)
reads it without importing torch or Avalanche; ``experiments`` trains what it describes."""

from __future__ import annotations

from dataclasses import dataclass

USES = {  # strategy -> the Setting fields of its own that it reads (the others apply to every strategy)
    "naive": (),
    "replay": ("mem_size",),
    "alpha-replay": ("mem_size", "alpha", "alpha_schedule"),
    "gdumb": ("mem_size",),
}
STRATEGIES = tuple(USES)
STRATEGY_FIELDS = ("mem_size", "alpha", "alpha_schedule")
BENCHMARKS = ("split-digits", "mnist-idx")
SCHEDULES = ("constant", "linear")
MNIST_DIR_ENV = "AVALANCHE_REPLAY_MNIST_DIR"  # the same name as benchmarks.MNIST_DIR_ENV (test_cli checks)


@dataclass
class Setting:
    """What one run trains: strategy, memory, alpha, data, epochs, seed."""

    strategy: str = "alpha-replay"
    mem_size: int = 200
    alpha: float = 1.0
    alpha_schedule: str = "constant"
    benchmark: str = "split-digits"
    epochs: int = 3
    seed: int = 0
    batch_size: int = 32
    lr: float = 0.1

    def applies(self, field: str) -> bool:
        """Whether ``field`` shapes this run (``mem_size`` does not for naive, ``alpha`` only for alpha replay)."""
        return field not in STRATEGY_FIELDS or field in USES[self.strategy]

    def describe(self) -> str:
        """The strategy and its own settings, e.g. ``alpha-replay, mem 200, alpha 1 (constant), seed 0``."""
        parts = [self.strategy]
        if self.applies("mem_size"):
            parts.append(f"mem {self.mem_size}")
        if self.applies("alpha"):
            parts.append(f"alpha {self.alpha:g} ({self.alpha_schedule})")
        return ", ".join([*parts, f"seed {self.seed}"])
