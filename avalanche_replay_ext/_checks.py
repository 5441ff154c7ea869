"""Argument checks shared by the package: clear errors that name the argument and what is allowed."""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch


def check_size(name: str, value: object) -> int:
    """Return ``value`` if it is a positive int, else raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be a positive int (>= 1), got {value!r} of type {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int (>= 1), got {value}")
    return int(value)


SEED_RANGE = (0, 2**64)  # what torch.Generator.manual_seed keeps without wrapping


def check_seed(seed: object, name: str = "seed", optional: bool = True) -> int | None:
    """Return ``seed`` if it is an int in ``[0, 2**64)`` (or None, if ``optional``), else raise."""
    if seed is None and optional:
        return None
    allowed = ("None or " if optional else "") + "an int in [0, 2**64)"
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be {allowed}, got {seed!r} of type {type(seed).__name__}")
    if not SEED_RANGE[0] <= seed < SEED_RANGE[1]:
        raise ValueError(f"{name} must be {allowed}, got {seed}")
    return int(seed)


def check_range(name: str, value: object, low: float, high: float, open_low: bool = False) -> float:
    """Return ``value`` if it is a finite real number in ``[low, high]`` (``(low, high]`` if
    ``open_low``), else raise naming ``name``."""
    if not _finite_real(value) or value < low or value > high or (open_low and value == low):
        upper = "" if high == math.inf else f" and <= {high:g}"
        raise ValueError(f"{name} must be a finite number {'>' if open_low else '>='} {low:g}{upper}, got {value!r}")
    return float(value)


def check_alpha(name: str, value: object) -> float:
    """Return a memory-loss weight as a float if it is finite and >= 0, else raise naming ``name``."""
    return check_range(name, value, 0.0, math.inf)


def _finite_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def check_bool(name: str, value: object) -> bool:
    """Return ``value`` if it is a bool (``True``/``False``, NumPy's too), else raise naming ``name``."""
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be True or False, got {value!r} of type {type(value).__name__}")
    return bool(value)


def make_generator(seed: int | None) -> torch.Generator:
    """A CPU generator owned by one object, seeded with ``seed``.

    With ``seed=None`` its seed is drawn from the global torch RNG, so ``torch.manual_seed`` still
    makes a whole run reproducible.
    """
    return torch.Generator().manual_seed(draw_seed() if seed is None else seed)


def draw_seed(generator: torch.Generator | None = None) -> int:
    """A fresh seed for another generator, drawn from ``generator`` (default: torch's global RNG)."""
    return int(torch.randint(0, 2**62, (1,), generator=generator))


def as_labels(name: str, values: object, length: int | None = None, *, nonnegative: bool = True) -> torch.Tensor:
    """Convert class or task labels (or indices) to a 1-D int64 CPU tensor, rejecting
    non-integer and negative values."""
    if isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype.kind in "iu":  # fast path (a copy)
        values = torch.from_numpy(values.astype(np.int64))
    elif not isinstance(values, torch.Tensor):
        try:
            values = list(values)
        except TypeError:
            raise TypeError(f"{name} must be a sequence of integer labels, got {values!r}") from None
        if not values:
            return torch.zeros(0, dtype=torch.long)
    try:
        tensor = torch.as_tensor(values)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"{name} must be a sequence of integer labels: {err}") from None
    if tensor.dtype == torch.bool or tensor.is_floating_point() or tensor.is_complex():
        raise TypeError(f"{name} must hold integer labels, got dtype {tensor.dtype}")
    tensor = tensor.reshape(-1) if tensor.dim() == 0 else tensor
    if tensor.dim() != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {tuple(tensor.shape)}")
    if length is not None and len(tensor) != length:
        raise ValueError(f"{name} has {len(tensor)} entries, expected {length}")
    tensor = tensor.detach().to("cpu", torch.long)
    if nonnegative:
        check_nonnegative(name, tensor.numpy())
    return tensor


def check_nonnegative(name: str, labels: np.ndarray) -> None:
    """Raise naming ``name`` if an integer label array holds a negative value."""
    if len(labels) and labels.min() < 0:
        raise ValueError(f"{name} must hold labels >= 0, got {int(labels.min())}")
