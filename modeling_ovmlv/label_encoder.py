"""The base of every label encoder f_t (`LabelEncoder`), and the two that need CLIP's text tower alone: the class-name
prompt and the prompt-template ensemble baselines. The registry of every encoder is `label_encoder_registry.py`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase, T5ForConditionalGeneration

from .configuration_ovmlv import OvmlvConfig
from .towers import build_text_tower


@dataclass(frozen=True)
class TokenizerSource:
    """Where a tokenizer is loaded from: a folder or Hub id, and a subfolder of it."""

    name_or_path: str
    subfolder: str = ""
    hub_kwargs: dict[str, Any] = field(default_factory=dict)  # revision, token, cache_dir, ... of a Hub repo

    def load(self) -> PreTrainedTokenizerBase:
        return AutoTokenizer.from_pretrained(self.name_or_path, subfolder=self.subfolder, **self.hub_kwargs)


@dataclass(frozen=True)
class TokenizerSources:
    """The CLIP and T5 tokenizers a label encoder may need itself: the towers' at `from_towers`, the saved
    processor's (in the model's own folder) at `from_pretrained`, so a saved model never reaches for its towers."""

    clip: TokenizerSource
    llm: TokenizerSource | None = None


class LabelEncoder(nn.Module):
    """Base of every f_t: labels in, (C, D) unit-norm embeddings out, through CLIP's text tower.

    `input_names` lists the processor outputs a subclass reads, so the model can pass exactly those and name
    the missing one when a caller forgot it; `loss_input_names` those its training loss reads besides (training
    asks the processor for both). `tokenizer_sources` is set by the model for the encoders that
    tokenize text themselves (the fixed-LLM baseline; CoOp's context phrase).
    """

    input_names: tuple[str, ...] = ("input_ids", "attention_mask")
    loss_input_names: tuple[str, ...] = ()

    def __init__(self, config: OvmlvConfig):
        super().__init__()
        self.config = config
        self.text_tower = build_text_tower(config)
        self.tokenizer_sources: TokenizerSources | None = None

    def pretrained_weights(
        self, clip: PreTrainedModel, llm: T5ForConditionalGeneration | None = None
    ) -> dict[str, torch.Tensor]:
        """The weights this encoder takes from the pretrained towers (CLIP or SigLIP), under its own parameter names."""
        return {f"text_tower.{key}": value for key, value in self.text_tower.pretrained_weights(clip).items()}

    def init_from_towers(self) -> None:
        """Initialisation that needs the towers' tokenizers (`tokenizer_sources`), run once by `from_towers`."""


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
        return template_ensemble(self.text_tower, prompt_input_ids, prompt_attention_mask)


def template_ensemble(
    text_tower: nn.Module, prompt_input_ids: torch.Tensor, prompt_attention_mask: torch.Tensor | None
) -> torch.Tensor:
    """(C, M, W) templated labels -> (C, D): each label's unit-norm features averaged over its M templates."""
    num_labels, num_templates, width = prompt_input_ids.shape
    mask = None if prompt_attention_mask is None else prompt_attention_mask.reshape(-1, width)
    features = F.normalize(text_tower(prompt_input_ids.reshape(-1, width), mask), dim=-1)
    return F.normalize(features.view(num_labels, num_templates, -1).mean(dim=1), dim=-1)
