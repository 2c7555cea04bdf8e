"""Prompt-learning baselines on the frozen CLIP text tower: CoOp and DualCoOp (paper Tables 1-2).

CoOp (Zhou et al., IJCV 2022): M context vectors in CLIP's token-embedding space, shared by every label and learnt
end to end; the text tower reads `[BOS] ctx_1..ctx_M label [EOS]` and pools at the EOS, moved by M.

DualCoOp (Sun et al., NeurIPS 2022): a positive and a negative context, so each label gets two features f_pos(l)
and f_neg(l); a label's probability is the softmax over (s_pos, s_neg) / tau taken at the positive, which equals
sigmoid((s_pos - s_neg) / tau). In this package's API f_t(l) is the concatenation [f_pos(l); f_neg(l)] of two unit
vectors, (C, 2D) (`config.label_embedding_dim`), and `OvmlvModel.logits` scores it as f_v . (f_pos - f_neg) / tau + b:
label banks, the pipeline, evaluation and the loss pass label embeddings through untouched, so they work unchanged.
DualCoOp's region-level evidence aggregation (for images of several objects) is not reproduced: the video side is
the same global f_v(v) as in every other method.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import initialization as init

from .configuration_ovmlv import OvmlvConfig
from .label_encoder import LabelEncoder

# CoOp's random context init: N(0, 0.02^2), the scale of CLIP's token embeddings.
CONTEXT_INIT_STD = 0.02


class PromptLearningLabelEncoder(LabelEncoder):
    """Base of CoOp and DualCoOp: learnable contexts (each (M, width)) read before the bare label's tokens.

    `contexts()` names each context parameter and its optional init phrase. Random init happens in the model's
    weight-init pass (`init_contexts`); a phrase's token embeddings are copied in `init_from_towers`, from the
    pretrained token table, into the context's last positions (nearest the label), the rest staying random.
    """

    def __init__(self, config: OvmlvConfig):
        super().__init__(config)
        self.context_shape = (config.label_encoder_config.context_length, self.text_tower.hidden_size)

    def contexts(self) -> dict[str, str | None]:
        """Context parameter name -> the phrase that initialises it (None: random)."""
        raise NotImplementedError

    def init_contexts(self) -> None:
        for name in self.contexts():
            init.normal_(getattr(self, name), std=CONTEXT_INIT_STD)

    def init_from_towers(self) -> None:
        phrases = {name: phrase for name, phrase in self.contexts().items() if phrase}
        if not phrases:
            return
        tokenizer = self.tokenizer_sources.clip.load()
        table = self.text_tower.token_embedding.weight
        with torch.no_grad():
            for name, phrase in phrases.items():
                ids = tokenizer(phrase, add_special_tokens=False)["input_ids"]
                context = getattr(self, name)
                if not 1 <= len(ids) <= len(context):
                    raise ValueError(
                        f"Context init phrase {phrase!r} is {len(ids)} tokens; it must fit context_length="
                        f"{len(context)} (and not be empty)."
                    )
                context[len(context) - len(ids) :] = table[ids]

    def encode_with_contexts(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, contexts: list[torch.Tensor]
    ) -> torch.Tensor:
        """(C, W) bare-label tokens and G contexts (each (M, width)) -> (G, C, D) unit-norm features, one CLIP pass."""
        num_labels, num_contexts = input_ids.shape[0], len(contexts)
        soft_prompt = torch.stack(contexts)[:, None].expand(-1, num_labels, -1, -1)  # (G, C, M, width)
        mask = None if attention_mask is None else attention_mask.repeat(num_contexts, 1)
        features = self.text_tower(input_ids.repeat(num_contexts, 1), mask, soft_prompt=soft_prompt.flatten(0, 1))
        return F.normalize(features, dim=-1).view(num_contexts, num_labels, -1)


class CoOpLabelEncoder(PromptLearningLabelEncoder):
    """CoOp: f_t(l) = CLIP text of `[BOS] ctx label [EOS]`, one context of M vectors shared by all labels.

    Trainable: `context` only (the text tower stays frozen unless `freeze_text_tower=False`).
    """

    def __init__(self, config: OvmlvConfig):
        super().__init__(config)
        self.context = nn.Parameter(torch.zeros(self.context_shape))

    def contexts(self) -> dict[str, str | None]:
        return {"context": self.config.label_encoder_config.context_init}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.encode_with_contexts(input_ids, attention_mask, [self.context])[0]  # (C, D)


class DualCoOpLabelEncoder(PromptLearningLabelEncoder):
    """DualCoOp: f_t(l) = [f_pos(l); f_neg(l)], (C, 2D), from a positive and a negative shared context.

    Trainable: `positive_context` and `negative_context`. `context_init` starts the positive one,
    `negative_context_init` the negative one.
    """

    def __init__(self, config: OvmlvConfig):
        super().__init__(config)
        self.positive_context = nn.Parameter(torch.zeros(self.context_shape))
        self.negative_context = nn.Parameter(torch.zeros(self.context_shape))

    def contexts(self) -> dict[str, str | None]:
        return {
            "positive_context": self.config.label_encoder_config.context_init,
            "negative_context": self.config.label_encoder_config.negative_context_init,
        }

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        positive, negative = self.encode_with_contexts(
            input_ids, attention_mask, [self.positive_context, self.negative_context]
        )
        return torch.cat([positive, negative], dim=-1)  # (C, 2D)
