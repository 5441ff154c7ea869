"""Dark Experience Replay (DER, DER++): replay the logits the model gave each sample when it entered."""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from avalanche.training.storage_policy import ExemplarsBuffer

from .._checks import check_bool
from ..buffers import SlotBuffer
from ..buffers._base import experience_index
from ..retrieval import MIRRetrieval, RetrievalPolicy
from ..schedules import AlphaSchedule, ConstantAlpha, alpha_at, as_schedule
from .alpha_replay import AlphaReplayPlugin, _experience_id, _Step

if TYPE_CHECKING:
    from avalanche.training.templates import SupervisedTemplate


class DERPlugin(AlphaReplayPlugin, supports_distributed=True):
    """Dark Experience Replay (Buzzega et al., "Dark Experience for General Continual Learning: a
    Strong, Simple Baseline", NeurIPS 2020): ``loss = curr_loss + alpha_t * MSE(f(x_m), z_m) +
    beta_t * CE(f(x_m'), y_m')``, where ``z_m`` are the logits the model gave ``x_m`` in the
    training step that offered it to the buffer. ``beta=0`` is DER, ``beta > 0`` DER++.

    Each current minibatch is offered to the reservoir after its optimizer step (first epoch
    only, so each sample once), with its logits from that step's forward pass (detached, before
    the optimizer step): ``storage_policy`` must be one of this package's buffers, which keep them
    per sample (``stored_extras("logits")``, on CPU). The two memory minibatches are the halves
    of one draw of ``2 * batch_size_mem`` memory samples (``share_minibatch=False``): two
    disjoint minibatches, forwarded with the current one in one pass of the model. With
    ``share_minibatch=True``, or with ``beta`` constant 0, one minibatch of ``batch_size_mem``
    serves both terms. Logits stored before a classifier grew (e.g. Avalanche's
    ``IncrementalClassifier``) are shorter than the model's output: they are NaN-padded in the
    buffer, and the MSE compares only the units stored. Units a masking classifier masked when
    the logits were recorded (Avalanche's ``IncrementalClassifier`` and ``MultiHeadClassifier``
    with ``masking=True``, or any module of the model with ``masking`` True and a number
    ``mask_value``: units whose output is exactly that value) are no logits either: they are
    stored as NaN, so the MSE leaves them out too (a class's unit, masked until the class
    arrives, is not pulled back to the mask value afterwards).

    After each iteration ``alpha``, ``beta``, ``loss_current``, ``loss_mse`` (the MSE term, also
    ``loss_memory``) and ``loss_ce`` (the CE term; None without it) hold that iteration's values;
    ``der_metrics()`` logs them. Retrieval policies other than MIR work (each draw is the
    policy's); the rest is :class:`AlphaReplayPlugin`'s (task labels, checkpoints, seeds,
    ``torch.distributed``).

    :param mem_size: buffer slots (used when ``storage_policy`` is None).
    :param alpha: weight of the logit term: a float, ``ConstantAlpha``, ``LinearAlpha`` or a
        picklable callable ``t -> float`` (finite, >= 0), as in ``AlphaReplayPlugin``.
    :param beta: weight of the label term, the same kinds of values; 0 for DER.
    :param batch_size_mem: size of each memory minibatch; ``None``: the strategy's ``train_mb_size``.
    :param storage_policy: one of this package's buffers with ``max_size == mem_size`` (empty, or
        holding logits in the model's dtype); default ``ReservoirSamplingBuffer(mem_size, seed)``
        (the paper's reservoir). Avalanche's buffers cannot keep logits: ``ValueError``.
    :param seed: seed of the plugin's generator.
    :param retrieval: ``None`` (``RandomRetrieval()``) or ``BalancedRetrieval(groupby)``.
    :param share_minibatch: one memory minibatch for both terms instead of two.
    """

    def __init__(
        self,
        mem_size: int = 200,
        alpha: float | AlphaSchedule = 0.1,
        beta: float | AlphaSchedule = 0.5,
        batch_size_mem: int | None = None,
        storage_policy: ExemplarsBuffer | None = None,
        seed: int | None = None,
        retrieval: RetrievalPolicy | None = None,
        share_minibatch: bool = False,
    ) -> None:
        if isinstance(retrieval, MIRRetrieval):
            raise ValueError(f"DERPlugin takes RandomRetrieval or BalancedRetrieval, not {retrieval!r}")
        _check_logit_buffer(storage_policy)
        self.beta_schedule = as_schedule(beta, "beta")
        super().__init__(mem_size, alpha, batch_size_mem, storage_policy, "iteration", seed, retrieval)
        self.share_minibatch = check_bool("share_minibatch", share_minibatch)
        self.beta: float | None = None
        self._mask_values: tuple[float, ...] = ()  # what the model's masking classifiers write on masked units

    def before_training(self, strategy: SupervisedTemplate, **kwargs) -> None:
        """Stop before any change if the buffer holds samples without their logits, or logits of
        another dtype than the model's parameters (they would be refused only after the first
        optimizer step).

        :param strategy: the strategy about to train.
        :param kwargs: the ``strategy.train(...)`` arguments.
        """
        held = self.storage_policy.extra_names
        if len(self.storage_policy) and held != ("logits",):
            raise ValueError(
                "DERPlugin needs a storage_policy whose samples carry their logits (extras ('logits',)); "
                f"it holds {len(self.storage_policy)} samples with extras {held}"
            )
        if held == ("logits",):
            _check_logits_dtype(self.storage_policy.stored_extras("logits", [0]).dtype, strategy.model)
        super().before_training(strategy, **kwargs)

    def _repr_extra(self) -> dict[str, Any]:
        return {"beta": self.beta_schedule, "share_minibatch": self.share_minibatch}

    def _two_minibatches(self) -> bool:
        zero = isinstance(self.beta_schedule, ConstantAlpha) and self.beta_schedule.alpha == 0
        return not (self.share_minibatch or zero)

    def _draw_size(self, strategy: SupervisedTemplate) -> int:
        return self._batch_size_mem(strategy) * (2 if self._two_minibatches() else 1)

    def before_training_exp(self, strategy: SupervisedTemplate, **kwargs) -> None:
        """Evaluate ``beta_t`` first (a schedule that fails raises before the generator, the buffer
        or ``strategy.dataloader`` change), then set up the experience as ``AlphaReplayPlugin`` does.

        :param strategy: the strategy being trained.
        :param kwargs: the ``strategy.train(...)`` arguments, for the loader.
        """
        t = len(self._trained - {_experience_id(strategy, experience_index(strategy.experience))})
        beta = alpha_at(self.beta_schedule, t, "beta")
        self._mask_values = mask_values(strategy.model)
        super().before_training_exp(strategy, **kwargs)
        self.beta = beta

    def _add_memory_terms(self, strategy: SupervisedTemplate, step: _Step) -> None:
        """Add ``alpha_t * MSE`` to the stored logits and, for DER++, ``beta_t * CE`` to the labels."""
        if step.memory_out is None:
            return
        out, y = step.memory_out
        logits = step.extras["logits"].to(out.device, non_blocking=True)
        k = -(-len(y) // 2) if self._two_minibatches() else len(y)  # the MSE minibatch; the CE one follows
        mse = stored_units_mse(out[:k], logits[:k])
        strategy.loss = strategy.loss + self.alpha * mse
        step.memory_loss, step.memory_out = mse.detach(), None
        ce_out, ce_y = (out[k:], y[k:]) if self._two_minibatches() else (out, y)
        if self.beta and len(ce_y):
            ce = strategy._criterion(ce_out, ce_y)
            strategy.loss = strategy.loss + self.beta * ce
            step.ce_loss = ce.detach()

    def _extras_offered(self, n: int) -> dict[str, torch.Tensor]:
        """The logits of this step's training forward pass, one row per current sample offered."""
        logits = self._step.current_out[0]
        if len(logits) != len(self._loader.current_indices):
            raise RuntimeError(
                f"DERPlugin stores each sample's logits from its training step, but the model ran on "
                f"{len(logits)} current samples where the loader gave {len(self._loader.current_indices)}: "
                "a plugin before it changed the minibatch's size"
            )
        return {"logits": masked_as_nan(logits[:n], self._mask_values).to("cpu")}

    @property
    def memory_logits(self) -> torch.Tensor | None:
        """The logits stored with the samples of :attr:`memory_minibatch`, row for row (the MSE
        term uses the first ``ceil(len / 2)`` rows with two minibatches, all with one); NaN beyond
        the units each sample's logits had. None outside iterations with a memory minibatch."""
        if self._step is None or self._step.memory is None:
            return None
        return self._step.extras["logits"]

    @property
    def loss_mse(self) -> float | None:
        """The MSE term on the last logit minibatch (``loss_memory``); None without a memory term."""
        return self.loss_memory

    @property
    def loss_ce(self) -> float | None:
        """The CE term on the last label minibatch (DER++); None without one."""
        return None if self._step is None or self._step.ce_loss is None else float(self._step.ce_loss)


def stored_units_mse(output: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Mean squared error between ``output`` and stored ``logits`` over the units stored (not NaN):
    logits saved by a smaller classifier are compared on their own units."""
    width = logits.shape[1]
    if output.shape[1] < width:
        raise ValueError(f"the model outputs {output.shape[1]} units, fewer than the {width} logits stored")
    kept = ~torch.isnan(logits)
    return F.mse_loss(output[:, :width][kept], logits[kept])


def mask_values(model: torch.nn.Module) -> tuple[float, ...]:
    """The values the masking classifiers among ``model``'s modules write on the units they mask:
    Avalanche's ``IncrementalClassifier`` and ``MultiHeadClassifier`` with ``masking=True``, or
    any module whose ``masking`` is True and whose ``mask_value`` is a number.

    :param model: the model whose output DER stores.
    :return: the distinct mask values, sorted (empty: nothing masks).
    """
    found = set()
    for module in model.modules():
        value = getattr(module, "mask_value", None)
        number = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if number and getattr(module, "masking", False) is True:
            found.add(float(value))
    return tuple(sorted(found))


def masked_as_nan(logits: torch.Tensor, values: tuple[float, ...]) -> torch.Tensor:
    """``logits`` with NaN on the units that hold one of the mask ``values`` (the units a masking
    classifier masked, which are no logits); ``logits`` itself when ``values`` is empty.

    :param logits: model outputs ``[samples, units]`` (not changed).
    :param values: the mask values (:func:`mask_values`).
    """
    if not values:
        return logits
    masked = logits == values[0]
    for value in values[1:]:
        masked |= logits == value
    return logits.masked_fill(masked, math.nan)


def _check_logit_buffer(storage_policy: ExemplarsBuffer | None) -> None:
    """Raise unless ``storage_policy`` is None (the default reservoir) or can keep logits per sample.

    :param storage_policy: the ``storage_policy`` given to :class:`DERPlugin`.
    """
    if isinstance(storage_policy, ExemplarsBuffer) and not isinstance(storage_policy, SlotBuffer):
        raise ValueError(
            "DERPlugin stores each sample's logits next to it in the buffer, which only this package's "
            "buffers can do (avalanche_replay_ext.ReservoirSamplingBuffer, ClassBalancedReservoirBuffer, "
            f"GreedyClassBalancedBuffer); storage_policy is {type(storage_policy).__module__}."
            f"{type(storage_policy).__name__}. Pass storage_policy=ReservoirSamplingBuffer(mem_size, seed) "
            "from avalanche_replay_ext, or leave storage_policy=None for that default"
        )


def _check_logits_dtype(held: torch.dtype, model: torch.nn.Module) -> None:
    """Raise if the buffer's logits (dtype ``held``) cannot take the model's: its floating point
    parameters all have one dtype, and it is not ``held``.

    :param held: the dtype of the logits the buffer holds.
    :param model: the model whose logits DER will store.
    """
    dtypes = {p.dtype for p in model.parameters() if p.is_floating_point()}
    if len(dtypes) == 1 and held not in dtypes:
        raise ValueError(
            f"the storage_policy holds logits as {held}, but the model computes in {dtypes.pop()}: DERPlugin "
            "would fail to store the first minibatch's logits after its optimizer step. Give DERPlugin an "
            "empty buffer (or one filled by a model of the same dtype), or convert the model"
        )
