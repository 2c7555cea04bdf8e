"""The paper's weighted multi-label BCE (§3.3)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def weighted_multilabel_bce(logits: torch.Tensor, targets: torch.Tensor, negative_weight: float) -> torch.Tensor:
    """-sum_v [sum_pos log p + w * sum_neg log(1 - p)], averaged over videos.

    logits: (B, C) = s / tau (+ b); targets: (B, C) in {0, 1}. Summing over labels (not averaging) keeps the
    gradient scale of a positive independent of how many negatives the batch sampled.
    """
    targets = targets.to(logits.dtype)
    weights = targets + negative_weight * (1 - targets)
    per_label = F.binary_cross_entropy_with_logits(logits, targets, weight=weights, reduction="none")
    return per_label.sum(dim=-1).mean()
