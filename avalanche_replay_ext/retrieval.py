"""Retrieval policies: which memory samples form each step's memory minibatch.

What a buffer *stores* and what a loader *replays* from it are two choices. A retrieval policy
makes the second: :class:`~avalanche_replay_ext.loaders.DualMinibatchLoader` (and
:class:`~avalanche_replay_ext.plugins.AlphaReplayPlugin`, which builds one) asks it for the next
steps' memory minibatches, as index tensors into the memory. Every memory minibatch holds
``min(batch_size_mem, len(memory))`` samples.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from avalanche.models import MultiTaskModule
from avalanche.training.storage_policy import ExemplarsBuffer
from torch.utils.data import Dataset

from ._checks import check_size
from .buffers import SlotBuffer
from .buffers._base import GROUPBY

DATASET_LABELS = {"class": "targets", "task": "targets_task_labels"}
"""``groupby`` names -> the attribute of a plain dataset memory holding each sample's group."""


class RetrievalPolicy:
    """Base class: :meth:`plan` returns the memory minibatches of the next steps."""

    needs_model = False
    """True for a policy that chooses with the model (only ``AlphaReplayPlugin`` can run it)."""

    def check(self, memory: Dataset | ExemplarsBuffer) -> None:
        """Raise if this policy cannot read ``memory`` (called when a loader or plugin is built)."""

    def plan(
        self, memory: Dataset | ExemplarsBuffer, batch_size: int, steps: int, generator: torch.Generator
    ) -> list[torch.Tensor]:
        """``steps`` memory minibatches, each ``min(batch_size, len(memory))`` indices into the
        memory, drawn from ``generator`` (the loader's own)."""
        raise NotImplementedError


class RandomRetrieval(RetrievalPolicy):
    """Reshuffled passes over the memory, cut into minibatches of exactly
    ``min(batch_size, len(memory))`` samples: each memory sample is drawn once per pass, and a
    minibatch that spans the end of one pass and the start of the next holds no sample twice.

    The policy keeps its place in the current pass between calls (and in a checkpoint): give each
    loader or plugin its own. A memory that changed between calls is read anew; the rest of the
    pass keeps the positions that still exist. A call costs O(steps * batch_size), plus O(len(memory))
    once per pass.
    """

    def __init__(self) -> None:
        self._rest = torch.zeros(0, dtype=torch.long)  # the current pass's indices not drawn yet
        self._bound = 0  # every index in _rest is below it (the memory size its pass was drawn for)

    def plan(
        self, memory: Dataset | ExemplarsBuffer, batch_size: int, steps: int, generator: torch.Generator
    ) -> list[torch.Tensor]:
        n = memory_size(memory)
        size = min(batch_size, n)
        sequence, need = self._rest, steps * size
        if n < self._bound:  # the memory shrank: drop the positions that no longer exist
            sequence = sequence[sequence < n]
        while len(sequence) < need:
            spanning = sequence[len(sequence) - len(sequence) % size :]  # an unfinished minibatch
            sequence = torch.cat([sequence, _next_pass(n, spanning, size, generator)])
        self._rest, self._bound = sequence[need:], n
        return list(sequence[:need].split(size)) if size else []

    def __setstate__(self, state: dict) -> None:
        bound = int(state["_rest"].max()) + 1 if len(state["_rest"]) else 0  # a policy pickled before `_bound`
        self.__dict__.update({"_bound": bound, **state})

    def __repr__(self) -> str:
        return "RandomRetrieval()"


def _next_pass(n: int, spanning: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """A random order of ``range(n)`` whose first ``size - len(spanning)`` entries, which complete
    the unfinished minibatch ``spanning``, avoid its members."""
    order = torch.randperm(n, generator=generator)
    if not len(spanning):
        return order
    k, clash = size - len(spanning), torch.isin(order, spanning)
    others = order[~clash]
    tail = torch.cat([others[k:], order[clash]])
    return torch.cat([others[:k], tail[torch.randperm(len(tail), generator=generator)]])


class BalancedRetrieval(RetrievalPolicy):
    """Each step, every group present in the memory gets an equal expected share of the memory
    minibatch, whatever its stored size; within a group, samples are drawn uniformly (with
    replacement, so a group smaller than its share still fills it).

    Each sample of a step draws its group uniformly among the groups present, then a uniform
    member of that group. On a memory that is 90% one class, the replayed classes are as frequent
    as each other.

    :param groupby: ``"class"``, ``"task"`` or ``"experience"`` (the experience each sample
        arrived in, which this package's buffers record). With a plain dataset as memory,
        ``"class"`` and ``"task"`` read its ``targets`` and ``targets_task_labels``.
    """

    def __init__(self, groupby: str = "class") -> None:
        if groupby not in GROUPBY:
            raise ValueError(f"groupby must be one of {list(GROUPBY)}, got {groupby!r}")
        self.groupby = groupby

    def check(self, memory: Dataset | ExemplarsBuffer) -> None:
        _group_source(memory, self.groupby)

    def plan(
        self, memory: Dataset | ExemplarsBuffer, batch_size: int, steps: int, generator: torch.Generator
    ) -> list[torch.Tensor]:
        if isinstance(memory, SlotBuffer):  # from the buffer's group index: no pass over the labels
            return _balanced_draw(memory.group_positions(self.groupby), batch_size, steps, generator)
        groups = group_labels(memory, self.groupby)
        size = min(batch_size, len(groups))
        order = torch.argsort(groups, stable=True)  # memory indices, grouped
        _, sizes = torch.unique_consecutive(groups[order], return_counts=True)
        starts = torch.cumsum(sizes, 0) - sizes
        picked = torch.randint(len(sizes), (steps, size), generator=generator)
        within = (torch.rand(steps, size, generator=generator, dtype=torch.float64) * sizes[picked]).long()
        return list(order[starts[picked] + within])

    def __repr__(self) -> str:
        return f"BalancedRetrieval(groupby={self.groupby!r})"


def _balanced_draw(
    groups: dict[int, Sequence[int]], batch_size: int, steps: int, generator: torch.Generator
) -> list[torch.Tensor]:
    """:meth:`BalancedRetrieval.plan`'s draws, made from each group's sorted positions (groups in
    ascending order): O(steps * batch_size) lookups."""
    members = list(groups.values())
    sizes = torch.tensor([len(m) for m in members], dtype=torch.long)
    size = min(batch_size, int(sizes.sum()))
    picked = torch.randint(len(sizes), (steps, size), generator=generator)
    within = (torch.rand(steps, size, generator=generator, dtype=torch.float64) * sizes[picked]).long()
    chosen = [members[g][w] for g, w in zip(picked.flatten().tolist(), within.flatten().tolist(), strict=True)]
    return list(torch.tensor(chosen, dtype=torch.long).view(steps, size))


class MIRRetrieval(RetrievalPolicy):
    """Maximally Interfered Retrieval (Aljundi et al., "Online Continual Learning with Maximally
    Interfered Retrieval", NeurIPS 2019).

    Each step draws ``candidates`` memory samples (:class:`RandomRetrieval`), takes a virtual SGD
    step of the model on the current minibatch's loss at the learning rate of the optimizer's
    first parameter group, and replays the ``batch_size_mem`` candidates whose loss that step
    raises most. The real model, its BatchNorm statistics and the optimizer stay untouched: the
    candidates are scored in eval mode with the stepped parameters passed functionally. It needs
    the model, so it runs in ``AlphaReplayPlugin`` only, which forwards the chosen samples
    apart from the current minibatch; the criterion must be a torch loss with a ``reduction``
    (scored per sample).

    :param candidates: memory samples drawn per step to choose from, a positive int.
    """

    needs_model = True

    def __init__(self, candidates: int = 50) -> None:
        self.candidates = check_size("candidates", candidates)
        self.draw = RandomRetrieval()
        """Draws each step's candidates."""

    def plan(
        self, memory: Dataset | ExemplarsBuffer, batch_size: int, steps: int, generator: torch.Generator
    ) -> list[torch.Tensor]:
        return self.draw.plan(memory, self.candidates, steps, generator)

    def select(self, strategy: Any, candidates: list[torch.Tensor], k: int) -> torch.Tensor:
        """Positions of the ``k`` candidates (``[x, y, ..., t]`` on the strategy's device) whose
        loss rises most after a virtual SGD step on ``strategy.loss``."""
        model, criterion = strategy.model, per_sample(strategy._criterion)
        named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
        grads = torch.autograd.grad(strategy.loss, [p for _, p in named], retain_graph=True, allow_unused=True)
        lr = strategy.optimizer.param_groups[0]["lr"]
        stepped = {name: p if g is None else p - lr * g for (name, p), g in zip(named, grads, strict=True)}
        x, y, t = candidates[0], candidates[1], candidates[-1]
        args = (x, t) if isinstance(model, MultiTaskModule) else (x,)
        training = model.training
        try:
            model.eval()
            with torch.no_grad():
                before = criterion(model(*args), y)
                after = criterion(torch.func.functional_call(model, stepped, args), y)
        finally:
            model.train(training)
        return torch.topk(after - before, min(k, len(y))).indices

    def __repr__(self) -> str:
        return f"MIRRetrieval(candidates={self.candidates})"


def per_sample(criterion: Any) -> Any:
    """A copy of ``criterion`` that returns one loss per sample."""
    if not isinstance(getattr(criterion, "reduction", None), str):
        raise TypeError(
            "MIRRetrieval scores candidates one by one: the strategy's criterion must be a torch loss "
            f"with a `reduction` (e.g. CrossEntropyLoss()), got {type(criterion).__name__}"
        )
    criterion = copy.copy(criterion)
    criterion.reduction = "none"
    return criterion


def memory_size(memory: Dataset | ExemplarsBuffer) -> int:
    """Number of samples in the memory (without building the view of one of our buffers)."""
    if isinstance(memory, SlotBuffer):
        return len(memory)
    return len(memory.buffer if isinstance(memory, ExemplarsBuffer) else memory)


def group_labels(memory: Dataset | ExemplarsBuffer, groupby: str) -> torch.Tensor:
    """Each memory sample's group (its class, task label or experience) as a 1-D int64 tensor."""
    source = _group_source(memory, groupby)
    if isinstance(source, SlotBuffer):
        return source.stored_groups(groupby)
    return torch.as_tensor(list(getattr(source, DATASET_LABELS[groupby])), dtype=torch.long)


def _group_source(memory: Dataset | ExemplarsBuffer, groupby: str) -> Any:
    """What holds the memory's ``groupby`` labels (one of our buffers, or a dataset), or raise."""
    if isinstance(memory, SlotBuffer):
        return memory
    if groupby == "experience":
        raise TypeError(
            "groupby='experience' needs one of this package's buffers as the memory (they record the "
            f"experience each sample arrived in), got {type(memory).__name__}"
        )
    dataset = memory.buffer if isinstance(memory, ExemplarsBuffer) else memory
    if len(dataset) and not hasattr(dataset, DATASET_LABELS[groupby]):  # an empty buffer may lack them
        raise TypeError(
            f"groupby={groupby!r} needs a memory with `{DATASET_LABELS[groupby]}` (Avalanche datasets and "
            f"this package's buffers have it), got {type(dataset).__name__}"
        )
    return dataset


def check_retrieval(retrieval: object, *, model: bool) -> RetrievalPolicy:
    """``retrieval`` if it is a :class:`RetrievalPolicy` (a new :class:`RandomRetrieval` for
    None) that can run where the model is (``model``) or is not available, else raise."""
    if retrieval is None:
        return RandomRetrieval()
    if not isinstance(retrieval, RetrievalPolicy):
        raise TypeError(
            "retrieval must be None or a RetrievalPolicy (RandomRetrieval, BalancedRetrieval, MIRRetrieval), "
            f"got {retrieval!r}"
        )
    if retrieval.needs_model and not model:
        raise ValueError(
            f"{retrieval!r} chooses with the model: use it in AlphaReplayPlugin(retrieval=...); "
            "DualMinibatchLoader takes RandomRetrieval or BalancedRetrieval"
        )
    return retrieval
