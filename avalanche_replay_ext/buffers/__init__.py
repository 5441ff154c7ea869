"""Replay buffers: subclasses of Avalanche's ``ExemplarsBuffer``."""

from ._base import SlotBuffer
from .greedy import GreedyClassBalancedBuffer
from .reservoir import ReservoirSamplingBuffer

__all__ = ["GreedyClassBalancedBuffer", "ReservoirSamplingBuffer", "SlotBuffer"]
