"""Replay buffers, alpha-weighted replay and GDumb for Avalanche."""

from ._dill_compat import register_optimizer_reducers
from .benchmarks import SplitDigits, SplitMNISTIdx
from .buffers import GreedyClassBalancedBuffer, ReservoirSamplingBuffer
from .loaders import DualMinibatchLoader
from .metrics import alpha_replay_metrics
from .plugins import AlphaReplayPlugin, GDumbPlugin
from .schedules import ConstantAlpha, LinearAlpha
from .strategies import AlphaReplay, GDumb

register_optimizer_reducers()  # Avalanche's save_checkpoint works with torch optimizers

__version__ = "0.1.0"
__all__ = [
    "AlphaReplay",
    "AlphaReplayPlugin",
    "ConstantAlpha",
    "DualMinibatchLoader",
    "GDumb",
    "GDumbPlugin",
    "GreedyClassBalancedBuffer",
    "LinearAlpha",
    "ReservoirSamplingBuffer",
    "SplitDigits",
    "SplitMNISTIdx",
    "__version__",
    "alpha_replay_metrics",
]
