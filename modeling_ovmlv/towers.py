"""The vision-language towers by kind (`OvmlvConfig.towers_type`: "clip" or "siglip"): one table, one loader.

Each kind names the checkpoint class it is loaded from and its two tower modules, which share one interface
(`clip_towers.py`, `siglip_towers.py`); the rest of the model never asks which kind it runs on, except the score head
that starts from SigLIP's own learnt scale and bias (`score_settings`). SigLIP 2 at a fixed resolution
(google/siglip2-base-patch16-224 and its siblings) is a `SiglipModel` checkpoint with another tokenizer, so the
"siglip" kind serves both; "siglip2" is SigLIP 2's NaFlex architecture (`Siglip2Model`), run at its native grid.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from torch import nn
from transformers import AutoConfig, CLIPModel, PretrainedConfig, PreTrainedModel, Siglip2Model, SiglipModel

from .clip_towers import ClipTextTower, ClipVisionTower
from .configuration_ovmlv import OvmlvConfig
from .siglip_towers import Siglip2TextTower, Siglip2VisionTower, SiglipTextTower, SiglipVisionTower

# CLIP's embedding init scale (`initializer_range`); SigLIP's configs have no such field and use the same.
EMBEDDING_INIT_STD = 0.02


@dataclass(frozen=True)
class TowerKind:
    name: str  # for people: model cards, messages
    checkpoint_class: type[PreTrainedModel]
    text_tower: type[nn.Module]
    vision_tower: type[nn.Module]


TOWER_KINDS: dict[str, TowerKind] = {
    "clip": TowerKind("CLIP", CLIPModel, ClipTextTower, ClipVisionTower),
    "siglip": TowerKind("SigLIP", SiglipModel, SiglipTextTower, SiglipVisionTower),
    "siglip2": TowerKind("SigLIP 2", Siglip2Model, Siglip2TextTower, Siglip2VisionTower),
}


def embedding_init_std(tower_config: PretrainedConfig) -> float:
    """The std new embeddings beside a tower start at: the tower's own `initializer_range` (CLIP), else 0.02."""
    return getattr(tower_config, "initializer_range", EMBEDDING_INIT_STD)


def build_text_tower(config: OvmlvConfig) -> nn.Module:
    return TOWER_KINDS[config.towers_type].text_tower(config.text_config, config.projection_dim)


def build_vision_tower(config: OvmlvConfig) -> nn.Module:
    return TOWER_KINDS[config.towers_type].vision_tower(config.vision_config, config.projection_dim)


def load_vision_language_model(
    name_or_path: str | os.PathLike, revision: str | None = None, **hub_kwargs
) -> PreTrainedModel:
    """The pretrained CLIP or SigLIP checkpoint (Hub id or local folder), by the model_type of its config."""
    model_type = AutoConfig.from_pretrained(name_or_path, revision=revision, **hub_kwargs).model_type
    if model_type not in TOWER_KINDS:
        raise ValueError(
            f"{name_or_path} is a {model_type!r} checkpoint; the vision-language towers must be one of "
            f"{tuple(TOWER_KINDS)} (e.g. openai/clip-vit-base-patch32, google/siglip-base-patch16-224, "
            "google/siglip2-base-patch16-224, google/siglip2-base-patch16-naflex)."
        )
    return TOWER_KINDS[model_type].checkpoint_class.from_pretrained(name_or_path, revision=revision, **hub_kwargs)


def check_tower_kind(config: OvmlvConfig, model: PreTrainedModel, source: str) -> None:
    """Raise ValueError when `model` (the towers named by `source`) is not of the kind `config` was built on."""
    if model.config.model_type != config.towers_type:
        raise ValueError(
            f"The towers {source} are a {TOWER_KINDS[model.config.model_type].name} checkpoint; this model was built "
            f"on {TOWER_KINDS[config.towers_type].name} towers. Name the checkpoints it was built on."
        )


def joint_embedding_dim(model: PreTrainedModel) -> int:
    """D, the width both towers embed into: CLIP's projection_dim, SigLIP's text head width (= its vision width)."""
    if isinstance(model, SiglipModel | Siglip2Model):
        return model.config.text_config.projection_size
    return model.config.projection_dim


def score_settings(model: PreTrainedModel) -> dict[str, float]:
    """`OvmlvConfig` score fields the towers bring: SigLIP was trained with a sigmoid per image-text pair, so its learnt
    logit scale and bias give calibrated per-label probabilities as they are; CLIP's softmax scale does not (none)."""
    if not isinstance(model, SiglipModel | Siglip2Model):
        return {}
    return {
        "score_temperature": math.exp(-float(model.logit_scale.detach())),
        "score_bias": float(model.logit_bias.detach()),
    }
