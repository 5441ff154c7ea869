"""Checks the plugins run when training starts, so that a combination that cannot work stops
with a clear error instead of training silently wrong."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import torch
from avalanche.distributed import DistributedHelper
from avalanche.training.plugins import (
    BiCPlugin,
    CoPEPlugin,
    GSS_greedyPlugin,
    RARPlugin,
    ReplayPlugin,
    SupervisedPlugin,
)

from ..buffers import SlotBuffer

if TYPE_CHECKING:
    from avalanche.training.templates import SupervisedTemplate

DATALOADER_PLUGINS = (ReplayPlugin, RARPlugin, BiCPlugin, CoPEPlugin, GSS_greedyPlugin)
"""Avalanche's plugins that set ``strategy.dataloader`` to a loader of their own."""


def check_sole_dataloader(plugin: SupervisedPlugin, strategy: SupervisedTemplate) -> None:
    """Raise if another plugin of ``strategy`` is known to set ``strategy.dataloader`` too: one
    of the two loaders would be dropped, and with it that plugin's replay."""
    others = [type(p).__name__ for p in strategy.plugins if p is not plugin and isinstance(p, DATALOADER_PLUGINS)]
    if others:
        raise ValueError(
            f"{type(plugin).__name__} and {', '.join(others)} both set strategy.dataloader, so one "
            "of them would silently stop replaying: use one replay plugin per strategy"
        )


def check_dataloader_kept(plugin: SupervisedPlugin, strategy: SupervisedTemplate, ours: Any) -> None:
    """Raise if ``strategy.dataloader`` is no longer ``ours``: a plugin that ran after ``plugin``
    replaced it, and the strategy would train without ``plugin``'s memory minibatches."""
    if strategy.dataloader is ours:
        return
    plugins = list(strategy.plugins)
    after = plugins[plugins.index(plugin) + 1 :] if plugin in plugins else plugins
    hooks = ("before_training_exp", "before_training_epoch")
    # Avalanche's own plugins that replace it are caught by check_sole_dataloader
    suspects = [
        type(p).__name__
        for p in after
        if not type(p).__module__.startswith("avalanche.") and any(_overrides(p, hook) for hook in hooks)
    ]
    raise RuntimeError(
        f"{type(plugin).__name__} set strategy.dataloader, but it was replaced by a "
        f"{type(strategy.dataloader).__name__} before the epoch started (by a plugin listed after it: "
        f"{', '.join(suspects) or 'unknown'}); the memory term would never apply. Remove that plugin "
        "or make it leave strategy.dataloader alone"
    )


def _overrides(plugin: SupervisedPlugin, hook: str) -> bool:
    return getattr(type(plugin), hook, None) is not getattr(SupervisedPlugin, hook, None)


def check_same_on_every_process(plugin: SupervisedPlugin, generator: torch.Generator, buffers: dict) -> None:
    """In a distributed run, raise on every process unless the plugin's ``generator`` and, for each
    of our buffers among ``buffers`` (values), its generator and stream count are the same on all
    of them; one collective."""
    if not DistributedHelper.is_distributed:
        return
    state = [generator.get_state().numpy().tobytes()]
    for key, buffer in buffers.items():
        if isinstance(buffer, SlotBuffer):
            state += [buffer.generator.get_state().numpy().tobytes(), str((key, buffer.n_seen)).encode()]
    digests = DistributedHelper.gather_all_objects(hashlib.sha256(b"".join(state)).hexdigest())
    differ = [rank for rank, d in enumerate(digests) if d != digests[0]]
    if differ:
        raise RuntimeError(
            f"{type(plugin).__name__} holds different random states on different processes (ranks "
            f"{differ} differ from rank 0), so each process would hold another buffer: pass the same "
            "seed on every process, or leave seed=None and seed every process alike "
            "(DistributedHelper.init_distributed(random_seed=...))"
        )
