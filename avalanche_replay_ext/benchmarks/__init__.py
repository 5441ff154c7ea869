"""Offline benchmarks: no download, ever."""

from .digits import SplitDigits
from .mnist_idx import MNIST_DIR_ENV, SplitMNISTIdx, load_mnist_idx

__all__ = ["MNIST_DIR_ENV", "SplitDigits", "SplitMNISTIdx", "load_mnist_idx"]
