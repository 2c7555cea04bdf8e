"""Every label encoder f_t by the name `OvmlvConfig.label_encoder` takes: its class, what it is, what it needs.

The one registry: the config validates against it, the model builds from it, model cards describe from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from .fixed_llm_prompts import LlmFixedPromptLabelEncoder
from .label_encoder import ClassNameLabelEncoder, LabelEncoder, TemplateEnsembleLabelEncoder
from .llm_label_encoder import LlmPromptedLabelEncoder
from .prompt_learning import CoOpLabelEncoder, DualCoOpLabelEncoder
from .vilt_clip import ViltClipLabelEncoder


@dataclass(frozen=True)
class LabelEncoderKind:
    encoder: type[LabelEncoder]
    description: str  # for model cards: what f_t(l) is
    needs_llm: bool = False  # owns a T5 (`OvmlvConfig.llm_config` must be set)
    paired: bool = False  # f_t(l) is a (positive; negative) pair, 2D wide, scored as their difference
    deep_prompts: bool = False  # both towers read the model's layer-wise prompts (`deep_prompts.DeepPrompts`)


LABEL_ENCODERS: dict[str, LabelEncoderKind] = {
    "class_name": LabelEncoderKind(ClassNameLabelEncoder, "the CLIP text embedding of the bare label"),
    "templates": LabelEncoderKind(
        TemplateEnsembleLabelEncoder, "the mean CLIP text embedding over a prompt-template ensemble"
    ),
    "llm_prompted": LabelEncoderKind(
        LlmPromptedLabelEncoder,
        "learnable LLM prompts: a frozen Flan-T5 decodes soft attributes that a prompt transformer turns into soft "
        "prompts for the frozen CLIP text tower (the paper's method)",
        needs_llm=True,
    ),
    "llm_fixed": LabelEncoderKind(
        LlmFixedPromptLabelEncoder,
        "fixed LLM prompts: CLIP text embeddings of the label with LLM-generated descriptors",
        needs_llm=True,
    ),
    "coop": LabelEncoderKind(
        CoOpLabelEncoder, "CoOp: learnt context vectors before the label, read by the frozen CLIP text tower"
    ),
    "dualcoop": LabelEncoderKind(
        DualCoOpLabelEncoder,
        "DualCoOp: a learnt positive and a learnt negative context; a label's probability is the softmax over the "
        "two at the positive",
        paired=True,
    ),
    "vilt_clip": LabelEncoderKind(
        ViltClipLabelEncoder,
        "ViLT-CLIP: the label read by the frozen CLIP text tower with learnt prompts in every layer, coupled by "
        "learnt linear maps to the prompts the vision tower reads",
        deep_prompts=True,
    ),
}
