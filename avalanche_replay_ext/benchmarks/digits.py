"""SplitDigits: a class-incremental benchmark on scikit-learn's bundled 8x8 digits (no download)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from avalanche.benchmarks import NCScenario
from sklearn.datasets import load_digits

from ._split import class_incremental


def load_digit_images() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1797 digits as ``(N, 1, 8, 8)`` float32 images in [0, 1] and int64 labels."""
    digits = load_digits()
    images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16.0
    return images, torch.tensor(digits.target, dtype=torch.long)


def SplitDigits(  # noqa: N802 - named like Avalanche's SplitMNIST
    n_experiences: int = 5,
    *,
    return_task_id: bool = False,
    seed: int | None = 0,
    fixed_class_order: Sequence[int] | None = None,
    shuffle: bool = True,
    class_ids_from_zero_in_each_exp: bool = False,
    test_size: float = 0.2,
    split_seed: int = 0,
    train_transform: Any = None,
    eval_transform: Any = None,
    imbalance_ratio: float | None = None,
) -> NCScenario:
    """Class-incremental benchmark over the 1797 real 8x8 digit images bundled with scikit-learn.

    Drop-in for Avalanche's ``SplitMNIST`` where no download is possible: same arguments,
    ``train_stream``/``test_stream`` of datasets with ``targets`` and task labels. Images are
    ``(1, 8, 8)`` float tensors in [0, 1] (use ``SimpleMLP(input_size=64)``). The train/test split
    is class-stratified and fixed by ``split_seed`` (default 80/20: 1437/360 images). Its datasets
    pickle as their recipe, so checkpoints of runs on it hold no images.

    :param n_experiences: number of experiences, a divisor of 10.
    :param return_task_id: if True, experience ``i`` has task label ``i``; else all task 0.
    :param seed: seed of the class order (ignored when ``fixed_class_order`` is given) and, with
        ``imbalance_ratio``, of which training images each class keeps.
    :param imbalance_ratio: None (default): the balanced stream. A number in ``(0, 1]`` makes the
        training stream long-tailed: the ``c``-th class of the stream's class order (from 0; ``C``
        classes) keeps ``round(n * imbalance_ratio ** (c / (C - 1)))`` of its ``n`` training images
        (at least 1), so the first class keeps all, the last the share ``imbalance_ratio``. Which
        ones is seeded (``seed``, or ``split_seed`` when ``seed`` is None). Test sets stay balanced.
    """
    return class_incremental(
        load_digit_images,
        (),
        n_experiences=n_experiences,
        test_size=test_size,
        split_seed=split_seed,
        return_task_id=return_task_id,
        seed=seed,
        fixed_class_order=fixed_class_order,
        shuffle=shuffle,
        class_ids_from_zero_in_each_exp=class_ids_from_zero_in_each_exp,
        train_transform=train_transform,
        eval_transform=eval_transform,
        imbalance_ratio=imbalance_ratio,
    )
