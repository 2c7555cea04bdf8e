"""Label encoders f_t that need no LLM: the class-name prompt and the prompt-template ensemble baselines."""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPModel

from .clip_towers import ClipTextTower
from .configuration_ovmlv import OvmlvConfig


class LabelEncoder(nn.Module):
    """Base of every f_t: labels in, (C, D) unit-norm embeddings out, through CLIP's text tower.

    `input_names` lists the processor outputs a subclass reads, so the model can pass exactly those and name
    the missing one when a caller forgot it.
    """

    input_names: tuple[str, ...] = ("input_ids", "attention_mask")

    def __init__(self, config: OvmlvConfig):
        super().__init__()
        self.config = config
        self.text_tower = ClipTextTower(config.text_config, config.projection_dim)

    def load_pretrained(self, clip: CLIPModel, llm: str | os.PathLike | None = None) -> None:
        """Take the pretrained tower weights (subclasses with an LLM also load `llm`, a Hub id or folder)."""
        self.text_tower.text_model.load_state_dict(clip.text_model.state_dict())
        self.text_tower.text_projection.load_state_dict(clip.text_projection.state_dict())


class ClassNameLabelEncoder(LabelEncoder):
    """CLIP text features of the bare label (the paper's "class-name prompt" row)."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return F.normalize(self.text_tower(input_ids, attention_mask), dim=-1)


class TemplateEnsembleLabelEncoder(LabelEncoder):
    """Mean of unit-norm CLIP features over M prompt templates ("a video of {label}.", ...), as in CLIP's ensemble."""

    input_names = ("prompt_input_ids", "prompt_attention_mask")

    def forward(
        self, prompt_input_ids: torch.Tensor, prompt_attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        num_labels, num_templates, width = prompt_input_ids.shape  # (C, M, W)
        mask = None if prompt_attention_mask is None else prompt_attention_mask.reshape(-1, width)
        features = F.normalize(self.text_tower(prompt_input_ids.reshape(-1, width), mask), dim=-1)
        return F.normalize(features.view(num_labels, num_templates, -1).mean(dim=1), dim=-1)
