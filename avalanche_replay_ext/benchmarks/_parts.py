"""The leaf datasets of this package's benchmarks: one train or test part of a seeded split, which
pickles as its recipe and exists once per recipe in a process.

A checkpoint (Avalanche's ``save_checkpoint``) pickles the strategy, whose replay buffer references
the experiences' datasets and, through them, these leaves. A leaf pickles as its recipe (loader,
loader arguments, split) plus a digest of its data, not as its images; unpickled, it is the live
leaf of that recipe in this process (built on a miss). So a checkpoint holds no image data, and a
process that resumes from it and re-creates the benchmark holds each image set once, however many
times the run was resumed. A long-tailed training part (:class:`LongTail`) is a recipe too: the
balanced training part, then a seeded choice of each class's images.
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


class LongTail(NamedTuple):
    """Which training images a long-tailed stream keeps: the class at position ``c`` of
    ``class_order`` (``C`` classes) keeps ``long_tail_count(n, ratio, c, C)`` of its ``n`` training
    images, the first ones of a random permutation of the training part drawn from a generator
    seeded with ``seed``. Classes not in ``class_order`` keep all their images."""

    ratio: float
    class_order: tuple[int, ...]
    seed: int


class Recipe(NamedTuple):
    """How to build the parts: ``loader(*args)`` gives ``(images, labels)``, split class-stratified
    by ``train_test_split(test_size=test_size, random_state=split_seed)``; with a ``long_tail``,
    the training part keeps only the images it chooses (the test part is the balanced one).
    Everything in it must pickle by value or by reference (a module-level loader) and mean the same
    in another process (paths absolute)."""

    loader: Callable[..., tuple[torch.Tensor, torch.Tensor]]
    args: tuple
    test_size: float | int
    split_seed: int | None
    long_tail: LongTail | None = None


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
    return part, recipe.loader, recipe.args, repr(recipe.test_size), repr(recipe.split_seed), repr(recipe.long_tail)


def reproducible(split_seed: Any) -> bool:
    """Whether a split seed rebuilds the same split in another process.

    :param split_seed: ``train_test_split``'s ``random_state``: an int is; None or a
        ``RandomState`` is not.
    """
    return isinstance(split_seed, numbers.Integral) and not isinstance(split_seed, bool)


def split_parts(recipe: Recipe) -> tuple[SplitPart, SplitPart]:
    """The train and test parts of ``recipe``: the live ones when this process has them, else
    loaded and split now (and, for a reproducible split seed, kept while anything uses them).

    :param recipe: loader, its arguments, test size, split seed and long tail.
    """
    if recipe.long_tail is not None:
        train, test = split_parts(recipe._replace(long_tail=None))
        return long_tailed(recipe, train), test
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


def long_tail_count(n: int, ratio: float, position: int, n_classes: int) -> int:
    """How many of its ``n`` training images the class at ``position`` (from 0) of a long-tailed
    stream of ``n_classes`` classes keeps: ``round(n * ratio ** (position / (n_classes - 1)))``,
    at least 1 (a class stays in its experience), so the first class keeps all its images.

    :param n: the class's training images in the balanced stream.
    :param ratio: the imbalance ratio, in ``(0, 1]``: the last class keeps this share.
    :param position: the class's position in the stream's class order.
    :param n_classes: number of classes in the stream.
    """
    exponent = position / (n_classes - 1) if n_classes > 1 else 0.0
    return min(n, max(1, round(n * ratio**exponent)))


def long_tail_positions(labels: torch.Tensor, long_tail: LongTail) -> torch.Tensor:
    """Sorted positions, in a balanced training part with ``labels``, of the images ``long_tail``
    keeps (see :class:`LongTail`).

    :param labels: the balanced training part's int64 labels.
    :param long_tail: ratio, class order and seed of the choice.
    """
    order = torch.as_tensor(long_tail.class_order, dtype=torch.long)
    keep = ~torch.isin(labels, order)
    permutation = torch.randperm(len(labels), generator=torch.Generator().manual_seed(long_tail.seed))
    shuffled = labels[permutation]
    for position, label in enumerate(long_tail.class_order):
        of_class = permutation[shuffled == label]
        keep[of_class[: long_tail_count(len(of_class), long_tail.ratio, position, len(order))]] = True
    return keep.nonzero().flatten()


def long_tailed(recipe: Recipe, balanced: SplitPart) -> SplitPart:
    """The long-tailed training part of ``recipe``: the live one when this process has it (and
    ``balanced`` is reproducible), else chosen now from ``balanced``.

    :param recipe: a recipe with a ``long_tail``.
    :param balanced: the training part of the same recipe without it.
    """

    def build(kept: Recipe | None) -> SplitPart:
        idx = long_tail_positions(balanced.labels, recipe.long_tail)
        return SplitPart(kept, "train", balanced.images[idx], balanced.labels[idx])

    if balanced.recipe is None:
        return build(None)
    with _LOCK:
        part = _LIVE.get(_key(recipe, "train"))
        if part is None:
            part = _LIVE[_key(recipe, "train")] = build(recipe)
    return part
