"""Avalanche plugins."""

from .alpha_replay import AlphaReplayPlugin
from .gdumb import GDumbPlugin

__all__ = ["AlphaReplayPlugin", "GDumbPlugin"]
