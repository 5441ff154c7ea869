"""What every tutorial notebook's first code cell sets up: two named warnings hidden, and the benchmark switch.

    from _setup import benchmark_switch

    USE_MNIST = False  # True: MNIST from the IDX files in $AVALANCHE_REPLAY_MNIST_DIR (8000/2000 split)
    INPUT_SIZE, BENCHMARK, make_benchmark = benchmark_switch(USE_MNIST)

The notebooks import it from their own folder (the kernel's working directory).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

# Set before Avalanche is imported. Only these warnings are hidden, each by its message; any other shows.
warnings.filterwarnings("ignore", "no QP solver found", UserWarning)  # qpsolvers, imported by Avalanche; unused here
warnings.filterwarnings("ignore", "No loggers specified", UserWarning)  # EvaluationPlugin(loggers=[]) is on purpose

from avalanche_replay_ext import SplitDigits, SplitMNISTIdx  # noqa: E402


def benchmark_switch(use_mnist: bool) -> tuple[int, str, Callable[..., object]]:
    """``(input size, benchmark name for experiments.Setting, make_benchmark(**kwargs))``.

    SplitDigits (scikit-learn's 8x8 digits, offline) or, with ``use_mnist``, MNIST from the local
    IDX files; ``make_benchmark`` passes its keyword arguments on, with 5 experiences.
    """

    def make_benchmark(**kwargs):
        return SplitMNISTIdx(5, **kwargs) if use_mnist else SplitDigits(5, **kwargs)

    return (28 * 28 if use_mnist else 64), ("mnist-idx" if use_mnist else "split-digits"), make_benchmark
