"""Shared fixtures. In CI (``CI`` set) a skipped test fails the run: CI must run every test."""

from __future__ import annotations

import os

import pytest
import torch
from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset
from avalanche.models import SimpleMLP
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin

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


def make_naive(plugins, *, epochs=3, mb_size=32, evaluator=None, model=None, seed=0, **kwargs) -> Naive:
    """Avalanche's Naive on SplitDigits-sized inputs: SimpleMLP(64 -> 128 -> 10), SGD(0.1, momentum 0.9)."""
    torch.manual_seed(seed)
    model = model or SimpleMLP(num_classes=10, input_size=64, hidden_size=128, drop_rate=0.0)
    return Naive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        criterion=torch.nn.CrossEntropyLoss(),
        train_mb_size=mb_size,
        train_epochs=epochs,
        eval_mb_size=512,
        plugins=plugins,
        evaluator=evaluator or EvaluationPlugin(loggers=[]),
        **kwargs,
    )


def stream_accuracy(strategy, stream) -> float:
    """Accuracy of ``strategy.model`` over all test experiences together."""
    strategy.model.eval()
    correct = total = 0
    with torch.no_grad():
        for exp in stream:
            for x, y, t in torch.utils.data.DataLoader(exp.dataset.eval(), batch_size=512):
                out = strategy.model(x, t) if hasattr(strategy.model, "forward_single_task") else strategy.model(x)
                correct += int((out.argmax(1) == y).sum())
                total += len(y)
    return correct / total


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if os.environ.get("CI") and skipped and exitstatus == 0:
        print(f"\nCI: {skipped} test(s) skipped; CI must run them all")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def assert_same_state(a, b, path: str = "state") -> None:
    """Two ``state_dict()`` s hold the same values: equal tensors, arrays and numbers, the same
    referenced datasets (by identity)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), (path, list(a), b)
        for key in a:
            assert_same_state(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), path
    elif isinstance(a, list | tuple):
        assert type(a) is type(b) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_state(x, y, f"{path}[{i}]")
    else:
        assert a is b or a == b, (path, a, b)
