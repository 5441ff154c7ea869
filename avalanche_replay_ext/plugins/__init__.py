"""Avalanche plugins."""

from .alpha_replay import AlphaReplayPlugin

__all__ = ["AlphaReplayPlugin"]
