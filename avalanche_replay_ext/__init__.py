"""Replay buffers, alpha-weighted replay and GDumb for Avalanche.

The public names are imported on first use (PEP 562), so ``avalanche-replay --help`` starts without
torch or Avalanche; ``from avalanche_replay_ext import X`` works as before.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .benchmarks import SplitDigits, SplitMNISTIdx
    from .buffers import ClassBalancedReservoirBuffer, GreedyClassBalancedBuffer, ReservoirSamplingBuffer
    from .loaders import DualMinibatchLoader
    from .metrics import alpha_replay_metrics, der_metrics
    from .plugins import AlphaReplayPlugin, DERPlugin, GDumbPlugin
    from .retrieval import BalancedRetrieval, MIRRetrieval, RandomRetrieval
    from .schedules import ConstantAlpha, LinearAlpha
    from .strategies import DER, AlphaReplay, GDumb

__version__ = "0.1.0"
_HOME = {  # public name -> the module that defines it
    "SplitDigits": ".benchmarks",
    "SplitMNISTIdx": ".benchmarks",
    "ClassBalancedReservoirBuffer": ".buffers",
    "GreedyClassBalancedBuffer": ".buffers",
    "ReservoirSamplingBuffer": ".buffers",
    "DualMinibatchLoader": ".loaders",
    "alpha_replay_metrics": ".metrics",
    "der_metrics": ".metrics",
    "AlphaReplayPlugin": ".plugins",
    "DERPlugin": ".plugins",
    "GDumbPlugin": ".plugins",
    "BalancedRetrieval": ".retrieval",
    "MIRRetrieval": ".retrieval",
    "RandomRetrieval": ".retrieval",
    "ConstantAlpha": ".schedules",
    "LinearAlpha": ".schedules",
    "AlphaReplay": ".strategies",
    "DER": ".strategies",
    "GDumb": ".strategies",
}
__all__ = [
    "AlphaReplay",
    "AlphaReplayPlugin",
    "BalancedRetrieval",
    "ClassBalancedReservoirBuffer",
    "ConstantAlpha",
    "DER",
    "DERPlugin",
    "DualMinibatchLoader",
    "GDumb",
    "GDumbPlugin",
    "GreedyClassBalancedBuffer",
    "LinearAlpha",
    "MIRRetrieval",
    "RandomRetrieval",
    "ReservoirSamplingBuffer",
    "SplitDigits",
    "SplitMNISTIdx",
    "__version__",
    "alpha_replay_metrics",
    "der_metrics",
]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name], __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME})


def _register_optimizer_reducers() -> None:
    from ._dill_compat import register_optimizer_reducers

    register_optimizer_reducers()


class _BeforeCheckpoints:
    """Import hook: registers the dill reducer as Avalanche's checkpointing module is imported
    (``save_checkpoint`` lives there), then steps aside; it finds no module itself."""

    done = False

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "avalanche.checkpointing" and not self.done:
            self.done = True  # not removed from sys.meta_path: the import system is iterating it
            _register_optimizer_reducers()


# Avalanche's save_checkpoint works with torch optimizers (see _dill_compat): registered now if torch
# is loaded (dill's reducer needs it), else before Avalanche's checkpointing module is imported.
if "torch" in sys.modules:
    _register_optimizer_reducers()
else:
    sys.meta_path.insert(0, _BeforeCheckpoints())
