"""Timing and memory readings the benchmark scripts share."""

from __future__ import annotations

import multiprocessing
import resource
import time
from collections.abc import Callable
from typing import Any

PRELOAD = ["torch", "avalanche.training", "avalanche.checkpointing", "avalanche_replay_ext"]


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Milliseconds ``fn()`` took, and what it returned."""
    start = time.perf_counter()
    out = fn()
    return 1e3 * (time.perf_counter() - start), out


def rss_mb() -> float:
    """Resident memory of this process now (not its peak), in MB, from /proc."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def start_fresh_process(target: Callable[..., None], *args: Any) -> multiprocessing.Process:
    """Start ``target(*args)`` in a new process.

    The process is forked from multiprocessing's fork server, which imports torch, Avalanche and
    this package once (``PRELOAD``): it holds none of this process's objects, and does not pay the
    imports again. ``target`` must be a module-level function (it is pickled by name)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    process = context.Process(target=target, args=args)
    process.start()
    return process


def join(process: multiprocessing.Process) -> None:
    """Wait for a process of :func:`start_fresh_process`; raise if it failed."""
    process.join()
    if process.exitcode:
        raise RuntimeError(f"{process.name} failed with exit code {process.exitcode} (its error is above)")


def in_fresh_process(target: Callable[..., None], *args: Any) -> None:
    """Run ``target(*args)`` in a new process (:func:`start_fresh_process`) and wait for it."""
    join(start_fresh_process(target, *args))
