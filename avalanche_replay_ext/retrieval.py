"""Retrieval policies: which memory samples form each step's memory minibatch.

What a buffer *stores* and what a loader *replays* from it are two choices. A retrieval policy
makes the second: :class:`~avalanche_replay_ext.loaders.DualMinibatchLoader` (and
:class:`~avalanche_replay_ext.plugins.AlphaReplayPlugin`, which builds one) asks it, once per
cycle over the memory, for the memory minibatches of that cycle, as index tensors into the
memory. Without a policy the loader replays reshuffled passes over the memory.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

GROUPS = {"class": "targets", "task": "targets_task_labels"}
"""``groupby`` names (the tutorial's) -> the memory's attribute holding each sample's group."""


class RetrievalPolicy:
    """Base class: :meth:`plan` returns one cycle's memory minibatches."""

    def plan(self, memory: Dataset, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
        """The memory minibatches of one cycle: about ``ceil(len(memory) / batch_size)`` index
        tensors into ``memory``, drawn from ``generator`` (the loader's own)."""
        raise NotImplementedError


class BalancedRetrieval(RetrievalPolicy):
    """Each step, every group present in the memory gets an equal expected share of the memory
    minibatch, whatever its stored size; within a group, samples are drawn uniformly (with
    replacement, so a group smaller than its share still fills it).

    Each of the ``batch_size`` samples of a step draws its group uniformly among the groups
    present, then a uniform member of that group. On a memory that is 90% one class, the replayed
    classes are as frequent as each other.

    :param groupby: ``"class"`` (the memory's ``targets``) or ``"task"``
        (``targets_task_labels``).
    """

    def __init__(self, groupby: str = "class") -> None:
        if groupby not in GROUPS:
            raise ValueError(f"groupby must be one of {sorted(GROUPS)}, got {groupby!r}")
        self.groupby = groupby

    def plan(self, memory: Dataset, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
        groups = group_labels(memory, self.groupby)
        order = torch.argsort(groups, stable=True)  # memory indices, grouped
        _, sizes = torch.unique_consecutive(groups[order], return_counts=True)
        starts = torch.cumsum(sizes, 0) - sizes
        n_steps = -(-len(groups) // batch_size)
        picked = torch.randint(len(sizes), (n_steps, batch_size), generator=generator)
        within = (torch.rand(n_steps, batch_size, generator=generator, dtype=torch.float64) * sizes[picked]).long()
        return list(order[starts[picked] + within])

    def __repr__(self) -> str:
        return f"BalancedRetrieval(groupby={self.groupby!r})"


def group_labels(memory: Dataset, groupby: str) -> torch.Tensor:
    """Each memory sample's group (its class or task label) as a 1-D int64 tensor."""
    labels = getattr(memory, GROUPS[groupby], None)
    if labels is None:
        raise TypeError(
            f"groupby={groupby!r} needs a memory with `{GROUPS[groupby]}` (Avalanche datasets and this "
            f"package's buffers have it), got {type(memory).__name__}"
        )
    return torch.as_tensor(list(labels), dtype=torch.long)


def check_retrieval(retrieval: object) -> RetrievalPolicy | None:
    """Return ``retrieval`` if it is None or a :class:`RetrievalPolicy`, else raise."""
    if retrieval is not None and not isinstance(retrieval, RetrievalPolicy):
        raise TypeError(f"retrieval must be None or a RetrievalPolicy (BalancedRetrieval), got {retrieval!r}")
    return retrieval
