"""LLM -> CLIP connectors: each turns a soft attribute (L decoder states) into a soft prompt (L CLIP token vectors).

`PromptTransformer` is the paper's; `MlpConnector` and `LinearConnector` are the Table 10 ablations. All map
(..., L, d_model) to (..., L, CLIP text width) and are the only new layers between the two frozen towers.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import initialization as init
from transformers.models.clip.modeling_clip import CLIPEncoderLayer

from .configuration_ovmlv import OvmlvConfig
from .towers import embedding_init_std


class LinearConnector(nn.Module):
    """One linear map per vector, d_model -> CLIP width (Table 10, "Linear")."""

    def __init__(self, config: OvmlvConfig):
        super().__init__()
        self.proj = nn.Linear(config.llm_config.d_model, config.text_config.hidden_size)

    def forward(self, soft_attributes: torch.Tensor) -> torch.Tensor:
        return self.proj(soft_attributes)


class MlpConnector(nn.Module):
    """Linear, GELU, linear per vector (Table 10, "MLP"); the hidden width is CLIP's text MLP width."""

    def __init__(self, config: OvmlvConfig):
        super().__init__()
        text = config.text_config
        self.mlp = nn.Sequential(
            nn.Linear(config.llm_config.d_model, text.intermediate_size),
            nn.GELU(),
            nn.Linear(text.intermediate_size, text.hidden_size),
        )

    def forward(self, soft_attributes: torch.Tensor) -> torch.Tensor:
        return self.mlp(soft_attributes)


class PromptTransformer(nn.Module):
    """Linear d_model -> CLIP width, then a small pre-norm transformer encoder over the L vectors of one attribute.

    The layers are CLIP text encoder layers (`CLIPEncoderLayer`: CLIP's width, heads, MLP and activation, attending
    both ways here), so the soft prompt is built in the space it is read in, through transformers' attention
    interface and with modules that are called, never read (offload and ZeRO-3 hooks gather on a call).
    Learned positions (L, width) tell the L vectors apart (the transformer alone is order-blind). No dropout: the
    paper names none, and it keeps label embeddings deterministic in training mode.
    """

    def __init__(self, config: OvmlvConfig):
        super().__init__()
        text = config.text_config
        self.proj = nn.Linear(config.llm_config.d_model, text.hidden_size)
        self.positions = nn.Parameter(torch.zeros(config.label_encoder_config.attribute_length, text.hidden_size))
        self.position_init_std = embedding_init_std(text)
        self.layers = nn.ModuleList(
            CLIPEncoderLayer(text) for _ in range(config.label_encoder_config.prompt_transformer_layers)
        )
        self.norm = nn.LayerNorm(text.hidden_size, eps=text.layer_norm_eps)

    @torch.no_grad()
    def init_weights(self, token_embeddings: torch.Tensor) -> None:
        """Positions at CLIP's embedding scale, and the output norm's gain at the words' (`match_token_scale`)."""
        init.normal_(self.positions, std=self.position_init_std)
        self.match_token_scale(token_embeddings)

    @torch.no_grad()
    def match_token_scale(self, token_embeddings: torch.Tensor) -> None:
        """Start the output norm's gain at the RMS of CLIP's token embeddings (V, width).

        A LayerNorm output has unit RMS per element, tens of times CLIP's word vectors (initialised at std 0.02):
        prompts at that scale drown the label's own tokens in CLIP's attention, every label gets nearly the same
        feature (seen on the tiny towers), and training learns only the label prior. At the words' scale the label
        stays readable from the start.
        """
        rms = token_embeddings.float().pow(2).mean().sqrt()
        init.copy_(self.norm.weight, rms.expand_as(self.norm.weight))

    def forward(self, soft_attributes: torch.Tensor) -> torch.Tensor:
        """(A, L, d_model) soft attributes -> (A, L, width) soft prompts."""
        hidden = self.proj(soft_attributes) + self.positions[: soft_attributes.shape[-2]]
        for layer in self.layers:
            hidden = layer(hidden, None)  # no mask: every vector of the attribute attends to every other
        return self.norm(hidden)


CONNECTOR_CLASSES: dict[str, type[nn.Module]] = {
    "prompt_transformer": PromptTransformer,
    "mlp": MlpConnector,
    "linear": LinearConnector,
}
