"""Checks the plugins run when training starts, so that a combination that cannot work stops
with a clear error instead of training silently wrong."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from avalanche.distributed import DistributedHelper
from avalanche.training.plugins import (
    BiCPlugin,
    CoPEPlugin,
    GDumbPlugin,
    GSS_greedyPlugin,
    RARPlugin,
    ReplayPlugin,
    SupervisedPlugin,
)

from ..buffers import SlotBuffer

if TYPE_CHECKING:
    from avalanche.training.templates import SupervisedTemplate

DATALOADER_PLUGINS = (ReplayPlugin, RARPlugin, BiCPlugin, CoPEPlugin, GSS_greedyPlugin, GDumbPlugin)
"""Avalanche's plugins that set ``strategy.dataloader`` or the training data to their own."""


def check_sole_replay(plugin: SupervisedPlugin, strategy: SupervisedTemplate) -> None:
    """Raise if another plugin of ``strategy`` drives the training data too (one of Avalanche's
    replay plugins, or one of this package's: ``drives_replay``): one of the two would be
    dropped, and with it that plugin's replay."""
    others = [
        type(p).__name__
        for p in strategy.plugins
        if p is not plugin and (isinstance(p, DATALOADER_PLUGINS) or getattr(p, "drives_replay", False))
    ]
    if others:
        raise ValueError(
            f"{type(plugin).__name__} and {', '.join(others)} both set strategy.dataloader or the "
            "training data, so one of them would silently stop replaying: use one replay plugin per "
            "strategy (DERPlugin already does what AlphaReplayPlugin does, plus the logits)"
        )


def check_mem_size(plugin: SupervisedPlugin, buffer: Any) -> None:
    """Raise unless ``buffer`` still has the plugin's ``mem_size`` slots (a state loaded into it
    may have changed them)."""
    if buffer.max_size != plugin.mem_size:
        raise ValueError(
            f"{type(plugin).__name__}'s buffer has max_size {buffer.max_size} but the plugin's mem_size is "
            f"{plugin.mem_size} (was another state loaded into the buffer?): give them the same size"
        )


def refuse_mid_experience(plugin: SupervisedPlugin, training: bool) -> None:
    """Raise if ``plugin`` is pickled (a checkpoint) while an experience is being trained."""
    if training:
        raise RuntimeError(
            f"{type(plugin).__name__} cannot be saved in the middle of an experience: resuming would "
            "train the experience again from its start and offer its first samples to the buffer twice. "
            "Save checkpoints between experiences, after strategy.train(experience) returns"
        )


def check_dataloader_kept(plugin: SupervisedPlugin, strategy: SupervisedTemplate, fresh: bool) -> None:
    """Raise unless the strategy's minibatch came from ``plugin``'s loader (``fresh``: the loader
    yielded a step not yet trained). Checked when each minibatch arrives, so a plugin listed after
    ``plugin`` that replaced ``strategy.dataloader`` in any earlier hook is caught before the
    model or the buffer changes."""
    if fresh:
        return
    plugins = list(strategy.plugins)
    after = plugins[plugins.index(plugin) + 1 :] if plugin in plugins else plugins
    hooks = ("before_training_exp", "before_training_epoch", "after_training_epoch", "before_training")
    # Avalanche's own plugins that replace it are caught by check_sole_replay
    suspects = [
        type(p).__name__
        for p in after
        if not type(p).__module__.startswith("avalanche.") and any(_overrides(p, hook) for hook in hooks)
    ]
    raise RuntimeError(
        f"{type(plugin).__name__} set strategy.dataloader, but the strategy is training on "
        f"minibatches of a {type(strategy.dataloader).__name__} (set by a plugin listed after it: "
        f"{', '.join(suspects) or 'unknown'}); the memory term would never apply. Remove that plugin "
        "or make it leave strategy.dataloader alone"
    )


def _overrides(plugin: SupervisedPlugin, hook: str) -> bool:
    return getattr(type(plugin), hook, None) is not getattr(SupervisedPlugin, hook, None)


def check_same_on_every_process(plugin: SupervisedPlugin, generator: torch.Generator, buffers: dict) -> None:
    """In a distributed run, raise on every process unless the plugin's ``generator``, its
    ``mem_size`` and, for each buffer among ``buffers`` (values), its size and contents (for this
    package's buffers also its generator and stream count) are the same on all of them; one
    collective."""
    if not DistributedHelper.is_distributed:
        return
    digest = hashlib.sha256(generator.get_state().numpy().tobytes())
    digest.update(repr(getattr(plugin, "mem_size", None)).encode())
    for key, buffer in buffers.items():
        digest.update(repr((key, type(buffer).__name__, buffer.max_size)).encode())
        if isinstance(buffer, SlotBuffer):
            digest.update(buffer.generator.get_state().numpy().tobytes())
            _digest_state(digest, buffer.state_dict())
        else:
            digest.update(repr(len(buffer.buffer)).encode())
    digests = DistributedHelper.gather_all_objects(digest.hexdigest())
    differ = [rank for rank, d in enumerate(digests) if d != digests[0]]
    if differ:
        raise RuntimeError(
            f"{type(plugin).__name__} holds a different mem_size, buffer or random state on different "
            f"processes (ranks {differ} differ from rank 0), so each process would train with another "
            "buffer: give every process the same mem_size, the same buffer contents and the same "
            "seed (or leave seed=None and seed every process alike: "
            "DistributedHelper.init_distributed(random_seed=...))"
        )


def _digest_state(digest: Any, state: Any) -> None:
    """Add ``state``'s tensors, numbers and strings to ``digest``, in order; other objects (the
    datasets a buffer refers to) by type only, as each process holds its own copies."""
    if isinstance(state, dict):
        for name, value in state.items():
            digest.update(repr(name).encode())
            _digest_state(digest, value)
    elif isinstance(state, (list, tuple)):
        for value in state:
            _digest_state(digest, value)
    elif isinstance(state, torch.Tensor):
        digest.update(repr((state.dtype, tuple(state.shape))).encode())
        digest.update(
            state.detach()
            .cpu()
            .flatten()
            .to(torch.float64 if state.is_floating_point() else torch.int64)
            .numpy()
            .tobytes()
        )
    elif isinstance(state, np.ndarray):
        digest.update(repr((state.dtype.str, state.shape)).encode() + np.ascontiguousarray(state).tobytes())
    elif state is None or isinstance(state, (bool, int, float, str)):
        digest.update(repr(state).encode())
    else:
        digest.update(type(state).__name__.encode())
