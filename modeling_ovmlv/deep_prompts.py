"""ViLT-CLIP's deep prompts (Wang et al., AAAI 2024): learnt tokens at the input of each of both towers' first J
layers, the two towers' prompts tied by learnt linear maps.

In each prompted layer i < J the text tower reads b prompt tokens right after [BOS] and the vision tower b prompt
tokens after each frame's patches; they replace what the previous layer made of the prompts (VPT-Deep, MaPLe), and
after layer J the prompt outputs travel through the remaining layers. The coupling is bidirectional: in the first K
layers the text prompts are learnt and the vision prompts are a linear map of them, F(P_i); in layers K..J-1 the
vision prompts are learnt and the text prompts are a linear map of them, F~(P~_i). One F and one F~ serve all their
layers, as the paper's "single linear network" (docs/design.md, "ViLT-CLIP").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import initialization as init

from .configuration_ovmlv import OvmlvConfig

# VPT's and MaPLe's init of prompt tokens: N(0, 0.02^2).
PROMPT_INIT_STD = 0.02


def place_prompt(hidden: torch.Tensor, prompt: torch.Tensor, start: int) -> torch.Tensor:
    """(S, W, H) tokens with a (L, H) prompt, shared by all S sequences, at positions start..start+L-1.

    Where the sequence already holds the previous layer's prompt outputs there, they are replaced; a sequence of
    only `start` tokens gets the prompt appended.
    """
    prompt = prompt.to(device=hidden.device, dtype=hidden.dtype).expand(hidden.shape[0], -1, -1)
    return torch.cat([hidden[:, :start], prompt, hidden[:, start + prompt.shape[1] :]], dim=1)


@dataclass
class LayerPrompts:
    """The prompts each prompted layer reads: text (J, b, text width), vision (J, b, vision width)."""

    text: torch.Tensor
    vision: torch.Tensor


class DeepPrompts(nn.Module):
    """The learnt prompts and the two maps between the towers' widths; calling it gives every layer's prompts.

    Trainable: `text_prompts` (the first K layers'), `vision_prompts` (layers K..J-1), `text_to_vision` (F) and
    `vision_to_text` (F~). The prompts are read only inside `forward`, so ZeRO-3 gathers them there.
    """

    def __init__(self, config: OvmlvConfig):
        super().__init__()
        length, depth, text_led = (
            config.label_encoder_config.deep_prompt_length,
            config.deep_prompt_layers,
            config.text_led_prompt_layers,
        )
        text_width, vision_width = config.text_config.hidden_size, config.vision_config.hidden_size
        self.text_prompts = nn.Parameter(torch.zeros(text_led, length, text_width))
        self.vision_prompts = nn.Parameter(torch.zeros(depth - text_led, length, vision_width))
        self.text_to_vision = nn.Linear(text_width, vision_width)
        self.vision_to_text = nn.Linear(vision_width, text_width)

    def init_prompts(self) -> None:
        init.normal_(self.text_prompts, std=PROMPT_INIT_STD)
        init.normal_(self.vision_prompts, std=PROMPT_INIT_STD)

    def forward(self) -> LayerPrompts:
        return LayerPrompts(
            text=torch.cat([self.text_prompts, self.vision_to_text(self.vision_prompts)]),  # (J, b, text width)
            vision=torch.cat([self.text_to_vision(self.text_prompts), self.vision_prompts]),  # (J, b, vision width)
        )
