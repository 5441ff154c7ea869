"""Replay buffers: subclasses of Avalanche's ``ExemplarsBuffer``."""

from ._base import SlotBuffer
from .class_balanced_reservoir import ClassBalancedReservoirBuffer
from .greedy import GreedyClassBalancedBuffer
from .reservoir import ReservoirSamplingBuffer

__all__ = ["ClassBalancedReservoirBuffer", "GreedyClassBalancedBuffer", "ReservoirSamplingBuffer", "SlotBuffer"]
