"""Ready-made strategies with this package's plugins built in, like Avalanche's ``Replay``."""

from __future__ import annotations

from typing import Any

from avalanche.training.plugins import SupervisedPlugin
from avalanche.training.plugins.evaluation import default_evaluator
from avalanche.training.templates import SupervisedTemplate

from .plugins.alpha_replay import AlphaReplayPlugin
from .plugins.der import DERPlugin
from .plugins.gdumb import GDumbPlugin
from .schedules import AlphaSchedule


class AlphaReplay(SupervisedTemplate):
    """``SupervisedTemplate`` with an :class:`AlphaReplayPlugin` (``loss = curr + alpha_t * mem``).

    :param mem_size: buffer slots.
    :param alpha: float, ``ConstantAlpha``, ``LinearAlpha`` or callable ``t -> float``.
    :param batch_size_mem: memory minibatch size (default: ``train_mb_size``).
    :param update_every: ``"experience"`` or ``"iteration"`` (see the plugin).
    :param seed: seed of the plugin's generator.
    Other arguments are ``SupervisedTemplate``'s. The replay plugin runs after the ``plugins``
    given: ``curr_loss`` is the loss they leave (criterion plus, say, LwF's or EWC's terms), and
    only the memory term is added to it.
    """

    def __init__(
        self,
        *,
        model: Any,
        optimizer: Any,
        criterion: Any,
        mem_size: int = 200,
        alpha: float | AlphaSchedule = 1.0,
        batch_size_mem: int | None = None,
        update_every: str = "experience",
        seed: int | None = None,
        train_mb_size: int = 1,
        train_epochs: int = 1,
        eval_mb_size: int | None = None,
        device: Any = "cpu",
        plugins: list[SupervisedPlugin] | None = None,
        evaluator: Any = default_evaluator,
        eval_every: int = -1,
        **base_kwargs: Any,
    ) -> None:
        self.replay_plugin = AlphaReplayPlugin(
            mem_size, alpha, batch_size_mem=batch_size_mem, update_every=update_every, seed=seed
        )
        super().__init__(
            model=model,
            optimizer=optimizer,
            criterion=criterion,
            train_mb_size=train_mb_size,
            train_epochs=train_epochs,
            eval_mb_size=eval_mb_size,
            device=device,
            plugins=[*(plugins or []), self.replay_plugin],  # last: alpha weights the memory term only
            evaluator=evaluator,
            eval_every=eval_every,
            **base_kwargs,
        )


class DER(SupervisedTemplate):
    """``SupervisedTemplate`` with a :class:`DERPlugin`: Dark Experience Replay (``beta=0``) or
    DER++ (``beta > 0``), logits stored when each sample enters the reservoir (Buzzega et al.,
    NeurIPS 2020). Avalanche's own ``DER`` computes them after each experience instead.

    :param mem_size: buffer slots.
    :param alpha: weight of the logit (MSE) term: float, ``ConstantAlpha``, ``LinearAlpha`` or
        callable ``t -> float``.
    :param beta: weight of the label (CE) term, the same kinds of values; 0 for DER.
    :param batch_size_mem: size of each memory minibatch (default: ``train_mb_size``).
    :param seed: seed of the plugin's generator.
    :param der_kwargs: more :class:`DERPlugin` arguments (``storage_policy``, ``retrieval``,
        ``share_minibatch``).
    Other arguments are ``SupervisedTemplate``'s. The plugin runs after the ``plugins`` given,
    as in :class:`AlphaReplay`.
    """

    def __init__(
        self,
        *,
        model: Any,
        optimizer: Any,
        criterion: Any,
        mem_size: int = 200,
        alpha: float | AlphaSchedule = 0.1,
        beta: float | AlphaSchedule = 0.5,
        batch_size_mem: int | None = None,
        seed: int | None = None,
        der_kwargs: dict[str, Any] | None = None,
        train_mb_size: int = 1,
        train_epochs: int = 1,
        eval_mb_size: int | None = None,
        device: Any = "cpu",
        plugins: list[SupervisedPlugin] | None = None,
        evaluator: Any = default_evaluator,
        eval_every: int = -1,
        **base_kwargs: Any,
    ) -> None:
        self.der_plugin = DERPlugin(mem_size, alpha, beta, batch_size_mem, seed=seed, **(der_kwargs or {}))
        super().__init__(
            model=model,
            optimizer=optimizer,
            criterion=criterion,
            train_mb_size=train_mb_size,
            train_epochs=train_epochs,
            eval_mb_size=eval_mb_size,
            device=device,
            plugins=[*(plugins or []), self.der_plugin],
            evaluator=evaluator,
            eval_every=eval_every,
            **base_kwargs,
        )


class GDumb(SupervisedTemplate):
    """``SupervisedTemplate`` with a :class:`GDumbPlugin`: greedy class-balanced memory, model
    and optimizer reset at every experience, training on the memory only with the paper's
    recipe (warm-up, cosine warm restarts, CutMix, gradient clipping, masking of unseen classes).

    :param mem_size: memory slots (per task).
    :param gdumb_kwargs: recipe switches passed to :class:`GDumbPlugin` (``warmup``, ``cosine``,
        ``min_lr``, ``cutmix_prob``, ``clip_grad_norm``, ``mask_unseen``, ``seed``, ...).
    Other arguments are ``SupervisedTemplate``'s; the paper trains 128 or 256 passes with batch 16
    and SGD(lr=0.05, momentum=0.9, weight_decay=1e-6). The GDumb plugin runs before the
    ``plugins`` given: they see the reset model and optimizer, the memory as training data and the
    CutMix minibatch, as the recipe's own steps would.
    """

    def __init__(
        self,
        *,
        model: Any,
        optimizer: Any,
        criterion: Any,
        mem_size: int = 200,
        train_mb_size: int = 16,
        train_epochs: int = 128,
        eval_mb_size: int | None = None,
        device: Any = "cpu",
        plugins: list[SupervisedPlugin] | None = None,
        evaluator: Any = default_evaluator,
        eval_every: int = -1,
        gdumb_kwargs: dict[str, Any] | None = None,
        **base_kwargs: Any,
    ) -> None:
        self.gdumb_plugin = GDumbPlugin(mem_size, **(gdumb_kwargs or {}))
        super().__init__(
            model=model,
            optimizer=optimizer,
            criterion=criterion,
            train_mb_size=train_mb_size,
            train_epochs=train_epochs,
            eval_mb_size=eval_mb_size,
            device=device,
            plugins=[self.gdumb_plugin, *(plugins or [])],  # first: the others see the reset model and memory
            evaluator=evaluator,
            eval_every=eval_every,
            **base_kwargs,
        )
