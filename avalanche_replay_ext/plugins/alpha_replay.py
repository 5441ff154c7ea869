"""Alpha-weighted dual-minibatch replay: ``loss = curr_loss + alpha_t * mem_loss``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
from avalanche.models.utils import avalanche_forward
from avalanche.training.plugins import SupervisedPlugin
from avalanche.training.storage_policy import ExemplarsBuffer

from .._checks import check_seed, check_size, make_generator
from ..buffers import ReservoirSamplingBuffer, SlotBuffer
from ..loaders import DualMinibatchLoader, Minibatch
from ..schedules import AlphaSchedule, alpha_at, as_schedule

if TYPE_CHECKING:
    from avalanche.training.templates import SupervisedTemplate

UPDATE_EVERY = ("experience", "iteration")


class AlphaReplayPlugin(SupervisedPlugin):
    """Experience replay with a separate, weighted memory loss.

    Each training iteration draws a current minibatch and, apart, a memory minibatch from the
    buffer (:class:`~avalanche_replay_ext.loaders.DualMinibatchLoader`); the loss becomes
    ``loss = curr_loss + alpha_t * mem_loss``, ``curr_loss`` being the strategy's loss so far
    (its criterion plus terms of plugins that ran before this one) and ``mem_loss`` the criterion
    on the memory minibatch. No memory term while the buffer is empty. This is the second exercise
    of Avalanche's "Dataloading, Memory Buffers, and Replay" how-to; with ``update_every="iteration"``
    it is online Experience Replay (Chaudhry et al., "On Tiny Episodic Memories in Continual
    Learning", 2019) with reservoir sampling.

    ``t`` is the number of distinct experiences trained before the current one (0 on the first;
    training the same experience again does not count; in Avalanche's online streams the
    mini-experiences of one ``origin_experience`` count as that one experience); ``alpha_t`` is
    fixed for the whole experience. After each iteration ``alpha``, ``loss_current`` (the
    criterion on the current minibatch) and ``loss_memory`` (on the memory minibatch, ``None``
    without a memory term) hold that iteration's values; ``alpha_replay_metrics()`` sends them
    to an ``EvaluationPlugin``'s loggers.

    :param mem_size: buffer slots (used when ``storage_policy`` is None).
    :param alpha: a float (constant), ``ConstantAlpha(a)``, ``LinearAlpha(alpha_base)``
        (``alpha_t = alpha_base * t``) or any picklable callable ``t -> float``; values must be
        finite and >= 0.
    :param batch_size_mem: memory minibatch size; ``None`` means the strategy's ``train_mb_size``.
    :param storage_policy: the buffer; default ``ReservoirSamplingBuffer(mem_size, seed)``. Any
        Avalanche ``ExemplarsBuffer`` works with ``update_every="experience"``.
    :param update_every: ``"experience"`` adds each experience to the buffer after training on it;
        ``"iteration"`` offers each current minibatch to the buffer after its optimizer step
        (first epoch only, so each sample is offered once), which needs one of this package's
        buffers.
    :param seed: seed of the plugin's generator (buffer and loader shuffling); ``None`` draws it
        from the global torch RNG.
    """

    def __init__(
        self,
        mem_size: int = 200,
        alpha: float | AlphaSchedule = 1.0,
        batch_size_mem: int | None = None,
        storage_policy: ExemplarsBuffer | None = None,
        update_every: str = "experience",
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.mem_size = check_size("mem_size", mem_size)
        self.schedule = as_schedule(alpha)
        self.batch_size_mem = None if batch_size_mem is None else check_size("batch_size_mem", batch_size_mem)
        if update_every not in UPDATE_EVERY:
            raise ValueError(f"update_every must be one of {UPDATE_EVERY}, got {update_every!r}")
        self.update_every = update_every
        self.generator = make_generator(check_seed(seed))
        if storage_policy is None:
            storage_policy = ReservoirSamplingBuffer(self.mem_size, seed=self._draw_seed())
        elif not isinstance(storage_policy, ExemplarsBuffer):
            raise TypeError(f"storage_policy must be an avalanche ExemplarsBuffer, got {type(storage_policy).__name__}")
        elif storage_policy.max_size != self.mem_size:
            raise ValueError(f"storage_policy.max_size ({storage_policy.max_size}) differs from mem_size ({mem_size})")
        if update_every == "iteration" and not isinstance(storage_policy, SlotBuffer):
            raise ValueError(
                'update_every="iteration" needs a storage_policy with per-minibatch updates '
                f"(ReservoirSamplingBuffer or GreedyClassBalancedBuffer), got {type(storage_policy).__name__}"
            )
        self.storage_policy = storage_policy
        self.alpha: float | None = None
        self.loss_current: float | None = None
        self.loss_memory: float | None = None
        self._loader: DualMinibatchLoader | None = None
        self._memory_mb: Minibatch | None = None
        self._trained: set = set()  # ids of the experiences trained so far

    def _draw_seed(self) -> int:
        return int(torch.randint(0, 2**62, (1,), generator=self.generator))

    def before_training_exp(
        self,
        strategy: SupervisedTemplate,
        num_workers: int = 0,
        shuffle: bool = True,
        drop_last: bool = False,
        **kwargs,
    ) -> None:
        self.alpha = alpha_at(self.schedule, len(self._trained - {_experience_id(strategy)}))
        self._loader = DualMinibatchLoader(
            strategy.adapted_dataset,
            self.storage_policy,
            batch_size=strategy.train_mb_size,
            batch_size_mem=self.batch_size_mem or strategy.train_mb_size,
            shuffle=shuffle,
            seed=self._draw_seed(),
            num_workers=num_workers,
            drop_last=drop_last,
        )
        strategy.dataloader = _CurrentMinibatches(self)

    def before_backward(self, strategy: SupervisedTemplate, **kwargs) -> None:
        with torch.no_grad():
            self.loss_current = strategy._criterion(strategy.mb_output, strategy.mb_y).item()
        self.loss_memory = None
        if self._memory_mb is None:
            return
        x, y, t = (v.to(strategy.device, non_blocking=True) for v in self._memory_mb[:3])
        mem_loss = strategy._criterion(avalanche_forward(strategy.model, x, t), y)
        strategy.loss = strategy.loss + self.alpha * mem_loss
        self.loss_memory = mem_loss.item()

    def after_training_iteration(self, strategy: SupervisedTemplate, **kwargs) -> None:
        self._memory_mb = None
        if self.update_every == "iteration" and strategy.clock.train_exp_epochs == 0:
            self.storage_policy.update_from_dataset(strategy.adapted_dataset, self._loader.current_indices)

    def after_training_exp(self, strategy: SupervisedTemplate, **kwargs) -> None:
        if self.update_every == "experience":
            self.storage_policy.post_adapt(strategy, strategy.experience)
        self._trained.add(_experience_id(strategy))
        self._loader = None


def _experience_id(strategy: SupervisedTemplate) -> object:
    """Which experience is being trained: the origin experience's index for online streams."""
    exp = strategy.experience
    origin = getattr(exp, "origin_experience", None) or exp
    index = getattr(origin, "current_experience", None)
    return ("counter", strategy.clock.train_exp_counter) if index is None else index


class _CurrentMinibatches:
    """The strategy's dataloader: yields current minibatches, hands each memory minibatch to the plugin."""

    def __init__(self, plugin: AlphaReplayPlugin) -> None:
        self.plugin = plugin

    def __len__(self) -> int:
        return len(self.plugin._loader)

    def __iter__(self) -> Iterator[Minibatch]:
        for current, memory in self.plugin._loader:
            self.plugin._memory_mb = memory
            yield current
