"""Let Avalanche's checkpoints (``save_checkpoint`` pickles the strategy with dill) hold a torch optimizer.

torch >= 2.x deletes the ``torch.optim.sgd``-style submodule attributes from ``torch.optim``, so
dill cannot find ``torch.optim.sgd.SGD`` by name, pickles the class by value and fails ("Can't
pickle sentinel"), for any strategy. Registering a reducer that names the class by module and
qualified name (imported with ``importlib``, which finds it) fixes the save; the optimizer's own
``__getstate__``/``__setstate__`` carry its state as with the standard pickle.
"""

from __future__ import annotations

import importlib
from typing import Any

import dill
import torch


def _new_optimizer(module: str, qualname: str) -> torch.optim.Optimizer:
    cls = getattr(importlib.import_module(module), qualname)
    return cls.__new__(cls)


def _save_optimizer(pickler: Any, obj: torch.optim.Optimizer) -> None:
    cls = type(obj)
    pickler.save_reduce(_new_optimizer, (cls.__module__, cls.__qualname__), state=obj.__getstate__(), obj=obj)


def _subclasses(cls: type) -> set[type]:
    return {s for c in cls.__subclasses__() for s in {c, *_subclasses(c)}}


def register_optimizer_reducers() -> None:
    """Pickle torch's own optimizers by reference under dill (idempotent)."""
    for cls in _subclasses(torch.optim.Optimizer):
        if cls.__module__.startswith("torch.optim."):
            dill.register(cls)(_save_optimizer)
