"""The score of a label for a video: s / tau + b, with s = f_t(l) . f_v(v), both unit norm (paper §3)."""

from __future__ import annotations

import math

import torch
from torch import nn
from transformers import initialization as init

from .configuration_ovmlv import OvmlvConfig
from .direction_head import direction_log_odds
from .label_members import best_slot_scores


class ScoreHead(nn.Module):
    """(B, D) video and (C, D) label embeddings -> (B, C) logits s / tau + b; `sigmoid` gives each probability.

    A module rather than a formula in the model, so that its two parameters (tau and b, learnable on request) are
    read only when it is called, as offload hooks and DeepSpeed ZeRO-3 need. `logit_scale` is log(1 / tau), of
    shape (1,): DeepSpeed cannot partition 0-dim parameters.

    With `category_members` slots a label's embedding is (C, M * D) and its cosine the best over its slots
    (`label_members.py`); a label alone, D wide, is scored as usual (training encodes labels so).

    With a direction head, K direction-code values follow each video's and each label's embedding; their dot
    product a adds log(2 sigmoid(a)) to the logit (`direction_head.direction_log_odds`).

    DualCoOp's label embeddings are (C, 2D) pairs [f_pos; f_neg] and s = s_pos - s_neg, so that (with b = 0)
    sigmoid(logits) is the softmax over (s_pos, s_neg) / tau taken at the positive.
    """

    def __init__(self, config: OvmlvConfig):
        super().__init__()
        self.config = config
        self.logit_scale = nn.Parameter(torch.zeros(1))
        self.logit_bias = nn.Parameter(torch.zeros(1))

    def init_weights(self) -> None:
        init.constant_(self.logit_scale, math.log(1.0 / self.config.score_temperature))
        init.constant_(self.logit_bias, float(self.config.score_bias))

    def forward(self, video_embeds: torch.Tensor, label_embeds: torch.Tensor) -> torch.Tensor:
        dim, width, codes = self.config.projection_dim, self.config.label_embedding_dim, self.config.direction_dims
        accepted = {width} | ({dim + codes} if self.config.category_member_slots else set())
        if label_embeds.shape[-1] not in accepted:
            raise ValueError(
                f"label_encoder={self.config.label_encoder!r} scores {self.config.label_embedding_dim}-wide label "
                f"embeddings, got {tuple(label_embeds.shape)}: were they made by another model?"
            )
        if video_embeds.shape[-1] != self.config.video_embedding_dim:
            raise ValueError(
                f"This model scores {self.config.video_embedding_dim}-wide video embeddings, got "
                f"{tuple(video_embeds.shape)}: were they made by another model?"
            )
        label_embeds = label_embeds.to(device=video_embeds.device, dtype=video_embeds.dtype)
        if not codes:
            return self._content_logits(video_embeds, label_embeds)
        direction = direction_log_odds(video_embeds[:, dim:] @ label_embeds[:, -codes:].T)
        return self._content_logits(video_embeds[:, :dim], label_embeds[:, :-codes]) + direction

    def _content_logits(self, video_embeds: torch.Tensor, label_embeds: torch.Tensor) -> torch.Tensor:
        dim = self.config.projection_dim
        if self.config.pairs_label_embeddings:
            positive, negative = label_embeds.chunk(2, dim=-1)
            label_embeds = positive - negative  # f_v . f_pos - f_v . f_neg
        elif label_embeds.shape[-1] != dim:
            return best_slot_scores(video_embeds, label_embeds, dim) * self.logit_scale.exp() + self.logit_bias
        return (video_embeds @ label_embeds.T) * self.logit_scale.exp() + self.logit_bias
