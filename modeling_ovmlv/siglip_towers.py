"""The frozen SigLIP and SigLIP 2 towers, with the interface of `clip_towers.py`.

SigLIP differs from CLIP where the method plugs in (docs/design.md, "SigLIP towers"):
- Its text tower reads 64 tokens (the tokenizer pads to that length) with no start token and no attention mask, as it
  was trained, and pools the *last* position. A soft prompt goes right before the text's first token; as many
  padding positions are dropped as the prompt adds, so the sequence keeps 64 positions and the pooled one stays last.
- Its vision tower has no CLS token: it pools a frame's patch tokens with an attention head (a learnt probe query,
  multihead attention, MLP). `pool_frames` is that head; `pool_token` runs it over one token alone, the head's own map
  of a token into the embedding space (the temporal branch's TMP token goes through it).
- There is no separate projection: the heads' outputs are the embeddings.

SigLIP 2 comes in two layouts. The fixed-resolution checkpoints (google/siglip2-base-patch16-224) are `SiglipModel`s
and use these towers as they are. The NaFlex architecture (`Siglip2Model`) reads patches flattened by the processor
with their grid's shape (`spatial_shapes`) and a mask of the valid ones, its learnt position grid resized to each
image's; `Siglip2VisionTower` runs it at one fixed resolution, its native grid (`image_size` = grid x patch size,
`configuration_ovmlv.fixed_resolution`): square frames, every patch valid, no mask.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import (
    PretrainedConfig,
    Siglip2TextModel,
    Siglip2VisionModel,
    SiglipTextConfig,
    SiglipTextModel,
    SiglipVisionConfig,
    SiglipVisionModel,
)

from .clip_towers import TextTower


def insert_soft_prompt(
    token_embeds: torch.Tensor, attention_mask: torch.Tensor | None, soft_prompt: torch.Tensor
) -> torch.Tensor:
    """(S, W, H) token embeddings + (S, L, H) soft prompt -> (S, W, H): the prompt right before each text's first
    token, L padding positions dropped (the last L of right-padded rows, the first L of left-padded ones), so that
    the width, and the last position SigLIP pools, stay where they were.

    attention_mask: (S, W), 1 on the text's tokens; it only says where the padding is (SigLIP attends to all of it).
    """
    if attention_mask is None:
        raise ValueError(
            "A soft prompt for SigLIP's text tower needs the attention_mask (it says where the padding is that the "
            "prompt replaces): build the label inputs with OvmlvProcessor."
        )
    prompt_length, width = soft_prompt.shape[1], token_embeds.shape[1]
    lengths = attention_mask.sum(dim=1)  # (S,)
    if int(lengths.max()) + prompt_length > width:
        raise ValueError(
            f"Label too long for SigLIP's text tower: {int(lengths.max())} tokens + a {prompt_length}-vector soft "
            f"prompt > {width} positions. Shorten the label or the soft prompt (attribute_length / context_length)."
        )
    left_padded = attention_mask[:, -1].bool() & ~attention_mask[:, 0].bool()  # (S,)
    starts = torch.where(left_padded, width - lengths - prompt_length, 0)[:, None]  # (S, 1) where the prompt goes
    slots = torch.arange(width, device=token_embeds.device)[None]  # (1, W)
    # Indices into [prompt ; tokens] (L + W rows): tokens before the prompt, the prompt, the tokens after it.
    after = prompt_length + slots - torch.where(left_padded, 0, prompt_length)[:, None]
    index = torch.where(
        slots < starts,
        prompt_length + slots,
        torch.where(slots < starts + prompt_length, slots - starts, after),
    )  # (S, W)
    combined = torch.cat([soft_prompt.to(token_embeds.dtype), token_embeds], dim=1)  # (S, L + W, H)
    return combined.gather(1, index[..., None].expand(-1, -1, combined.shape[-1]))


class SiglipTextTower(TextTower):
    """SigLIP's text transformer and head, able to take L soft-prompt vectors before the text.

    With no prompt this is exactly `SiglipModel.get_text_features` on the same `input_ids` without an attention mask
    (how SigLIP was trained, and how its tokenizer config feeds it: `model_input_names` is `["input_ids"]`).
    """

    text_model_class: type[nn.Module] = SiglipTextModel

    def __init__(self, config: SiglipTextConfig, projection_dim: int):
        super().__init__()
        self.text_model = self.text_model_class._from_config(config)

    @property
    def dtype(self) -> torch.dtype:
        """The dtype the tower computes in (its weights')."""
        return self.text_model.head.weight.dtype

    @staticmethod
    def pretrained_weights(model: nn.Module) -> dict[str, torch.Tensor]:
        """This tower's weights in a `SiglipModel`, under the tower's names."""
        return {f"text_model.{key}": value for key, value in model.text_model.state_dict().items()}

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        soft_prompt: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Text features (unnormalised).

        input_ids: (S, 64) tokenized labels padded to the tower's length, as SigLIP's tokenizer pads them.
        attention_mask: (S, 64), only read to place a soft prompt (`insert_soft_prompt`).
        soft_prompt: optional (S, L, hidden) vectors put right before the text.
        """
        token_embeds = self.token_embedding(input_ids)  # (S, W, H)
        if soft_prompt is not None:
            token_embeds = insert_soft_prompt(token_embeds, attention_mask, soft_prompt)
        hidden = self.text_model.embeddings(inputs_embeds=token_embeds)
        hidden = self.text_model.encoder(inputs_embeds=hidden).last_hidden_state  # unmasked, as SigLIP was trained
        hidden = self.text_model.final_layer_norm(hidden)
        return self.text_model.head(hidden[:, -1])  # (S, D): the last position, whatever token it holds


class SiglipVisionTower(nn.Module):
    """SigLIP's vision transformer and attention-pooling head, exposing the layer-wise patch tokens."""

    class_tokens = 0  # tokens before the patches in a frame's sequence (CLIP: its CLS)
    vision_model_class: type[nn.Module] = SiglipVisionModel

    def __init__(self, config: SiglipVisionConfig, projection_dim: int):
        super().__init__()
        if not config.vision_use_head:
            raise ValueError(
                "A SigLIP vision tower without its pooling head (vision_use_head=False) has no embedding."
            )
        self.vision_model = self.vision_model_class._from_config(config)

    @property
    def layers(self) -> nn.ModuleList:
        return self.vision_model.encoder.layers

    @staticmethod
    def pretrained_weights(model: nn.Module) -> dict[str, torch.Tensor]:
        """This tower's weights in a `SiglipModel`, under the tower's names."""
        return {f"vision_model.{key}": value for key, value in model.vision_model.state_dict().items()}

    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) frames -> (N, P, hidden) patch tokens entering the first encoder layer."""
        return self.vision_model.embeddings(pixel_values)

    def pool_frames(self, tokens: torch.Tensor) -> torch.Tensor:
        """(..., P, hidden) final tokens of frames -> (..., D) their embeddings: post-layernorm, then the head."""
        flat = tokens.flatten(0, -3)
        pooled = self.vision_model.head(self.vision_model.post_layernorm(flat))
        return pooled.unflatten(0, tokens.shape[:-2])

    def pool_token(self, token: torch.Tensor) -> torch.Tensor:
        """(..., hidden) single tokens -> (..., D): the head attending to that one token (weight 1)."""
        return self.pool_frames(token[..., None, :])

    def project(self, pooled: torch.Tensor) -> torch.Tensor:
        """The heads' outputs are the embeddings already."""
        return pooled

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) -> (N, D) unnormalised image embeddings, exactly `SiglipModel.get_image_features`."""
        hidden = self.embed(pixel_values)
        for layer in self.layers:
            hidden = layer(hidden, None)
        return self.pool_frames(hidden)


class Siglip2TextTower(SiglipTextTower):
    """`Siglip2Model`'s text tower: SigLIP's, under SigLIP 2's class."""

    text_model_class = Siglip2TextModel


def patchify(pixel_values: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(N, C, H, W) -> (N, H/p * W/p, p * p * C): patches in rows, each flattened as SigLIP 2's image processor does
    (rows of pixels, then channels last)."""
    batch, channels, height, width = pixel_values.shape
    grid = pixel_values.view(batch, channels, height // patch_size, patch_size, width // patch_size, patch_size)
    return grid.permute(0, 2, 4, 3, 5, 1).reshape(batch, (height // patch_size) * (width // patch_size), -1)


class Siglip2VisionTower(SiglipVisionTower):
    """`Siglip2Model`'s (NaFlex) vision tower at a fixed resolution: square frames of `image_size`, every patch valid.
    Its head and layers then need no mask, so only the patch embedding differs from SigLIP's."""

    vision_model_class = Siglip2VisionModel

    def __init__(self, config: PretrainedConfig, projection_dim: int):
        super().__init__(config, projection_dim)
        self.patch_size = config.patch_size

    def embed(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) frames -> (N, P, hidden) patch tokens entering the first encoder layer."""
        patches = patchify(pixel_values, self.patch_size)
        grid = (pixel_values.shape[-2] // self.patch_size, pixel_values.shape[-1] // self.patch_size)
        spatial_shapes = torch.tensor([grid], device=pixel_values.device).expand(len(pixel_values), 2)
        return self.vision_model.embeddings(patches, spatial_shapes)
