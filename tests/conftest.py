"""Shared fixtures (shared functions are in ``helpers.py``). In CI (``CI`` set) a skipped test
fails the run: CI must run every test."""

from __future__ import annotations

import os

import pytest
import torch
from helpers import stop_started

from avalanche_replay_ext.benchmarks import MNIST_DIR_ENV, SplitDigits

# Small models train fastest on one thread, and a second OpenMP thread spinning on a shared 2-core
# machine slows every step many times over: one thread here and in every process the tests start.
torch.set_num_threads(1)
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(scope="session")
def digits():
    """SplitDigits, 5 experiences, class order seed 0."""
    return SplitDigits(5, seed=0)


@pytest.fixture(scope="session")
def mnist_dir() -> str:
    path = os.environ.get(MNIST_DIR_ENV, "")
    if not os.path.isdir(path):
        pytest.skip(f"MNIST IDX folder not found: set {MNIST_DIR_ENV} (e.g. to ../shared/data/mnist)")
    return path


def early_start(item: pytest.Item):
    """The ``helpers.start`` call of a test that reads a slow command's result, from its module's
    ``START_EARLY`` (test name -> that call), or None."""
    return getattr(getattr(item, "module", None), "START_EARLY", {}).get(getattr(item, "originalname", None))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Order for two cores: first the tests that keep one core busy, while the commands started
    early use the other; then the modules that run several processes at once (``SEVERAL_PROCESSES``
    set); last the tests that read the commands started early, when those have had the most time."""

    def phase(item: pytest.Item) -> int:
        if early_start(item) is not None:
            return 2
        return int(getattr(getattr(item, "module", None), "SEVERAL_PROCESSES", False))

    items.sort(key=phase)  # stable: the order is kept within each phase


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the slow commands the selected tests read, so they run while the other tests do."""
    if session.config.option.collectonly:
        return
    for item in session.items:
        start = early_start(item)
        if start:
            start()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    stop_started()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("CI") and skipped and exitstatus == 0:
        print(f"\nCI: {skipped} test(s) skipped; CI must run them all")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
