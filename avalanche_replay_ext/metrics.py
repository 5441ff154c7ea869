"""Metrics that send alpha replay's per-iteration values to Avalanche's loggers, and the names
Avalanche's accuracy metrics report under."""

from __future__ import annotations

from typing import TYPE_CHECKING

from avalanche.evaluation import PluginMetric
from avalanche.evaluation.metric_results import MetricResult, MetricValue

from .plugins.alpha_replay import AlphaReplayPlugin

if TYPE_CHECKING:
    from avalanche.training.templates import SupervisedTemplate

QUANTITIES = ("alpha", "loss_current", "loss_memory")
DER_QUANTITIES = ("alpha", "beta", "loss_current", "loss_mse", "loss_ce")


def stream_accuracy_key(stream: str = "test_stream", task: int = 0) -> str:
    """The name ``accuracy_metrics(stream=True)`` gives the accuracy over a whole stream."""
    return f"Top1_Acc_Stream/eval_phase/{stream}/Task{task:03d}"


def experience_accuracy_key(exp: int, stream: str = "test_stream", task: int = 0) -> str:
    """The name ``accuracy_metrics(experience=True)`` gives the accuracy on one experience."""
    return f"Top1_Acc_Exp/eval_phase/{stream}/Task{task:03d}/Exp{exp:03d}"


class AlphaReplayMetric(PluginMetric[float]):
    """Emits one :class:`AlphaReplayPlugin` (or ``DERPlugin``) value after each training
    iteration, named ``<family>/<quantity>/train_phase/train_stream`` at x = ``clock.train_iterations``.

    :param quantity: ``"alpha"``, ``"loss_current"`` or ``"loss_memory"``; for ``family="DER"``
        one of ``DER_QUANTITIES`` (``"beta"``, ``"loss_mse"``, ``"loss_ce"`` too). A loss is not
        emitted on iterations without its term.
    :param family: ``"AlphaReplay"`` or ``"DER"``, the first part of the name.
    """

    def __init__(self, quantity: str, family: str = "AlphaReplay") -> None:
        super().__init__()
        allowed = {"AlphaReplay": QUANTITIES, "DER": DER_QUANTITIES}
        if family not in allowed:
            raise ValueError(f"family must be one of {list(allowed)}, got {family!r}")
        if quantity not in allowed[family]:
            raise ValueError(f"quantity must be one of {allowed[family]}, got {quantity!r}")
        self.quantity, self.family = quantity, family
        self._value: float | None = None

    def result(self) -> float | None:
        return self._value

    def reset(self) -> None:
        self._value = None

    def after_training_iteration(self, strategy: SupervisedTemplate) -> MetricResult:
        plugins = [p for p in strategy.plugins if isinstance(p, AlphaReplayPlugin)]
        self._value = getattr(plugins[0], self.quantity, None) if plugins else None  # ER has no DER terms
        if self._value is None:
            return None
        name = f"{self}/train_phase/train_stream"
        return [MetricValue(self, name, self._value, strategy.clock.train_iterations)]

    def __str__(self) -> str:
        return f"{self.family}/{self.quantity}"


def alpha_replay_metrics() -> list[AlphaReplayMetric]:
    """The three per-iteration metrics, for ``EvaluationPlugin(*alpha_replay_metrics(), ...)``."""
    return [AlphaReplayMetric(q) for q in QUANTITIES]


def der_metrics() -> list[AlphaReplayMetric]:
    """``DERPlugin``'s per-iteration values (alpha, beta, the current loss, the MSE and CE terms),
    for ``EvaluationPlugin(*der_metrics(), ...)``, named ``DER/<quantity>/train_phase/train_stream``."""
    return [AlphaReplayMetric(q, "DER") for q in DER_QUANTITIES]
