"""Alpha-weighted dual-minibatch replay: ``loss = curr_loss + alpha_t * mem_loss``."""

from __future__ import annotations

import operator
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from avalanche.distributed import DistributedHelper
from avalanche.models.utils import avalanche_forward
from avalanche.training.plugins import SupervisedPlugin
from avalanche.training.storage_policy import ExemplarsBuffer

from .._checks import check_seed, check_size, draw_seed, make_generator
from ..buffers import ReservoirSamplingBuffer, SlotBuffer
from ..buffers._base import experience_index
from ..loaders import DualMinibatchLoader, Minibatch
from ..retrieval import MIRRetrieval, RetrievalPolicy, check_retrieval, per_sample
from ..schedules import AlphaSchedule, alpha_at, as_schedule
from ._guards import (
    check_dataloader_kept,
    check_mem_size,
    check_same_on_every_process,
    check_sole_replay,
    refuse_mid_experience,
)

if TYPE_CHECKING:
    from avalanche.training.templates import SupervisedTemplate

UPDATE_EVERY = ("experience", "iteration")


class AlphaReplayPlugin(SupervisedPlugin, supports_distributed=True):
    drives_replay = True  # sets strategy.dataloader: no other replay plugin beside it
    """Experience replay with a separate, weighted memory loss.

    Each training iteration draws a current minibatch and, apart, a memory minibatch from the
    buffer (:class:`~avalanche_replay_ext.loaders.DualMinibatchLoader`); the loss becomes
    ``loss = curr_loss + alpha_t * mem_loss``, ``curr_loss`` being the strategy's loss so far
    (its criterion plus terms of plugins that ran before this one) and ``mem_loss`` the criterion
    on the memory minibatch. No memory term while the buffer is empty. The model runs once per
    iteration, on both minibatches concatenated (as Avalanche's ``ReplayPlugin`` and Mammoth's ER
    do, so BatchNorm statistics cover both), and its output is split before the losses; from
    ``after_forward`` on (for this plugin and those after it) ``strategy.mbatch`` and
    ``strategy.mb_output`` hold the current minibatch alone. This is the second exercise
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

    The plugin sets ``strategy.dataloader``: training raises if another plugin of the strategy
    is one of Avalanche's that set it too (``ReplayPlugin``, ...) or replaces it after this one,
    and, in a distributed run, if the processes' generators differ (pass the same ``seed``).

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
    :param retrieval: which memory samples form each memory minibatch
        (:mod:`~avalanche_replay_ext.retrieval`: ``RandomRetrieval()``,
        ``BalancedRetrieval(groupby)``, ``MIRRetrieval(candidates)``); ``None``: a new
        ``RandomRetrieval()``, reshuffled passes over the memory.
    """

    def __init__(
        self,
        mem_size: int = 200,
        alpha: float | AlphaSchedule = 1.0,
        batch_size_mem: int | None = None,
        storage_policy: ExemplarsBuffer | None = None,
        update_every: str = "experience",
        seed: int | None = None,
        retrieval: RetrievalPolicy | None = None,
    ) -> None:
        super().__init__()
        self.mem_size = check_size("mem_size", mem_size)
        self.schedule = as_schedule(alpha)
        self.batch_size_mem = None if batch_size_mem is None else check_size("batch_size_mem", batch_size_mem)
        if update_every not in UPDATE_EVERY:
            raise ValueError(f"update_every must be one of {UPDATE_EVERY}, got {update_every!r}")
        self.update_every = update_every
        self.generator = make_generator(check_seed(seed))
        self.retrieval = check_retrieval(retrieval, model=True)
        if storage_policy is None:
            storage_policy = ReservoirSamplingBuffer(self.mem_size, seed=draw_seed(self.generator))
        elif not isinstance(storage_policy, ExemplarsBuffer):
            raise TypeError(f"storage_policy must be an avalanche ExemplarsBuffer, got {type(storage_policy).__name__}")
        elif storage_policy.max_size != self.mem_size:
            raise ValueError(f"storage_policy.max_size ({storage_policy.max_size}) differs from mem_size ({mem_size})")
        if update_every == "iteration" and not isinstance(storage_policy, SlotBuffer):
            raise ValueError(
                'update_every="iteration" needs a storage_policy with per-minibatch updates '
                f"(one of this package's buffers), got {type(storage_policy).__name__}"
            )
        self.storage_policy = storage_policy
        self.retrieval.check(storage_policy if isinstance(storage_policy, SlotBuffer) else storage_policy.buffer)
        self.alpha: float | None = None
        self._step: _Step | None = None  # the training iteration under way (or the last one)
        self._loader: DualMinibatchLoader | None = None
        self._dataloader: _CurrentMinibatches | None = None  # what this plugin set as strategy.dataloader
        self._trained: set = set()  # ids of the experiences trained so far
        self._experience: int | None = None  # experience_index of the experience being trained

    def before_training(self, strategy: SupervisedTemplate, **kwargs) -> None:
        """Stop before any change if another plugin feeds the strategy, if the buffer no longer
        has ``mem_size`` slots (e.g. after loading another state into it), or if the processes of
        a distributed run would sample differently."""
        check_sole_replay(self, strategy)
        check_mem_size(self, self.storage_policy)
        if isinstance(self.retrieval, MIRRetrieval):
            per_sample(strategy._criterion)  # raises if the criterion cannot score samples one by one
        check_same_on_every_process(self, self.generator, {0: self.storage_policy})

    def before_training_exp(
        self,
        strategy: SupervisedTemplate,
        num_workers: int = 0,
        shuffle: bool = True,
        drop_last: bool = False,
        pin_memory: bool | None = None,
        **kwargs,
    ) -> None:
        """Build this experience's loader with the ``strategy.train(...)`` arguments Avalanche
        passes to its own (``pin_memory=None``: pinned when training on CUDA, as Avalanche does)."""
        self._experience = experience_index(strategy.experience)  # read once: Avalanche's attributes are slow
        self.alpha = alpha_at(self.schedule, self._experiences_before(strategy))
        mir = isinstance(self.retrieval, MIRRetrieval)
        memory = self.storage_policy
        if self.update_every == "experience" and not isinstance(memory, SlotBuffer):
            memory = memory.buffer  # unchanged during the experience: read it once
        self._loader = DualMinibatchLoader(
            strategy.adapted_dataset,
            memory,
            batch_size=strategy.train_mb_size,
            batch_size_mem=self._draw_size(strategy),
            shuffle=shuffle,
            seed=draw_seed(self.generator),
            num_replicas=DistributedHelper.world_size,
            rank=DistributedHelper.rank,
            retrieval=self.retrieval.draw if mir else self.retrieval,
            num_workers=num_workers,
            drop_last=drop_last,
            pin_memory=strategy.device.type == "cuda" if pin_memory is None else pin_memory,
        )
        strategy.dataloader = self._dataloader = _CurrentMinibatches(self)

    def _experiences_before(self, strategy: SupervisedTemplate) -> int:
        """``t``: the distinct experiences trained before the current one."""
        return len(self._trained - {_experience_id(strategy, self._experience)})

    def before_training_iteration(self, strategy: SupervisedTemplate, **kwargs) -> None:
        """Raise, before the model or the buffer changes, unless this minibatch came from the
        plugin's loader (a plugin listed after this one may have replaced ``strategy.dataloader``)."""
        step = self._step
        check_dataloader_kept(self, strategy, step is not None and not step.started)
        step.started = True

    def _batch_size_mem(self, strategy: SupervisedTemplate) -> int:
        return self.batch_size_mem or strategy.train_mb_size

    def _draw_size(self, strategy: SupervisedTemplate) -> int:
        """Memory samples the loader draws per step (MIR: its candidates)."""
        if isinstance(self.retrieval, MIRRetrieval):
            return self.retrieval.candidates
        return self._batch_size_mem(strategy)

    def _begin_step(self, current: Minibatch, memory: Minibatch | None) -> None:
        """A new training iteration: the loader yielded ``current`` (handed to the strategy) and ``memory``."""
        joint = None if memory is None else self._loader.joint
        self._step = _Step(current, memory, joint, self._loader.memory_extras)

    def before_forward(self, strategy: SupervisedTemplate, **kwargs) -> None:
        """Run the model once on current + memory samples (as Avalanche's ReplayPlugin does);
        with MIR the memory samples are chosen, and forwarded, after the current loss."""
        step = self._step
        if step.memory is None or isinstance(self.retrieval, MIRRetrieval):
            return
        current = strategy.mbatch
        if (
            step.joint is not None
            and len(current) == len(step.current)
            and all(map(operator.is_, current, step.current))
        ):
            strategy.mbatch = [step.joint[0], step.joint[1], step.joint[-1]]  # the loader's views: forward it whole
        else:  # moved to another device, replaced or collated apart: concatenate
            memory = [v.to(strategy.device, non_blocking=True) for v in step.memory]
            pairs = zip((current[0], current[1], current[-1]), (memory[0], memory[1], memory[-1]), strict=True)
            strategy.mbatch = [torch.cat(pair) for pair in pairs]
        step.forwarded = current

    def after_forward(self, strategy: SupervisedTemplate, **kwargs) -> None:
        """Split the joint output: the strategy keeps the current part, the memory part is ours."""
        step = self._step
        if step.forwarded is not None:
            n = len(step.forwarded[0])
            step.memory_out = strategy.mb_output[n:], strategy.mb_y[n:]
            strategy.mbatch, strategy.mb_output = step.forwarded, strategy.mb_output[:n]
            step.forwarded = None

    def before_backward(self, strategy: SupervisedTemplate, **kwargs) -> None:
        step = self._step
        step.criterion, step.current_out = strategy._criterion, (strategy.mb_output.detach(), strategy.mb_y)
        self._add_memory_terms(strategy, step)

    def _add_memory_terms(self, strategy: SupervisedTemplate, step: _Step) -> None:
        """Add ``alpha_t * criterion(memory)`` to the strategy's loss (with MIR, after choosing the samples)."""
        if step.memory is not None and isinstance(self.retrieval, MIRRetrieval):
            step.memory_out = self._mir_forward(strategy, step)
        if step.memory_out is not None:
            mem_loss = strategy._criterion(*step.memory_out)
            strategy.loss = strategy.loss + self.alpha * mem_loss
            step.memory_loss, step.memory_out = mem_loss.detach(), None

    def _mir_forward(self, strategy: SupervisedTemplate, step: _Step) -> tuple[torch.Tensor, torch.Tensor]:
        """Choose the replayed samples among the candidates (MIR) and run the model on them."""
        candidates = [v.to(strategy.device, non_blocking=True) for v in step.memory]
        chosen = self.retrieval.select(strategy, candidates, self._batch_size_mem(strategy))
        step.memory = [v[chosen] for v in candidates]
        return avalanche_forward(strategy.model, step.memory[0], step.memory[-1]), step.memory[1]

    @property
    def memory_minibatch(self) -> Minibatch | None:
        """The memory minibatch ``[x, y, t]`` of the current iteration (with ``MIRRetrieval``: its
        candidates until ``before_backward``, then the chosen samples); None while the memory is
        empty and outside training iterations."""
        return None if self._step is None else self._step.memory

    @property
    def loss_current(self) -> float | None:
        """The criterion on the last current minibatch (computed when read)."""
        if self._step is None or self._step.current_out is None:
            return None
        with torch.no_grad():
            return float(self._step.criterion(*self._step.current_out))

    @property
    def loss_memory(self) -> float | None:
        """The criterion on the last memory minibatch; None without a memory term."""
        return None if self._step is None or self._step.memory_loss is None else float(self._step.memory_loss)

    def after_training_iteration(self, strategy: SupervisedTemplate, **kwargs) -> None:
        if self.update_every == "iteration" and strategy.clock.train_exp_epochs == 0:
            indices = self._loader.fresh_indices
            extras = self._extras_offered(len(indices))
            if DistributedHelper.is_distributed:  # every process offers every process's samples, in rank order
                indices, extras = _gathered(indices, extras)
            self.storage_policy.update_from_dataset(
                strategy.adapted_dataset, indices, experience=self._experience, extras=extras
            )
        self._step.memory = self._step.joint = self._step.extras = None  # the losses stay readable

    def _extras_offered(self, n: int) -> dict[str, torch.Tensor] | None:
        """Per-sample tensors offered to the buffer with the first ``n`` current samples (none here)."""
        return None

    def after_training_exp(self, strategy: SupervisedTemplate, **kwargs) -> None:
        if self.update_every == "experience":
            self.storage_policy.post_adapt(strategy, strategy.experience)
        self._trained.add(_experience_id(strategy, self._experience))
        self._loader = self._dataloader = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (a checkpoint, a copy) only between experiences: resuming in the middle of one
        would train it again from its start and offer its first minibatches twice."""
        refuse_mid_experience(self, self._loader is not None)
        return self.__dict__.copy()

    def __repr__(self) -> str:
        args = {
            "mem_size": self.mem_size,
            "alpha": self.schedule,
            "batch_size_mem": self.batch_size_mem,
            "update_every": self.update_every,
            "retrieval": self.retrieval,
            **self._repr_extra(),
            "storage_policy": self.storage_policy,
        }
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in args.items())})"

    def _repr_extra(self) -> dict[str, Any]:
        """Arguments of a subclass shown by ``repr`` (none here)."""
        return {}


def _experience_id(strategy: SupervisedTemplate, index: int | None) -> object:
    """Which experience is being trained (``index``: its :func:`experience_index`): the origin
    experience's index for online streams."""
    return ("counter", strategy.clock.train_exp_counter) if index is None else index


def _gathered(indices: torch.Tensor, extras: dict | None) -> tuple[torch.Tensor, dict | None]:
    """Every process's offered indices (and extras), in rank order."""
    parts = DistributedHelper.gather_all_objects((indices, extras))
    indices = torch.cat([i for i, _ in parts])
    if extras is None:
        return indices, None
    return indices, {name: torch.cat([e[name] for _, e in parts]) for name in extras}


@dataclass
class _Step:
    """One training iteration's state, from the loader's yield to the next iteration."""

    current: Minibatch  # the current minibatch as the loader handed it to the strategy
    memory: Minibatch | None  # the memory minibatch (with MIR: the candidates, then the chosen samples)
    joint: Minibatch | None  # the loader's collated current + memory minibatch, if any
    extras: dict[str, torch.Tensor] | None  # what the buffer stores with the memory samples (loader.memory_extras)
    started: bool = False  # the strategy began training on this step (before_training_iteration)
    forwarded: Minibatch | None = None  # the strategy's current minibatch while the joint one runs
    memory_out: tuple[torch.Tensor, torch.Tensor] | None = None  # model output and targets, memory part
    current_out: tuple[torch.Tensor, torch.Tensor] | None = None  # the same, current part (detached)
    criterion: Any = None
    memory_loss: torch.Tensor | None = None
    ce_loss: torch.Tensor | None = None  # DER++'s label term on its own memory minibatch


class _CurrentMinibatches:
    """The strategy's dataloader: yields current minibatches, hands each memory minibatch to the plugin."""

    def __init__(self, plugin: AlphaReplayPlugin) -> None:
        self.plugin = plugin

    def __len__(self) -> int:
        return len(self.plugin._loader)

    def __iter__(self) -> Iterator[Minibatch]:
        for current, memory in self.plugin._loader:
            self.plugin._begin_step(current, memory)
            yield current
