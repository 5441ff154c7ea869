"""Schedules for the memory-loss weight ``alpha_t`` of alpha-weighted replay.

``t`` is the number of experiences trained before the current one (0 on the first experience).
Schedules are classes, not lambdas, so strategies holding them can be pickled (checkpoints).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

from ._checks import check_alpha


class ConstantAlpha:
    """``alpha_t = alpha`` for every experience.

    :param alpha: the weight of the memory loss, a finite number >= 0.
    """

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = check_alpha("alpha", alpha)

    def __call__(self, t: int) -> float:
        return self.alpha

    def __repr__(self) -> str:
        return f"ConstantAlpha({self.alpha})"


class LinearAlpha:
    """``alpha_t = alpha_base * t``: with ``alpha_base = 1`` the memory, holding ``t`` past
    experiences, gets ``t`` times the weight of the one current experience, as in joint training.

    :param alpha_base: the growth per experience, a finite number >= 0.
    """

    def __init__(self, alpha_base: float = 1.0) -> None:
        self.alpha_base = check_alpha("alpha_base", alpha_base)

    def __call__(self, t: int) -> float:
        return self.alpha_base * t

    def __repr__(self) -> str:
        return f"LinearAlpha({self.alpha_base})"


AlphaSchedule = Callable[[int], float]


def as_schedule(alpha: float | AlphaSchedule, name: str = "alpha") -> AlphaSchedule:
    """A float becomes :class:`ConstantAlpha`; a callable ``t -> float`` is used as is. ``name``:
    the argument's name in messages (``beta`` for DER++'s weight)."""
    if callable(alpha):
        return alpha
    if isinstance(alpha, numbers.Real) and not isinstance(alpha, bool):
        check_alpha(name, alpha)
        return ConstantAlpha(alpha)
    raise TypeError(f"{name} must be a float >= 0, ConstantAlpha, LinearAlpha or a callable t -> float, got {alpha!r}")


def alpha_at(schedule: AlphaSchedule, t: int, name: str = "alpha") -> float:
    """Evaluate ``schedule(t)``, rejecting negative or non-finite weights."""
    return check_alpha(f"{name} schedule {schedule!r} at t={t}", schedule(t))
