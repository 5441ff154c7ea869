"""Timing and memory readings the benchmark scripts share."""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from typing import Any


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Milliseconds ``fn()`` took, and what it returned."""
    start = time.perf_counter()
    out = fn()
    return 1e3 * (time.perf_counter() - start), out


def rss_mb() -> float:
    """Resident memory of this process now (not its peak), in MB, from /proc."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20
