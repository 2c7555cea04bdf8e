"""The direction head: a score term of its own for the labels that name a direction ("moving left", "growing").

Why (docs/design.md §4.6): a label like "moving left" differs from "moving right" only in frame order, and frame
order read into the one video embedding competes with content there: measured on the organism, a readout added to
the embedding learns direction alone (0.92 order-only AUPR) but, trained on every label, takes over the embedding
and costs every content label. Here order gets a term of its own, video code . label code, added to the logit:

- the video code (K values) is a linear readout of how each patch's tokens change over the clip: the last backbone
  tokens the model computes, each layer-normalised, weighted by a ramp over the frames (-1 at the first frame, +1
  at the last), so a clip's code is exactly minus its reversal's and a static clip's is 0. The readout starts at
  zero: a new model scores exactly as without the head.
- the label code (K values) is a learnt projection of (e(l) - e(l reversed)) / 2, e the frozen text tower's
  features of the bare label and of the label with its time-reversal phrases swapped
  (`config.temporal_config.time_reversal_phrases`): 0 for every label without a reversal phrase, whatever the
  training does, and opposite for a label and its reversal.

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
