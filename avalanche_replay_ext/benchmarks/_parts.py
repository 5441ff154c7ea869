"""The leaf datasets of this package's benchmarks: one train or test part of a seeded split, which
pickles as its recipe and exists once per recipe in a process.

A checkpoint (Avalanche's ``save_checkpoint``) pickles the strategy, whose replay buffer references
the experiences' datasets and, through them, these leaves. A leaf pickles as its recipe (loader,
loader arguments, split) plus a digest of its data, not as its images; unpickled, it is the live
leaf of that recipe in this process (built on a miss). So a checkpoint holds no image data, and a
process that resumes from it and re-creates the benchmark holds each image set once, however many
times the run was resumed.
"""

from __future__ import annotations

import numbers
import threading
import weakref
import zlib
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import Dataset

PARTS = ("train", "test")


class Recipe(NamedTuple):
    """How to build the parts: ``loader(*args)`` gives ``(images, labels)``, split class-stratified
    by ``train_test_split(test_size=test_size, random_state=split_seed)``. Everything in it must
    pickle by value or by reference (a module-level loader) and mean the same in another process
    (paths absolute)."""

    loader: Callable[..., tuple[torch.Tensor, torch.Tensor]]
    args: tuple
    test_size: float | int
    split_seed: int | None


class SplitPart(Dataset):
    """One part (``"train"`` or ``"test"``) of a recipe's split: ``(image, int label)`` per sample,
    as Avalanche's tensor datasets give them.

    :param recipe: how the part was built; ``None`` for a part that pickles its tensors instead (a
        split that a recipe cannot rebuild, e.g. ``split_seed=None``).
    :param part: ``"train"`` or ``"test"``.
    :param images: the part's images, one row per sample.
    :param labels: the part's int64 class labels.
    """

    def __init__(self, recipe: Recipe | None, part: str, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.recipe, self.part, self.images, self.labels = recipe, part, images, labels
        self.digest = data_digest(images, labels) if recipe is not None else None

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], self.labels[index].item()

    def __reduce__(self) -> tuple:
        if self.recipe is None:
            return SplitPart, (None, self.part, self.images, self.labels)
        return split_part, (self.recipe, self.part, self.digest)

    def __repr__(self) -> str:
        return f"SplitPart({self.part!r}, {len(self)} samples)"


def data_digest(images: torch.Tensor, labels: torch.Tensor) -> str:
    """Shape and CRC-32 of a part's images and labels: what an unpickled part checks it rebuilt.

    :param images: a part's images (CPU).
    :param labels: its labels.
    """
    crc = 0
    for t in (images, labels):
        crc = zlib.crc32(t.contiguous().numpy().view(np.uint8).reshape(-1), crc)
    return f"{tuple(images.shape)}:{len(labels)}:{crc:08x}"


_LIVE: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_LOCK = threading.Lock()


def _key(recipe: Recipe, part: str) -> tuple:
    # repr tells 2000 from 2000.0 (an int test size from a float one), which compare equal
    return part, recipe.loader, recipe.args, repr(recipe.test_size), repr(recipe.split_seed)


def reproducible(split_seed: Any) -> bool:
    """Whether a split seed rebuilds the same split in another process.

    :param split_seed: ``train_test_split``'s ``random_state``: an int is; None or a
        ``RandomState`` is not.
    """
    return isinstance(split_seed, numbers.Integral) and not isinstance(split_seed, bool)


def split_parts(recipe: Recipe) -> tuple[SplitPart, SplitPart]:
    """The train and test parts of ``recipe``: the live ones when this process has them, else
    loaded and split now (and, for a reproducible split seed, kept while anything uses them).

    :param recipe: loader, its arguments, test size and split seed.
    """
    if not reproducible(recipe.split_seed):
        return _build(recipe, None)
    with _LOCK:
        live = [_LIVE.get(_key(recipe, part)) for part in PARTS]
        if None in live:  # a part still in use stays the one part of its recipe
            live = [old or new for old, new in zip(live, _build(recipe, recipe), strict=True)]
            for part in live:
                _LIVE[_key(recipe, part.part)] = part
    return live[0], live[1]


def split_part(recipe: Recipe, part: str, digest: str) -> SplitPart:
    """Unpickle a part: the live part of ``recipe`` (built on a miss), checked against ``digest``.

    :param recipe: the part's recipe.
    :param part: ``"train"`` or ``"test"``.
    :param digest: :func:`data_digest` of the pickled part's data.
    :raises FileNotFoundError: the files the recipe loads are gone (a pickle names them, it does
        not hold their data).
    :raises ValueError: the recipe now builds other data (e.g. the files it loads changed).
    """
    try:
        found = split_parts(recipe)[PARTS.index(part)]
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"cannot rebuild the pickled {part} part of {recipe}: {error} (a pickled benchmark dataset "
            "names the files it was loaded from, it does not hold the images)"
        ) from error
    if found.digest != digest:
        raise ValueError(
            f"the {part} part of {recipe} now holds other data than when it was pickled "
            f"(digest {found.digest}, pickled {digest}): did the files it loads change?"
        )
    return found


def _build(recipe: Recipe, kept: Recipe | None) -> tuple[SplitPart, SplitPart]:
    images, labels = recipe.loader(*recipe.args)
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=recipe.test_size, random_state=recipe.split_seed, stratify=labels.numpy()
    )
    parts = []
    for part, idx in zip(PARTS, (train_idx, test_idx), strict=True):
        idx = torch.as_tensor(np.sort(idx))
        parts.append(SplitPart(kept, part, images[idx], labels[idx]))
    return parts[0], parts[1]
