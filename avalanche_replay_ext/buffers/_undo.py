"""What a failed update must put back: the entries it overwrote in arrays and dicts, in order."""

from __future__ import annotations

from typing import Any

_ABSENT = object()  # the old value of a dict key that did not exist


class UndoLog:
    """The old values of the entries a transaction overwrote, written back in reverse order by
    :meth:`undo`, so a rollback costs what the writes cost, not the size of what they wrote into.

    Entries are NumPy arrays or tensors indexed by an integer array (indexing such a key copies,
    so the old values are kept as they were), or dicts and one key.
    """

    def __init__(self) -> None:
        self._entries: list[tuple[Any, Any, Any]] = []

    def record(self, container: Any, key: Any) -> None:
        """Remember ``container[key]`` before it is written (or that a dict lacked ``key``)."""
        old = container.get(key, _ABSENT) if isinstance(container, dict) else container[key]
        self._entries.append((container, key, old))

    def undo(self) -> None:
        for container, key, old in reversed(self._entries):
            if old is _ABSENT:
                del container[key]
            else:
                container[key] = old
        self._entries.clear()
