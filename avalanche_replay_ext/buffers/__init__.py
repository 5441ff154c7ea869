"""Replay buffers: subclasses of Avalanche's ``ExemplarsBuffer``."""

from .reservoir import ReservoirSamplingBuffer

__all__ = ["ReservoirSamplingBuffer"]
