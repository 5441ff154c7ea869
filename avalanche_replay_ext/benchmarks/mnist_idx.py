"""MNIST from local gzip IDX files, split offline into a class-incremental benchmark."""

from __future__ import annotations

import gzip
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from avalanche.benchmarks import NCScenario

from ._split import check_imbalance_ratio, class_incremental

MNIST_DIR_ENV = "AVALANCHE_REPLAY_MNIST_DIR"
"""Environment variable naming the folder with the MNIST gzip IDX files."""

_FILES = {  # prefix -> (images file, labels file), the names torchvision and LeCun use
    "t10k": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
}
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # torchvision's usual MNIST normalisation


def mnist_dir(root: str | os.PathLike | None = None) -> Path:
    """``root``, or the folder named by ``$AVALANCHE_REPLAY_MNIST_DIR``; must exist."""
    if root is None:
        root = os.environ.get(MNIST_DIR_ENV)
        if not root:
            raise FileNotFoundError(
                f"no MNIST folder given: pass root=... or set {MNIST_DIR_ENV} to a folder with "
                "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz"
            )
    path = Path(root).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"MNIST folder {str(path)!r} does not exist")
    return path


def _read_idx(path: Path, magic: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        data = f.read()
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise ValueError(f"{path} is not an IDX file of the expected kind (magic {found:#x}, expected {magic:#x})")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_mnist_idx(root: str | os.PathLike | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All MNIST images found in ``root`` (test set, plus the training set if present).

    :return: images as ``(N, 1, 28, 28)`` float32, normalised with mean 0.1307 and std 0.3081,
        and int64 labels.
    """
    path = mnist_dir(root)
    images, labels = [], []
    for image_file, label_file in _FILES.values():
        if (path / image_file).exists() and (path / label_file).exists():
            images.append(_read_idx(path / image_file, 0x803))
            labels.append(_read_idx(path / label_file, 0x801))
    if not images:
        raise FileNotFoundError(f"no MNIST IDX files ({', '.join(_FILES['t10k'])}) in {str(path)!r}")
    x = torch.from_numpy(np.concatenate(images)).float().div_(255).sub_(MNIST_MEAN).div_(MNIST_STD)
    return x.unsqueeze(1), torch.from_numpy(np.concatenate(labels).astype(np.int64))


def SplitMNISTIdx(  # noqa: N802 - named like Avalanche's SplitMNIST
    n_experiences: int = 5,
    *,
    root: str | os.PathLike | None = None,
    return_task_id: bool = False,
    seed: int | None = 0,
    fixed_class_order: Sequence[int] | None = None,
    shuffle: bool = True,
    class_ids_from_zero_in_each_exp: bool = False,
    test_size: float | int = 2000,
    split_seed: int = 0,
    train_transform: Any = None,
    eval_transform: Any = None,
    imbalance_ratio: float | None = None,
) -> NCScenario:
    """Split MNIST built offline from the gzip IDX files in ``root`` (or ``$AVALANCHE_REPLAY_MNIST_DIR``).

    With only the 10k test set available, its images are split class-stratified into
    8000 train / 2000 test (``test_size``, fixed by ``split_seed``); the benchmark then has the
    shape of Avalanche's ``SplitMNIST``: ``n_experiences`` experiences of 10/n classes each,
    class order from ``seed``. Images are ``(1, 28, 28)``, already normalised (``SimpleMLP()``
    fits as is). Its datasets pickle as their recipe: a checkpoint of a run on it names the folder
    (as an absolute path) instead of holding the images, and must be loaded where those files are.

    :param imbalance_ratio: None (default): balanced. A number in ``(0, 1]``: a long-tailed
        training stream, as in :func:`~avalanche_replay_ext.benchmarks.SplitDigits`; test sets
        stay balanced.
    """
    check_imbalance_ratio(imbalance_ratio)  # before looking for the folder
    root = str(mnist_dir(root).resolve())  # the recipe names the same folder in any process
    return class_incremental(
        load_mnist_idx,
        (root,),
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
