"""Shared fixtures. In CI (``CI`` set) a skipped test fails the run: CI must run every test."""

from __future__ import annotations

import os

import pytest
import torch
from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset

from avalanche_replay_ext.benchmarks import MNIST_DIR_ENV, SplitDigits


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


def id_dataset(ids: torch.Tensor, task: int = 0):
    """A dataset whose class target is each sample's id, so a buffer's targets name its samples."""
    ids = torch.as_tensor(ids, dtype=torch.long)
    return _make_taskaware_tensor_classification_dataset(ids.float().unsqueeze(1), ids, task_labels=task)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("CI") and skipped and exitstatus == 0:
        print(f"\nCI: {skipped} test(s) skipped; CI must run them all")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
