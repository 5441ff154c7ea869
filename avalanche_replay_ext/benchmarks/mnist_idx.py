"""MNIST from local gzip IDX files, split offline into a class-incremental benchmark."""

from __future__ import annotations

import gzip
import math
import os
import zlib
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
IMAGE_SHAPE, N_CLASSES = (28, 28), 10  # what MNIST's files hold: 28x28 images, labels 0..9


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
    """The uint8 array in the gzip IDX file ``path``, whose magic number must be ``magic`` (0x803:
    3 dimensions, 0x801: 1); raises ValueError naming the file if it is not a complete gzip file,
    or its magic number, header or size is not what ``magic`` announces."""
    name = f"MNIST file {str(path)!r}"
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise ValueError(f"{name} is not a complete gzip file ({err})") from None
    header = 4 + 4 * (magic & 0xFF)  # the magic's last byte: the number of dimensions
    found = int.from_bytes(data[:4], "big")
    if len(data) >= 4 and found != magic:
        raise ValueError(f"{name} is not an IDX file of the expected kind (magic {found:#x}, expected {magic:#x})")
    if len(data) < header:
        raise ValueError(f"{name} is too short for its IDX header ({len(data)} bytes, the header needs {header})")
    shape = tuple(int.from_bytes(data[i : i + 4], "big") for i in range(4, header, 4))
    if len(data) - header != math.prod(shape):
        raise ValueError(
            f"{name} holds {len(data) - header} bytes after its header, but its shape {shape} needs {math.prod(shape)}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _read_pair(image_path: Path, label_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The images and labels of one pair of files, checked to belong together: as many labels as
    images, the images 28x28 and at least one, the labels in 0..9 (else ValueError naming the file)."""
    images, labels = _read_idx(image_path, 0x803), _read_idx(label_path, 0x801)
    image_name, label_name = f"MNIST file {str(image_path)!r}", repr(str(label_path))
    if images.shape[1:] != IMAGE_SHAPE:
        rows, cols = images.shape[1:]
        raise ValueError(
            f"{image_name} holds images of {rows}x{cols} pixels, expected {IMAGE_SHAPE[0]}x{IMAGE_SHAPE[1]}"
        )
    if len(images) != len(labels):
        raise ValueError(f"{image_name} holds {len(images)} images but {label_name} {len(labels)} labels")
    if not len(images):
        raise ValueError(f"{image_name} holds no images")
    bad = np.flatnonzero(labels >= N_CLASSES)
    if len(bad):
        raise ValueError(
            f"MNIST file {label_name} holds label {labels[bad[0]]} at position {bad[0]}; "
            f"labels must be in 0..{N_CLASSES - 1}"
        )
    return images, labels


def load_mnist_idx(root: str | os.PathLike | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All MNIST images found in ``root`` (test set, plus the training set if present).

    :return: images as ``(N, 1, 28, 28)`` float32, normalised with mean 0.1307 and std 0.3081,
        and int64 labels.
    :raises FileNotFoundError: no folder, no pair of files, or one file of a pair without the other.
    :raises ValueError: a file is not a complete gzip IDX file of its kind (magic number, header,
        size), or a pair disagrees (image and label counts), or holds no images, images other than
        28x28 or labels outside 0..9; the message names the file.
    """
    path = mnist_dir(root)
    images, labels = [], []
    for pair in _FILES.values():
        found = [name for name in pair if (path / name).exists()]
        if len(found) == 1:
            missing = next(name for name in pair if name not in found)
            raise FileNotFoundError(f"MNIST folder {str(path)!r} holds {found[0]} but not {missing}")
        if found:
            x, y = _read_pair(path / pair[0], path / pair[1])
            images.append(x)
            labels.append(y)
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
