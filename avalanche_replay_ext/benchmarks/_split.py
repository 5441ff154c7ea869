"""Turn an in-memory labelled image set into a class-incremental Avalanche benchmark."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from avalanche.benchmarks import NCScenario, nc_benchmark
from sklearn.model_selection import train_test_split

from .._avalanche_compat import tensor_classification_dataset
from .._checks import check_size


def class_incremental(
    images: torch.Tensor,
    labels: torch.Tensor,
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

    ``split_seed`` fixes which images are train or test; ``seed`` (or ``fixed_class_order``)
    fixes the class order, as in Avalanche's ``SplitMNIST``.
    """
    n_classes = len(torch.unique(labels))
    n_experiences = check_size("n_experiences", n_experiences)
    if n_classes % n_experiences:
        raise ValueError(f"n_experiences must divide the {n_classes} classes, got {n_experiences}")
    train_idx, test_idx = train_test_split(
        np.arange(len(labels)), test_size=test_size, random_state=split_seed, stratify=labels.numpy()
    )
    train_idx, test_idx = torch.as_tensor(np.sort(train_idx)), torch.as_tensor(np.sort(test_idx))

    def dataset(idx: torch.Tensor):
        return tensor_classification_dataset(images[idx], labels[idx])

    return nc_benchmark(
        dataset(train_idx),
        dataset(test_idx),
        n_experiences=n_experiences,
        task_labels=return_task_id,
        seed=seed,
        fixed_class_order=fixed_class_order,
        shuffle=shuffle,
        class_ids_from_zero_in_each_exp=class_ids_from_zero_in_each_exp,
        train_transform=train_transform,
        eval_transform=eval_transform,
    )
