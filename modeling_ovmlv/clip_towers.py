"""The frozen CLIP towers, with the two entry points CLIPModel lacks: soft prompts and per-layer tokens."""

from __future__ import annotations

import torch
from torch import nn
from transformers import CLIPTextConfig, CLIPTextModel, CLIPVisionConfig, CLIPVisionModel
from transformers.masking_utils import create_causal_mask

from .deep_prompts import place_prompt

# Checkpoints saved before transformers PR #24773 carry eos_token_id=2 and pool at argmax(input_ids).
LEGACY_EOS_TOKEN_ID = 2


def eos_positions(input_ids: torch.Tensor, eos_token_id: int) -> torch.Tensor:
    """Where CLIPTextModel pools each sequence, by the same rule it uses."""
    if eos_token_id == LEGACY_EOS_TOKEN_ID:
        return input_ids.to(torch.int).argmax(dim=-1)
    return (input_ids == eos_token_id).int().argmax(dim=-1)


class TextTower(nn.Module):
    """What every text tower (`text_model`: a transformers text model) shows the label encoders: its width and the
    word embeddings that soft prompts are measured against."""

    text_model: nn.Module

    @property
    def hidden_size(self) -> int:
        return self.text_model.config.hidden_size

    @property
    def token_embedding(self) -> nn.Embedding:
        return self.text_model.embeddings.token_embedding


class ClipTextTower(TextTower):
    """CLIP's text transformer + text projection, able to take L soft-prompt vectors after [BOS].

    `CLIPTextModel` accepts no `inputs_embeds`, so the forward pass is spelled out here once and used for both
    plain and soft-prompted labels: with no prompt it is exactly `CLIPModel.get_text_features`.
    """

    def __init__(self, config: CLIPTextConfig, projection_dim: int):
        super().__init__()
        self.text_model = CLIPTextModel._from_config(config)
        self.text_projection = nn.Linear(config.hidden_size, projection_dim, bias=False)

    @property
    def dtype(self) -> torch.dtype:
        """The dtype the tower computes in (its weights')."""
        return self.text_projection.weight.dtype

    @staticmethod
    def pretrained_weights(model: nn.Module) -> dict[str, torch.Tensor]:
        """This tower's weights in a `CLIPModel`, under the tower's names."""
        return {
            **{f"text_model.{key}": value for key, value in model.text_model.state_dict().items()},
            **{f"text_projection.{key}": value for key, value in model.text_projection.state_dict().items()},
        }

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        soft_prompt: torch.Tensor | None = None,
        deep_prompts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Projected (unnormalised) text features.

        input_ids: (S, W) tokenized `[BOS] label [EOS] [PAD]...`.
        soft_prompt: optional (S, L, hidden) vectors inserted right after [BOS]; the pooling position moves by L.
        deep_prompts: optional (J, L, hidden), the same for every sequence: prompt i replaces the soft prompt's
            positions at the input of layer i + 1 (ViLT-CLIP's, MaPLe's deep prompts).
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        pool_at = eos_positions(input_ids, self.text_model.config.eos_token_id)
        # Trailing padding is dropped so that a long soft prompt still fits CLIP's 77 positions.
        width = int(pool_at.max()) + 1
        input_ids, attention_mask = input_ids[:, :width], attention_mask[:, :width]
        token_embeds = self.token_embedding(input_ids)  # (S, W, H)
        if soft_prompt is not None:
            prompt_length = soft_prompt.shape[1]
            token_embeds = torch.cat([token_embeds[:, :1], soft_prompt.to(token_embeds.dtype), token_embeds[:, 1:]], 1)
            attention_mask = torch.cat([attention_mask.new_ones(input_ids.shape[0], prompt_length), attention_mask], 1)
            pool_at = pool_at + prompt_length
        max_positions = self.text_model.config.max_position_embeddings
        if token_embeds.shape[1] > max_positions:
            raise ValueError(
                f"Label too long for CLIP's text tower: {token_embeds.shape[1]} tokens (soft prompt included) "
                f"> {max_positions}. Shorten the label or the soft prompt (attribute_length)."
            )
        hidden = self.text_model.embeddings(inputs_embeds=token_embeds)  # (S, W + L, H)
        mask = create_causal_mask(
            config=self.text_model.config, inputs_embeds=hidden, attention_mask=attention_mask, cache=None
        )
        for index, layer in enumerate(self.text_model.encoder.layers):  # CLIPEncoder's loop, open for deep prompts
            if deep_prompts is not None and 0 < index <= len(deep_prompts):
                hidden = place_prompt(hidden, deep_prompts[index - 1], start=1)
            hidden = layer(hidden, mask, is_causal=True)
        hidden = self.text_model.final_layer_norm(hidden)
        pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), pool_at]  # (S, H)
        return self.text_projection(pooled)


class ClipVisionTower(nn.Module):
    """CLIP's vision transformer + visual projection, exposing the layer-wise tokens a temporal branch reads.

    A frame's embedding is its final CLS token through the post-layernorm (`pool_frames`) and the projection
    (`project`); the projection is linear, so a mean of pooled tokens may be taken before it.
    """

    class_tokens = 1  # tokens before the patches in a frame's sequence: CLS

    def __init__(self, config: CLIPVisionConfig, projection_dim: int):
        super().__init__()
        self.vision_model = CLIPVisionModel._from_config(config)
        self.visual_projection = nn.Linear(config.hidden_size, projection_dim, bias=False)

    @property
    def layers(self) -> nn.ModuleList:
        return self.vision_model.encoder.layers

    @staticmethod
    def pretrained_weights(model: nn.Module) -> dict[str, torch.Tensor]:
        """This tower's weights in a `CLIPModel`, under the tower's names."""
        return {
            **{f"vision_model.{key}": value for key, value in model.vision_model.state_dict().items()},
            **{f"visual_projection.{key}": value for key, value in model.visual_projection.state_dict().items()},
        }

    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) frames -> (N, 1 + P, hidden) tokens entering the first encoder layer."""
        embeddings = self.vision_model.embeddings(pixel_values.to(self.visual_projection.weight.dtype))
        return self.vision_model.pre_layrnorm(embeddings)

    def pool_frames(self, tokens: torch.Tensor) -> torch.Tensor:
        """(..., 1 + P, hidden) final tokens of frames -> (..., hidden) their post-layernormed CLS tokens."""
        return self.pool_token(tokens[..., 0, :])

    def pool_token(self, token: torch.Tensor) -> torch.Tensor:
        """(..., hidden) tokens after the last layer -> (..., hidden) through the post-layernorm, as CLS is."""
        return self.vision_model.post_layernorm(token)

    def project(self, pooled: torch.Tensor) -> torch.Tensor:
        """(..., hidden) pooled tokens (or their mean) -> (..., D) unnormalised image embeddings."""
        return self.visual_projection(pooled)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, D) unnormalised image embeddings, exactly `CLIPModel.get_image_features`."""
        hidden = self.embed(pixel_values)
        for layer in self.layers:
            hidden = layer(hidden, None)
        return self.project(self.pool_frames(hidden))
