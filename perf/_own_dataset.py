"""A user's own dataset for `checkpoint_sizes.py`: the same MNIST images, loaded by user code, as
plain tensors and as the two dataset classes that keep checkpoints free of the images.

The classes live in an importable module, as a user's should: dill pickles a class defined in the
script being run (``__main__``) by value, and Avalanche's ``constructor_based_serialization`` of such
a class fails to load in a new process (a ``TypeError`` from the rebuilt class's constructor, with
dill 0.4.1). A class that pickles as its recipe via ``__reduce__`` loads from ``__main__`` too.
"""

from __future__ import annotations

import weakref
from typing import Any

import dill
import torch
from avalanche.checkpointing import constructor_based_serialization
from torch.utils.data import Dataset

from avalanche_replay_ext.benchmarks import load_mnist_idx


def own_tensors(root: str, part: str) -> tuple[torch.Tensor, torch.Tensor]:
    """What a user's code loads: the first 8000 MNIST test images for ``"train"``, the next 2000
    for ``"test"``."""
    x, y = load_mnist_idx(root)
    rows = slice(0, 8000) if part == "train" else slice(8000, 10000)
    return x[rows].clone(), y[rows].clone()  # not views: a pickled view holds its whole storage


class OwnPart(Dataset):
    """A user's dataset class: one part of the images, with the ``targets`` ``nc_benchmark`` reads.

    :param root: the folder it loads from.
    :param part: ``"train"`` or ``"test"``.
    """

    def __init__(self, root: str, part: str) -> None:
        self.root, self.part = root, part
        self.images, self.targets = own_tensors(root, part)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.targets[index])


class RecipePart(OwnPart):
    """Remedy 1: pickles as its recipe, and :func:`recipe_part` makes it one object per recipe."""

    def __reduce__(self) -> tuple:
        return recipe_part, (self.root, self.part)


_LIVE: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def recipe_part(root: str, part: str) -> RecipePart:
    """The live :class:`RecipePart` of ``(root, part)`` in this process, loaded on a miss.

    :param root: the folder it loads from.
    :param part: ``"train"`` or ``"test"``.
    """
    data = _LIVE.get((root, part))
    if data is None:
        data = _LIVE[root, part] = RecipePart(root, part)
    return data


class RegisteredPart(OwnPart):
    """Remedy 2: Avalanche's constructor-based serialization, eligible for ``unique_objects``."""


@dill.register(RegisteredPart)
def _save_registered_part(pickler: Any, obj: RegisteredPart) -> None:
    kwargs = {"root": obj.root, "part": obj.part}
    constructor_based_serialization(pickler, obj, RegisteredPart, deduplicate=True, kwargs=kwargs)
