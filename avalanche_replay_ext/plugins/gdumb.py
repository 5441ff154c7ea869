"""GDumb: greedy class-balanced memory, retrain from scratch on it, the paper's recipe."""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any

import torch
from avalanche.benchmarks.utils.utils import concat_datasets
from avalanche.training.plugins import SupervisedPlugin
from avalanche.training.storage_policy import ExemplarsBuffer

from .._checks import as_labels, check_bool, check_range, check_seed, check_size, draw_seed, make_generator
from ..buffers import GreedyClassBalancedBuffer
from ..buffers._base import experience_index
from ._gdumb_recipe import WarmupCosine, cutmix, mask_unseen
from ._guards import check_mem_size, check_same_on_every_process, check_sole_replay, refuse_mid_experience

if TYPE_CHECKING:
    from avalanche.training.templates import SupervisedTemplate


class GDumbPlugin(SupervisedPlugin, supports_distributed=True):
    drives_replay = True  # sets the training data: no other replay plugin beside it
    """GDumb (Prabhu, Torr & Dokania, "GDumb: A Simple Approach that Questions Our Progress in
    Continual Learning", ECCV 2020) for any ``SupervisedTemplate`` strategy.

    At each experience: its samples go through the greedy class-balanced sampler
    (:class:`~avalanche_replay_ext.buffers.GreedyClassBalancedBuffer`); the model is reset to its
    initial weights and the optimizer to a fresh state (no momentum, initial learning rate); the
    strategy trains on the memory only, for ``train_epochs`` passes, with the paper's recipe:

    - ``warmup``: the first pass at ``warmup_factor`` x the optimizer's learning rate;
    - ``cosine``: then ``CosineAnnealingWarmRestarts(T_0, T_mult=2, eta_min=min_lr)``, stepped
      every iteration and stretched so that the last pass ends at the low end of a cycle, never
      at a restart (exactly the paper's schedule for 128 passes: 1 + 1 + 2 + ... + 64);
    - ``cutmix_prob`` / ``cutmix_alpha``: CutMix on image minibatches, loss
      ``lam * CE(y) + (1 - lam) * CE(y_shuffled)`` (Yun et al., ICCV 2019);
    - ``clip_grad_norm``: gradient L2-norm clipping;
    - ``mask_unseen``: at evaluation, logits of classes not seen in training so far are set
      1e4 below the batch's smallest logit, so only seen classes can be predicted (finite, so
      stock loss metrics stay finite).

    In multi-task streams each task label gets its own memory of ``mem_size`` slots (as
    Avalanche's GDumb documents); the strategy trains on all of them together.

    :param mem_size: memory slots (per task).
    :param storage_policy: a buffer to use instead of the greedy sampler (copied per task), e.g.
        Avalanche's ``ParametricBuffer(mem_size, groupby="class")``; its ``max_size`` must be
        ``mem_size``.
    :param seed: seed of the plugin's generators (samplers, CutMix); ``None`` draws it from the
        global torch RNG.
    """

    def __init__(
        self,
        mem_size: int = 200,
        *,
        storage_policy: ExemplarsBuffer | None = None,
        warmup: bool = True,
        warmup_factor: float = 0.1,
        cosine: bool = True,
        T_0: int = 1,  # noqa: N803 - PyTorch's name
        min_lr: float = 0.0005,
        cutmix_prob: float = 0.5,
        cutmix_alpha: float = 1.0,
        clip_grad_norm: float | None = 10.0,
        mask_unseen: bool = True,
        seed: int | None = None,
    ) -> None:
        super().__init__()
        self.mem_size = check_size("mem_size", mem_size)
        if storage_policy is not None and not isinstance(storage_policy, ExemplarsBuffer):
            raise TypeError(f"storage_policy must be an avalanche ExemplarsBuffer, got {type(storage_policy).__name__}")
        if storage_policy is not None and storage_policy.max_size != self.mem_size:
            raise ValueError(f"storage_policy.max_size ({storage_policy.max_size}) differs from mem_size ({mem_size})")
        self.template_policy = storage_policy
        self.warmup, self.cosine = check_bool("warmup", warmup), check_bool("cosine", cosine)
        self.mask_unseen = check_bool("mask_unseen", mask_unseen)
        self.T_0 = check_size("T_0", T_0)
        check_range("warmup_factor", warmup_factor, 0.0, 1.0)
        check_range("min_lr", min_lr, 0.0, math.inf)
        check_range("cutmix_prob", cutmix_prob, 0.0, 1.0)
        check_range("cutmix_alpha", cutmix_alpha, 0.0, math.inf, open_low=True)
        if clip_grad_norm is not None:
            check_range("clip_grad_norm", clip_grad_norm, 0.0, math.inf, open_low=True)
        self.warmup_factor, self.min_lr = warmup_factor, min_lr
        self.cutmix_prob, self.cutmix_alpha, self.clip_grad_norm = cutmix_prob, cutmix_alpha, clip_grad_norm
        self.generator = make_generator(check_seed(seed))
        self.storage_policies: dict[int, ExemplarsBuffer] = {}
        self.seen_classes: set[int] = set()
        self.init_model: torch.nn.Module | None = None
        self.schedule = WarmupCosine(self.warmup, warmup_factor, self.cosine, self.T_0, min_lr)
        self._mix: tuple[torch.Tensor, float] | None = None  # (labels of the pasted boxes, lam)
        self._training = False  # between the memory update and the end of an experience

    @property
    def memory(self):
        """All tasks' memories as one dataset (what each experience trains on)."""
        return concat_datasets([b.buffer for b in self.storage_policies.values()])

    def _policy(self, task: int) -> ExemplarsBuffer:
        if task not in self.storage_policies:
            seed = draw_seed(self.generator)
            self.storage_policies[task] = (
                GreedyClassBalancedBuffer(self.mem_size, seed=seed)
                if self.template_policy is None
                else copy.deepcopy(self.template_policy)
            )
        return self.storage_policies[task]

    def before_training(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        """Stop before any change if another plugin feeds the strategy, if a memory no longer has
        ``mem_size`` slots (e.g. after loading another state into it), or if the processes of a
        distributed run would sample differently."""
        check_sole_replay(self, strategy)
        for buffer in [self.template_policy, *self.storage_policies.values()]:
            if buffer is not None:
                check_mem_size(self, buffer)
        check_same_on_every_process(self, self.generator, self.storage_policies)

    # ---- memory and reset ----------------------------------------------------------------
    def before_train_dataset_adaptation(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        if self.init_model is None:
            self.init_model = copy.deepcopy(strategy.model)
        else:
            strategy.model = copy.deepcopy(self.init_model)
        strategy.model_adaptation(self.init_model)

    def before_eval_dataset_adaptation(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        strategy.model_adaptation(self.init_model)

    def after_train_dataset_adaptation(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        exp = strategy.experience
        data = exp.dataset
        task_ids = as_labels("task labels", data.targets_task_labels, len(data)).unique().tolist()
        for task in task_ids:
            part = data if len(task_ids) == 1 else data.task_set[task]
            self._policy(task).post_adapt(strategy, _Experience(part, exp))
        self.seen_classes |= set(as_labels("targets", data.targets).unique().tolist())
        strategy.adapted_dataset = self.memory.train()
        self._training = True

    def before_training_exp(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        self.schedule.start(strategy.optimizer, strategy.train_epochs)

    # ---- one iteration -------------------------------------------------------------------
    def before_training_iteration(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        clock = strategy.clock
        self.schedule.step(
            strategy.optimizer, clock.train_exp_epochs + clock.train_epoch_iterations / max(1, len(strategy.dataloader))
        )

    def before_forward(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        self._mix = None
        x = strategy.mb_x
        if x.dim() >= 3 and len(x) >= 2 and float(torch.rand((), generator=self.generator)) < self.cutmix_prob:
            strategy.mbatch[0], perm, lam = cutmix(x, self.generator, self.cutmix_alpha)
            self._mix = strategy.mb_y[perm], lam

    def before_backward(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        if self._mix is not None:  # loss = lam * CE(y) + (1 - lam) * CE(y_b), other terms untouched
            y_b, lam = self._mix
            out = strategy.mb_output
            strategy.loss = strategy.loss + (1 - lam) * (
                strategy._criterion(out, y_b) - strategy._criterion(out, strategy.mb_y)
            )

    def after_backward(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        if self.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(strategy.model.parameters(), self.clip_grad_norm)

    def after_eval_forward(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        if self.mask_unseen and self.seen_classes and strategy.mb_output.dim() == 2:
            strategy.mb_output = mask_unseen(strategy.mb_output, self.seen_classes)

    def after_training_exp(self, strategy: SupervisedTemplate, **kwargs: Any) -> None:
        self._training = False

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (a checkpoint, a copy) only between experiences: resuming in the middle of one
        would offer its samples to the memory twice."""
        refuse_mid_experience(self, self._training)
        return {**self.__dict__, "_mix": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update({"_training": False, **state})  # states saved before _training existed

    def __repr__(self) -> str:
        memories = {task: len(b.buffer) for task, b in self.storage_policies.items()}
        return (
            f"{type(self).__name__}(mem_size={self.mem_size}, storage_policy={self.template_policy!r}, "
            f"seen_classes={sorted(self.seen_classes)}, samples per task={memories})"
        )


class _Experience:
    """What a buffer's ``post_adapt`` reads of an experience, restricted to one task's data."""

    def __init__(self, dataset: Any, exp: Any) -> None:
        self.dataset = dataset
        self.current_experience = experience_index(exp)
