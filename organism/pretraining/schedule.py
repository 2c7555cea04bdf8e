"""The learning-rate schedule both organism towers pretrain with: linear warm-up, then cosine decay to zero."""

from __future__ import annotations

import math

import torch


def warmup_cosine(
    optimizer: torch.optim.Optimizer, warmup_steps: int, steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Step `s` scales the learning rate by (s + 1) / warmup_steps during the warm-up, then by a cosine from 1 at the
    end of the warm-up to 0 at `steps`."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
