"""ViLT-CLIP's label encoder (Wang et al., AAAI 2024): the bare label read by CLIP's frozen text tower with the deep
text prompts that `deep_prompts.DeepPrompts` shares with the vision tower, and its scenario-guided loss.

The prompts belong to the model, not to this encoder: the first layers' vision prompts are made from the text
prompts, so the video side needs them too, also in a fixed-vocabulary export that has no label encoder. The model
hands this encoder its text prompts at every call.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .label_encoder import LabelEncoder, template_ensemble
from .loss import scenario_guided_loss


class ViltClipLabelEncoder(LabelEncoder):
    """f_t(l) = CLIP text of `[BOS] P label [EOS]`, P replaced by each prompted layer's own text prompt.

    Nothing of its own trains; its training loss also reads the label's prompt-template tokens, whose frozen
    embedding is the scenario-guided loss's reference.
    """

    loss_input_names = ("prompt_input_ids", "prompt_attention_mask")

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, layer_prompts: torch.Tensor
    ) -> torch.Tensor:
        """(C, W) bare-label tokens and (J, b, width) text prompts -> (C, D) unit-norm label embeddings."""
        soft_prompt = layer_prompts[0].expand(input_ids.shape[0], -1, -1)  # (C, b, width) enters with the tokens
        features = self.text_tower(input_ids, attention_mask, soft_prompt=soft_prompt, deep_prompts=layer_prompts[1:])
        return F.normalize(features, dim=-1)

    def scenario_loss(
        self,
        label_embeds: torch.Tensor,
        prompt_input_ids: torch.Tensor | None,
        prompt_attention_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """The squared distance from the (C, D) learnt label embeddings to the frozen tower's embeddings of the same
        labels in the processor's prompt templates ((C, M, W) tokens; one template "a video of a {label}." is the
        paper's form, the default ensemble includes it)."""
        if prompt_input_ids is None:
            raise ValueError(
                "ViLT-CLIP's scenario-guided loss needs prompt_input_ids: make the label inputs with OvmlvProcessor "
                "(label_input_names including the encoder's loss_input_names), or set scenario_loss_weight=0."
            )
        with torch.no_grad():
            reference = template_ensemble(self.text_tower, prompt_input_ids, prompt_attention_mask)
        return scenario_guided_loss(label_embeds, reference)
