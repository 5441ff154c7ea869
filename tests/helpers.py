"""Helpers the tests share (``from helpers import ...``; this folder is on ``sys.path``)."""

from __future__ import annotations

import hashlib
import multiprocessing
import re
import shutil
import subprocess
import tempfile
import tracemalloc
from pathlib import Path

import numpy as np
import torch
from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset
from avalanche.models import SimpleMLP
from avalanche.training import Naive
from avalanche.training.plugins import EvaluationPlugin
from torch.overrides import TorchFunctionMode


def id_dataset(ids: torch.Tensor, task: int = 0):
    """A dataset whose class target is each sample's id, so a buffer's targets name its samples."""
    ids = torch.as_tensor(ids, dtype=torch.long)
    return _make_taskaware_tensor_classification_dataset(ids.float().unsqueeze(1), ids, task_labels=task)


def make_naive(plugins, *, epochs=3, mb_size=32, evaluator=None, model=None, seed=0, criterion=None, **kwargs) -> Naive:
    """Avalanche's Naive on SplitDigits-sized inputs: SimpleMLP(64 -> 128 -> 10), SGD(0.1, momentum 0.9)."""
    torch.manual_seed(seed)
    model = model or SimpleMLP(num_classes=10, input_size=64, hidden_size=128, drop_rate=0.0)
    return Naive(
        model=model,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        criterion=criterion or torch.nn.CrossEntropyLoss(),
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


def digest(t: torch.Tensor) -> str:
    """A short hash of a tensor's values."""
    return hashlib.sha1(t.detach().contiguous().numpy().tobytes()).hexdigest()[:16]


def listing(data) -> list[list]:
    """A dataset's samples in order, as (class, pixel digest)."""
    return [[int(y), digest(x)] for x, y, *_ in (data[i] for i in range(len(data)))]


def assert_same_state(a, b, path: str = "state") -> None:
    """Two ``state_dict()`` s hold the same values: equal tensors (NaN equal to NaN, as in the
    NaN-padded extras), arrays and numbers, the same referenced datasets (by identity)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), (path, list(a), b)
        for key in a:
            assert_same_state(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape, path
        same = torch.equal(a, b) or (a.is_floating_point() and torch.equal(a.isnan(), b.isnan()))
        assert same and torch.equal(a.nan_to_num(0.0), b.nan_to_num(0.0)), path
    elif isinstance(a, list | tuple):
        assert type(a) is type(b) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_state(x, y, f"{path}[{i}]")
    else:
        assert a is b or a == b, (path, a, b)


class Started:
    """A command started now; its output goes to files (no pipe fills while it waits to be read)."""

    def __init__(self, cmd: list[str], logs: Path, cwd: Path | None = None) -> None:
        self.cwd = cwd
        self._out, self._err = logs.with_suffix(".out").open("w+"), logs.with_suffix(".err").open("w+")
        self.proc = subprocess.Popen(cmd, stdout=self._out, stderr=self._err, text=True, cwd=cwd)

    def result(self, timeout: float = 600) -> subprocess.CompletedProcess:
        """Wait for it to end; its exit status, stdout and stderr."""
        self.proc.wait(timeout=timeout)
        outputs = []
        for f in (self._out, self._err):
            f.seek(0)
            outputs.append(f.read())
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, *outputs)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._out.close()
        self._err.close()


_STARTED: dict[str, Started] = {}
_FOLDER: list[Path] = []


def start(name: str, cmd: list[str], own_folder: bool = False) -> Started:
    """Start ``cmd`` once per session, or return the run already started under ``name``; with
    ``own_folder``, in an empty working directory of its own (``.cwd``). A test module maps its
    tests' names to such starts in ``START_EARLY``: conftest makes them once those tests are
    collected, so slow commands run while the tests before theirs do."""
    if name not in _STARTED:
        if not _FOLDER:
            _FOLDER.append(Path(tempfile.mkdtemp(prefix="pytest-started-")))
        folder = _FOLDER[0] / re.sub(r"\W+", "-", name)
        cwd = folder / "cwd" if own_folder else None
        (cwd or folder).mkdir(parents=True)
        _STARTED[name] = Started(cmd, folder / "log", cwd)
    return _STARTED[name]


def stop_started() -> None:
    """Stop what is still running (a session cut short), and remove the folders."""
    for started in _STARTED.values():
        started.stop()
    _STARTED.clear()
    if _FOLDER:
        shutil.rmtree(_FOLDER.pop(), ignore_errors=True)


PRELOAD = ["torch", "avalanche.training", "avalanche.checkpointing", "avalanche_replay_ext"]


def start_preloaded(target, *args) -> multiprocessing.Process:
    """Start ``target(*args)`` in a new process forked from multiprocessing's fork server, which
    imports torch, Avalanche and the package once (``PRELOAD``): a process with none of the tests'
    objects that does not pay those imports again. ``target`` is pickled by name."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    process = context.Process(target=target, args=args)
    process.start()
    return process


class InjectedError(Exception):
    """The fault the tests inject inside an update."""


def with_fault(monkeypatch, owner, name: str, call, error: type[BaseException] = InjectedError) -> bool:
    """Run ``call()`` with ``owner.name`` raising ``error`` (default :class:`InjectedError`; e.g.
    ``KeyboardInterrupt``, a Ctrl-C) right after it did its work; return whether ``call`` reached
    that step."""
    hits = []
    original = getattr(owner, name)

    def fail(*args, **kwargs):
        original(*args, **kwargs)
        hits.append(True)
        raise error

    with monkeypatch.context() as patch:
        patch.setattr(owner, name, fail)
        try:
            call()
        except error:
            pass
    return bool(hits)


class _Counted(np.ndarray):
    """A per-slot array that counts the elements each operation on it reads or writes (slices are
    views, counted when used)."""

    elements = 0

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        _Counted.elements += sum(x.size for x in inputs if isinstance(x, _Counted))
        if out is not None:
            kwargs["out"] = tuple(_plain(o) for o in out)
        return getattr(ufunc, method)(*map(_plain, inputs), **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        _Counted.elements += _counted_size(args) + _counted_size(kwargs)
        return func(*_plain_all(args), **_plain_all(kwargs))

    def __getitem__(self, key):
        if not isinstance(key, slice):  # a copy (or an element): read as many elements
            _Counted.elements += int(np.size(key)) if np.ndim(key) else 1
        return super().__getitem__(key)

    def __setitem__(self, key, value):
        _Counted.elements += len(range(*key.indices(len(self)))) if isinstance(key, slice) else int(np.size(key))
        super().__setitem__(key, _plain(value))

    def tolist(self):
        _Counted.elements += self.size
        return self.view(np.ndarray).tolist()

    def copy(self, *args, **kwargs):
        _Counted.elements += self.size
        return super().copy(*args, **kwargs)

    def __iter__(self):
        _Counted.elements += self.size
        return iter(self.view(np.ndarray))


def _plain(x):
    return x.view(np.ndarray) if isinstance(x, _Counted) else x


def _plain_all(x):
    if isinstance(x, dict):
        return {k: _plain_all(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return type(x)(_plain_all(v) for v in x)
    return _plain(x)


def _counted_size(x) -> int:
    if isinstance(x, dict):
        return sum(_counted_size(v) for v in x.values())
    if isinstance(x, list | tuple):
        return sum(_counted_size(v) for v in x)
    return x.size if isinstance(x, _Counted) else 0


class _TorchElements(TorchFunctionMode):
    """Counts the elements of the new tensors (not views) torch functions return."""

    def __init__(self) -> None:
        super().__init__()
        self.elements = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, list | tuple) else (out,):
            if isinstance(t, torch.Tensor) and not t._is_view():
                self.elements += t.numel()
        return out


class WorkCounter:
    """The work of a block, counted, not timed: elements of a buffer's per-slot arrays read or
    written (``slot_elements``), elements of the new tensors torch made (``torch_elements``), and
    the most memory Python and NumPy allocated for one operation (``peak_bytes``, tracemalloc: the
    largest rise between two calls of :meth:`operation`, not what the block keeps). The per-slot
    arrays of the ``buffers`` given count what reads them from construction on."""

    def __init__(self, *buffers) -> None:
        for buffer in buffers:
            store = buffer._slots
            for name in store.fill:
                setattr(store, name, getattr(store, name).view(_Counted))
        self.peak_bytes = 0

    def operation(self) -> None:
        """Mark the start of the next operation (an update, a step) for ``peak_bytes``."""
        self._close()
        tracemalloc.reset_peak()
        self._base = tracemalloc.get_traced_memory()[0]

    def _close(self) -> None:
        if self._base is not None:
            self.peak_bytes = max(self.peak_bytes, tracemalloc.get_traced_memory()[1] - self._base)

    def __enter__(self) -> WorkCounter:
        _Counted.elements, self._base = 0, None
        self._torch = _TorchElements().__enter__()
        tracemalloc.start()
        return self

    def __exit__(self, *exc) -> None:
        self._close()
        tracemalloc.stop()
        self._torch.__exit__(*exc)
        self.slot_elements, self.torch_elements = _Counted.elements, self._torch.elements
