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


def stream_accuracy_key(stream: str = "test_stream", task: int = 0) -> str:
    """The name ``accuracy_metrics(stream=True)`` gives the accuracy over a whole stream."""
    return f"Top1_Acc_Stream/eval_phase/{stream}/Task{task:03d}"


def experience_accuracy_key(exp: int, stream: str = "test_stream", task: int = 0) -> str:
    """The name ``accuracy_metrics(experience=True)`` gives the accuracy on one experience."""
    return f"Top1_Acc_Exp/eval_phase/{stream}/Task{task:03d}/Exp{exp:03d}"


class AlphaReplayMetric(PluginMetric[float]):
    """Emits one :class:`AlphaReplayPlugin` value after each training iteration, named
    ``AlphaReplay/<quantity>/train_phase/train_stream`` at x = ``clock.train_iterations``.

    :param quantity: ``"alpha"``, ``"loss_current"`` or ``"loss_memory"`` (not emitted on
        iterations without a memory term).
    """

    def __init__(self, quantity: str) -> None:
        super().__init__()
        if quantity not in QUANTITIES:
            raise ValueError(f"quantity must be one of {QUANTITIES}, got {quantity!r}")
        self.quantity = quantity
        self._value: float | None = None

    def result(self) -> float | None:
        return self._value

    def reset(self) -> None:
        self._value = None

    def after_training_iteration(self, strategy: SupervisedTemplate) -> MetricResult:
        plugins = [p for p in strategy.plugins if isinstance(p, AlphaReplayPlugin)]
        self._value = getattr(plugins[0], self.quantity) if plugins else None
        if self._value is None:
            return None
        name = f"{self}/train_phase/train_stream"
        return [MetricValue(self, name, self._value, strategy.clock.train_iterations)]

    def __str__(self) -> str:
        return f"AlphaReplay/{self.quantity}"


def alpha_replay_metrics() -> list[AlphaReplayMetric]:
    """The three per-iteration metrics, for ``EvaluationPlugin(*alpha_replay_metrics(), ...)``."""
    return [AlphaReplayMetric(q) for q in QUANTITIES]
