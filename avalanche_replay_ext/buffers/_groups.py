"""The slots of each group (class, task, experience), in slot order, kept up to date as slots change."""

from __future__ import annotations

import numpy as np
from sortedcontainers import SortedList


class GroupIndex:
    """Group value -> the slots holding it, each group's slots sorted, so that the ``k``-th slot
    of a group is found and a slot moves between groups in O(log n): what the class-balanced
    buffers and balanced retrieval need per sample, without a pass over all the slots.

    :param values: the group value of each occupied slot (slot ``i`` holds ``values[i]``).
    """

    def __init__(self, values: np.ndarray) -> None:
        order = np.argsort(values, kind="stable")
        labels, starts = np.unique(values[order], return_index=True)
        parts = np.split(order, starts[1:]) if len(labels) else []
        self.members: dict[int, SortedList] = {
            g: SortedList(part.tolist()) for g, part in zip(labels.tolist(), parts, strict=True)
        }
        """Each present group's slots (no empty group), in ascending group order."""

    def move(self, slot: int, old: int | None, new: int) -> None:
        """Put ``slot`` in group ``new``, out of group ``old`` (``None``: a slot not held before).
        Idempotent: a slot already moved is left as it is."""
        if old is not None and old != new:
            members = self.members.get(old)
            if members is not None:
                members.discard(slot)
                if not members:
                    del self.members[old]
        into = self.members.get(new)
        if into is None:
            self.members[new] = SortedList([slot])
            self.members = dict(sorted(self.members.items()))
        elif slot not in into:
            into.add(slot)

    def sizes(self) -> dict[int, int]:
        """Group -> number of slots holding it, for the present groups in ascending order."""
        return {g: len(m) for g, m in self.members.items()}
