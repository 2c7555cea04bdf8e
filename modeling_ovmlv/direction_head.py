"""The direction head: a score term of its own for the labels that name a direction ("moving left", "growing").

Why (docs/design.md §4.6): a label like "moving left" differs from "moving right" only in frame order, and frame
order read into the one video embedding competes with content there: measured on the organism, a readout added to
the embedding learns direction alone (0.92 order-only AUPR) but, trained on every label, takes over the embedding
and costs every content label. Here order gets a term of its own, read from the agreement a = video code . label
code:

- the video code (K values) is a linear readout of how each patch's tokens change over the clip: the last backbone
  tokens the model computes, each layer-normalised, weighted by a ramp over the frames (-1 at the first frame, +1
  at the last), so a clip's code is exactly minus its reversal's and a static clip's is 0. The readout starts at
  zero: a new model scores exactly as without the head.
- the label code (K values) is a learnt projection of (e(l) - e(l reversed)) / 2, e the frozen text tower's
  features of the bare label and of the label with its time-reversal phrases swapped
  (`config.temporal_config.time_reversal_phrases`): 0 for every label without a reversal phrase, whatever the
  training does, and opposite for a label and its reversal.
- the logit gains log(2 sigmoid(a)) (`direction_log_odds`): the label's odds times a factor in (0, 2). A label that
  names a direction is its content *and* its direction, so the clip's motion may rule it out without bound but
  may at most double its odds; added as it is, a clip moving up lifted every "... moving up" label, whatever its
  shape, above the labels the clip does show.

Each half is a module of its own, its parameter read only when it is called (offload hooks, DeepSpeed ZeRO-3).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init

from .configuration_ovmlv import OvmlvConfig


class VideoDirection(nn.Module):
    """(B, N, S, D') backbone tokens -> (B, K) video direction codes, 0 at initialisation."""

    def __init__(self, config: OvmlvConfig):
        super().__init__()
        vision = config.vision_config
        self.num_patches = (vision.image_size // vision.patch_size) ** 2
        self.readout = nn.Parameter(torch.zeros(config.direction_dims, self.num_patches * vision.hidden_size))

    def init_weights(self) -> None:
        init.zeros_(self.readout)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        patches = tokens[:, :, -self.num_patches :]  # CLIP's CLS (if any) comes first
        num_frames = patches.shape[1]
        ramp = torch.linspace(-1.0, 1.0, num_frames, device=tokens.device, dtype=tokens.dtype) / num_frames
        change = torch.einsum("bnpd,n->bpd", F.layer_norm(patches, patches.shape[-1:]), ramp)  # (B, P, D')
        return change.flatten(1) @ self.readout.T.to(change.dtype)


class LabelDirection(nn.Module):
    """(C, D) text features of labels and of their reversals -> (C, K) label direction codes."""

    def __init__(self, config: OvmlvConfig):
        super().__init__()
        self.projection = nn.Parameter(torch.zeros(config.direction_dims, config.projection_dim))

    def init_weights(self) -> None:
        init.normal_(self.projection, std=1.0 / math.sqrt(self.projection.shape[1]))

    def forward(self, label_features: torch.Tensor, reversed_features: torch.Tensor) -> torch.Tensor:
        difference = (label_features - reversed_features) / 2
        return difference @ self.projection.T.to(difference.dtype)


def direction_log_odds(agreement: torch.Tensor) -> torch.Tensor:
    """log(2 sigmoid(a)) of the agreement a = video code . label code: what the direction term adds to a logit.

    Exactly 0 at a = 0 (computed there as log1p(tanh(a / 2)), with slope 1/2), so a new model and every label
    without a reversal phrase score exactly as without the head; at most log 2 above it; about a + log 2 far below.
    A reversal flips the sign of a, and log(2 sigmoid(a)) - log(2 sigmoid(-a)) = a: the margin between a label and
    its reversal is the agreement itself."""
    rising = torch.log1p(torch.tanh(agreement.clamp(min=0) / 2))
    falling = math.log(2.0) + F.logsigmoid(agreement.clamp(max=0))  # stable far below 0, where tanh saturates
    return torch.where(agreement >= 0, rising, falling)
