"""Avalanche plugins."""

from .alpha_replay import AlphaReplayPlugin
from .der import DERPlugin
from .gdumb import GDumbPlugin

__all__ = ["AlphaReplayPlugin", "DERPlugin", "GDumbPlugin"]
