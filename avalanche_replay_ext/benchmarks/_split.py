"""Turn an in-memory labelled image set into a class-incremental Avalanche benchmark."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from avalanche.benchmarks import NCScenario, nc_benchmark

from .._avalanche_compat import classification_dataset
from .._checks import check_size
from ._parts import Recipe, SplitPart, split_parts


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
    """
    train, test = split_parts(Recipe(loader, tuple(loader_args), test_size, split_seed))
    n_classes = len(torch.unique(torch.cat([train.labels, test.labels])))
    n_experiences = check_size("n_experiences", n_experiences)
    if n_classes % n_experiences:
        raise ValueError(f"n_experiences must divide the {n_classes} classes, got {n_experiences}")

    def dataset(part: SplitPart):
        return classification_dataset(part, targets=part.labels)

    return nc_benchmark(
        dataset(train),
        dataset(test),
        n_experiences=n_experiences,
        task_labels=return_task_id,
        seed=seed,
        fixed_class_order=fixed_class_order,
        shuffle=shuffle,
        class_ids_from_zero_in_each_exp=class_ids_from_zero_in_each_exp,
        train_transform=train_transform,
        eval_transform=eval_transform,
    )
