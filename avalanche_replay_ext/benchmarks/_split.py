"""Turn an in-memory labelled image set into a class-incremental Avalanche benchmark."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from avalanche.benchmarks import NCScenario, nc_benchmark

from .._avalanche_compat import classification_dataset
from .._checks import check_range, check_size
from ._parts import LongTail, Recipe, SplitPart, long_tailed, reproducible, split_parts


def class_incremental(
    loader: Callable[..., tuple[torch.Tensor, torch.Tensor]],
    loader_args: tuple,
    *,
    n_experiences: int,
    test_size: float | int,
    split_seed: int,
    return_task_id: bool,
    seed: int | None,
    fixed_class_order: Sequence[int] | None,
    shuffle: bool,
    class_ids_from_zero_in_each_exp: bool,
    train_transform: Any,
    eval_transform: Any,
    imbalance_ratio: float | None = None,
) -> NCScenario:
    """Seeded class-stratified train/test split, then Avalanche's ``nc_benchmark``.

    ``loader(*loader_args)`` gives the images and int64 labels (pass what means the same in another
    process: a module-level loader, absolute paths). ``split_seed`` fixes which images are train or
    test; ``seed`` (or ``fixed_class_order``) fixes the class order, as in Avalanche's
    ``SplitMNIST``. The two parts are :class:`SplitPart` leaves that pickle as this recipe (see
    ``_parts``), so checkpoints of a run on the benchmark hold no image data.

    :param loader: module-level function returning ``(images, labels)``.
    :param loader_args: its positional arguments.
    :param n_experiences: number of experiences, a divisor of the number of classes.
    :param imbalance_ratio: None (balanced), or the training stream's long tail (:func:`long_tail`).
    """
    ratio = check_imbalance_ratio(imbalance_ratio)
    recipe = Recipe(loader, tuple(loader_args), test_size, split_seed)
    train, test = split_parts(recipe)
    n_experiences = check_experiences(n_experiences, train, test)
    if ratio is not None:  # nc_benchmark then gets the order it would have drawn itself
        fixed_class_order = stream_class_order(train.labels, seed, fixed_class_order, shuffle)
        train = long_tailed(recipe._replace(long_tail=long_tail(ratio, fixed_class_order, seed, split_seed)), train)
    return nc_benchmark(
        classification_dataset(train, targets=train.labels),
        classification_dataset(test, targets=test.labels),
        n_experiences=n_experiences,
        task_labels=return_task_id,
        seed=seed,
        fixed_class_order=fixed_class_order,
        shuffle=shuffle,
        class_ids_from_zero_in_each_exp=class_ids_from_zero_in_each_exp,
        train_transform=train_transform,
        eval_transform=eval_transform,
    )


def check_experiences(n_experiences: object, *parts: SplitPart) -> int:
    """Return ``n_experiences`` if it is a positive int that divides the parts' number of classes,
    else raise.

    :param n_experiences: a benchmark's ``n_experiences`` argument.
    :param parts: the train and test parts.
    """
    n_classes = len(torch.unique(torch.cat([part.labels for part in parts])))
    n_experiences = check_size("n_experiences", n_experiences)
    if n_classes % n_experiences:
        raise ValueError(f"n_experiences must divide the {n_classes} classes, got {n_experiences}")
    return n_experiences


def check_imbalance_ratio(ratio: object) -> float | None:
    """Return ``ratio`` as a float if it is a finite number in ``(0, 1]``; None for None and for 1
    (a ratio of 1 keeps every image: the balanced stream). Else raise naming ``imbalance_ratio``.

    :param ratio: a benchmark's ``imbalance_ratio`` argument.
    """
    if ratio is None:
        return None
    ratio = check_range("imbalance_ratio", ratio, 0.0, 1.0, open_low=True)
    return None if ratio == 1.0 else ratio


def stream_class_order(
    labels: torch.Tensor, seed: int | None, fixed_class_order: Sequence[int] | None, shuffle: bool
) -> list[int]:
    """The class order Avalanche 0.6's ``NCScenario`` gives a training set with ``labels``, drawn
    as it draws it (``seed`` seeds torch's global RNG, as ``nc_benchmark`` does).

    :param labels: the training labels.
    :param seed: ``nc_benchmark``'s ``seed``; None draws the order from torch's global RNG state.
    :param fixed_class_order: the order to use, if given (``seed`` and ``shuffle`` are then ignored).
    :param shuffle: whether the sorted classes are shuffled.
    """
    if fixed_class_order is not None:
        return [int(label) for label in fixed_class_order]
    classes = torch.unique(labels, sorted=True)
    if not shuffle:
        return classes.tolist()
    if seed is not None:
        torch.random.manual_seed(seed)
    return classes[torch.randperm(len(classes))].tolist()


def long_tail(ratio: float, class_order: Sequence[int], seed: int | None, split_seed: Any) -> LongTail:
    """The long tail of a training stream: the class at position ``c`` of ``class_order`` (``C``
    classes) keeps ``round(n * ratio ** (c / (C - 1)))`` of its ``n`` training images, at least 1:
    the first class keeps all of them, the last one the share ``ratio``. Which ones is drawn from a
    generator seeded with ``seed``, or ``split_seed`` when ``seed`` is None (0 when neither is an
    int): never from a global RNG.

    :param ratio: the imbalance ratio, in ``(0, 1]``.
    :param class_order: the stream's class order (original class ids).
    :param seed: the benchmark's class order seed.
    :param split_seed: the benchmark's train/test split seed.
    """
    choice_seed = seed if seed is not None else split_seed if reproducible(split_seed) else 0
    return LongTail(ratio, tuple(int(label) for label in class_order), int(choice_seed))
