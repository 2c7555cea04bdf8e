"""The paper's weighted multi-label BCE (§3.3), and ViLT-CLIP's scenario-guided auxiliary loss."""

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


def scenario_guided_loss(label_embeds: torch.Tensor, reference_embeds: torch.Tensor) -> torch.Tensor:
    """Mean over labels of ||f_t(l) - f_ref(l)||^2 between (C, D) unit vectors: KgCoOp's pull of the learnt label
    embeddings toward the frozen hand-crafted prompt's, which ViLT-CLIP adds to keep the video scenario (for unit
    vectors it is 2 (1 - cos), the distance behind ViLT-CLIP's cosine form)."""
    return (label_embeds - reference_embeds).pow(2).sum(dim=-1).mean()
