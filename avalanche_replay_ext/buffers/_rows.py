"""Tensor samples a buffer copied in (``update_from_batch``), in append-only rows that views index."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from avalanche.benchmarks.utils.classification_dataset import TaskAwareSupervisedClassificationDataset
from avalanche.benchmarks.utils.data_attribute import DataAttribute
from torch.utils.data import Dataset


class _Rows(Dataset):
    """Row ``i`` as ``(x[i], int(y[i]))``, read from the storage tensors without copying them."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.x[i], int(self.y[i])


def rows_dataset(x: torch.Tensor, y: torch.Tensor) -> TaskAwareSupervisedClassificationDataset:
    """An Avalanche classification dataset over row tensors (labels as placeholders: the views
    that index it carry each sample's own)."""
    zeros = [0] * len(x)
    return TaskAwareSupervisedClassificationDataset(
        [_Rows(x, y)],
        data_attributes=[
            DataAttribute(zeros, "targets"),
            DataAttribute(zeros, "targets_task_labels", use_in_getitem=True),
        ],
    )


class RowStore:
    """Tensor samples in rows that are written once and never changed, so a view made earlier
    keeps reading the samples it was made with. Storage is allocated as rows arrive (doubling) and
    compacted to the rows still in use when it is full, so memory follows the samples held, not
    the buffer's capacity.
    """

    def __init__(self) -> None:
        self.x: torch.Tensor | None = None  # storage; rows [0, n) written
        self.y: torch.Tensor | None = None
        self.n = 0
        self._dataset: TaskAwareSupervisedClassificationDataset | None = None

    def check(self, x: torch.Tensor) -> None:
        """Raise before any change if ``x`` cannot be stored next to the rows already held."""
        if self.x is not None and (x.shape[1:] != self.x.shape[1:] or x.dtype != self.x.dtype):
            raise ValueError(
                f"x samples have shape {tuple(x.shape[1:])} and dtype {x.dtype}, but this buffer "
                f"stores {tuple(self.x.shape[1:])} {self.x.dtype}"
            )

    def append(
        self, x: torch.Tensor, y: np.ndarray, live_rows: Callable[[], np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Store samples ``x`` (labels ``y``, x already on the CPU). ``live_rows()``: the rows still
        in use, asked for only when the storage is full (then compacted to them and doubled, so
        an append costs O(len(x)) amortised). Returns the new rows' numbers and, if the storage
        was compacted, each old row's new number (-1 if dropped); nothing changes if it raises."""
        k, remap = len(x), None
        store_x, store_y, n = self.x, self.y, self.n
        if store_x is None or n + k > len(store_x):
            live = live_rows()
            remap = np.full(n, -1, dtype=np.int64)
            remap[live] = np.arange(len(live))
            cap = max(2 * (len(live) + k), 16)
            new_x, new_y = torch.empty((cap, *x.shape[1:]), dtype=x.dtype), torch.zeros(cap, dtype=torch.long)
            if len(live):
                keep = torch.from_numpy(live)
                new_x[: len(live)], new_y[: len(live)] = store_x[keep], store_y[keep]
            store_x, store_y, n = new_x, new_y, len(live)
        store_x[n : n + k] = x
        store_y[n : n + k] = torch.from_numpy(y)
        if store_x is not self.x:
            self.x, self.y, self._dataset = store_x, store_y, None
        self.n = n + k
        return np.arange(n, n + k), remap

    def dataset(self) -> TaskAwareSupervisedClassificationDataset:
        """The rows as one dataset (built once per storage allocation); views index into it."""
        if self._dataset is None:
            self._dataset = rows_dataset(self.x, self.y)
        return self._dataset

    def state_dict(self, live: np.ndarray) -> dict[str, Any]:
        """The ``live`` rows only, in that order (their new numbers are their positions)."""
        keep = torch.from_numpy(live)
        return {"x": None if self.x is None else self.x[keep].clone(), "y": None if self.y is None else self.y[keep]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.__init__()
        if state["x"] is not None:
            self.x, self.y, self.n = state["x"].clone(), state["y"].clone(), len(state["x"])

    def mark(self) -> dict[str, Any]:
        """What :meth:`reset` needs to undo every later change (rows are only ever appended
        past ``n`` or moved to new storage, so the references suffice)."""
        return dict(self.__dict__)

    def reset(self, mark: dict[str, Any]) -> None:
        self.__dict__.clear()
        self.__dict__.update(mark)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_dataset": None}
