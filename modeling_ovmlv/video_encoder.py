"""The video encoder f_v: frozen CLIP on every frame, then frame mean-pooling or the temporal branch."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPModel

from .clip_towers import ClipVisionTower
from .configuration_ovmlv import OvmlvConfig


class VideoEncoder(nn.Module):
    """(B, T, 3, H, W) frames -> (B, D) unit-norm video embeddings.

    With `temporal_layers == 0` this is frame mean-pooling of CLIP image embeddings: order-blind by design.
    """

    def __init__(self, config: OvmlvConfig):
        super().__init__()
        self.config = config
        self.vision_tower = ClipVisionTower(config.vision_config, config.projection_dim)

    def load_pretrained(self, clip: CLIPModel) -> None:
        """Take CLIP's vision weights (and initialise every CLIP-initialised new layer from them)."""
        self.vision_tower.vision_model.load_state_dict(clip.vision_model.state_dict())
        self.vision_tower.visual_projection.load_state_dict(clip.visual_projection.state_dict())

    def forward(self, pixel_values_videos: torch.Tensor) -> torch.Tensor:
        batch, frames = pixel_values_videos.shape[:2]
        frame_embeds = self.vision_tower(pixel_values_videos.flatten(0, 1))  # (B*T, D)
        return F.normalize(frame_embeds.view(batch, frames, -1).mean(dim=1), dim=-1)
