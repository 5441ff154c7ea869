"""The parts of GDumb's training recipe that are not the memory: the learning-rate schedule,
CutMix and masking of unseen classes (Prabhu et al., ECCV 2020; ``src/main.py`` of the authors'
code). :class:`~.gdumb.GDumbPlugin` composes them."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import betaincinv
from torch.optim.lr_scheduler import CosineAnnealingWarmRestarts

MASK_MARGIN = 1e4  # masked logits sit this far below the smallest logit of the batch


class WarmupCosine:
    """GDumb's schedule over ``passes`` passes of one experience: the first pass at
    ``warmup_factor`` x the base rates (if ``warmup`` and more than one pass), then
    ``CosineAnnealingWarmRestarts(T_0, T_mult=2, eta_min=min_lr)`` stepped every iteration and
    stretched so that the last pass ends at the low end of a cycle, never at a restart (if
    ``cosine``), else the base rates."""

    def __init__(self, warmup: bool, warmup_factor: float, cosine: bool, T_0: int, min_lr: float) -> None:  # noqa: N803
        self.warmup, self.warmup_factor, self.cosine, self.T_0, self.min_lr = warmup, warmup_factor, cosine, T_0, min_lr
        self.base_lrs: list[float] | None = None
        self._scheduler: CosineAnnealingWarmRestarts | None = None
        self._warm, self._stretch = 0, 1.0  # warm-up passes; cosine passes per scheduler epoch

    def start(self, optimizer: torch.optim.Optimizer, passes: int) -> None:
        """Reset ``optimizer`` to its first base rates and no state, for an experience of ``passes``."""
        if self.base_lrs is None:
            self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        optimizer.state.clear()  # no momentum from earlier experiences
        for group, lr in zip(optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = group["initial_lr"] = lr
        self._warm = int(self.warmup and passes > 1)
        cosine_passes, self._scheduler = passes - self._warm, None
        if self.cosine and cosine_passes > 0:
            self._scheduler = CosineAnnealingWarmRestarts(optimizer, T_0=self.T_0, T_mult=2, eta_min=self.min_lr)
            cycles = max(1, int(math.log2(cosine_passes / self.T_0 + 1)))  # whole cycles that fit, at least one
            self._stretch = cosine_passes / (self.T_0 * (2**cycles - 1))

    def step(self, optimizer: torch.optim.Optimizer, pass_: float) -> None:
        """Set the rates for position ``pass_`` (passes done, fractional) in the experience."""
        if pass_ < self._warm:
            for group, lr in zip(optimizer.param_groups, self.base_lrs, strict=True):
                group["lr"] = self.warmup_factor * lr
        elif self._scheduler is not None:
            self._scheduler.step((pass_ - self._warm) / self._stretch)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_scheduler": None}  # rebuilt by `start` at the next experience


def cutmix(x: torch.Tensor, generator: torch.Generator, alpha: float) -> tuple[torch.Tensor, torch.Tensor, float]:
    """CutMix (Yun et al., ICCV 2019) on an image minibatch ``x``: a box of each image replaced by
    the same box of another image of the batch. Returns the mixed images, the permutation that
    gave each image its box, and ``lam``, the share of each image left as it was.

    ``lam ~ Beta(alpha, alpha)`` is drawn by inverting the Beta CDF at a uniform draw of
    ``generator``, so every draw comes from the one generator the caller owns."""
    lam = float(betaincinv(alpha, alpha, float(torch.rand((), generator=generator))))
    h, w = x.shape[-2:]
    cut_h, cut_w = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
    cy, cx = (int(torch.randint(n, (), generator=generator)) for n in (h, w))
    y1, y2 = np.clip([cy - cut_h // 2, cy + cut_h // 2], 0, h)
    x1, x2 = np.clip([cx - cut_w // 2, cx + cut_w // 2], 0, w)
    perm = torch.randperm(len(x), generator=generator).to(x.device)
    mixed = x.clone()
    mixed[..., y1:y2, x1:x2] = x[perm][..., y1:y2, x1:x2]
    return mixed, perm, 1 - (y2 - y1) * (x2 - x1) / (h * w)


def mask_unseen(logits: torch.Tensor, seen_classes: set[int]) -> torch.Tensor:
    """``logits`` with the classes not in ``seen_classes`` set ``MASK_MARGIN`` below the batch's
    smallest logit: only seen classes can be predicted, and loss metrics stay finite."""
    unseen = torch.ones(logits.shape[1], dtype=torch.bool, device=logits.device)
    unseen[[c for c in seen_classes if c < logits.shape[1]]] = False
    return logits.masked_fill(unseen, float(logits.min()) - MASK_MARGIN)
