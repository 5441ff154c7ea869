"""Replay buffers, alpha-weighted replay and GDumb for Avalanche."""

from .benchmarks import SplitDigits, SplitMNISTIdx
from .buffers import ReservoirSamplingBuffer

__version__ = "0.1.0"
__all__ = ["ReservoirSamplingBuffer", "SplitDigits", "SplitMNISTIdx", "__version__"]
