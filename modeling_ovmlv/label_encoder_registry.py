"""Every label encoder f_t by the name `OvmlvConfig.label_encoder` takes: its class and what it is.

The one registry of classes: the model builds from it, model cards describe from it. The configuration validates
against the names alone (`configuration_ovmlv.LABEL_ENCODER_NAMES`, with which need an LLM or pair their
embeddings), so that it imports none of these classes; a test holds the two to the same names.
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


LABEL_ENCODERS: dict[str, LabelEncoderKind] = {
    "class_name": LabelEncoderKind(ClassNameLabelEncoder, "the CLIP text embedding of the bare label"),
    "templates": LabelEncoderKind(
        TemplateEnsembleLabelEncoder, "the mean CLIP text embedding over a prompt-template ensemble"
    ),
    "llm_prompted": LabelEncoderKind(
        LlmPromptedLabelEncoder,
        "learnable LLM prompts: a frozen Flan-T5 decodes soft attributes that a prompt transformer turns into soft "
        "prompts for the frozen CLIP text tower (the paper's method)",
    ),
    "llm_fixed": LabelEncoderKind(
        LlmFixedPromptLabelEncoder,
        "fixed LLM prompts: CLIP text embeddings of the label with LLM-generated descriptors",
    ),
    "coop": LabelEncoderKind(
        CoOpLabelEncoder, "CoOp: learnt context vectors before the label, read by the frozen CLIP text tower"
    ),
    "dualcoop": LabelEncoderKind(
        DualCoOpLabelEncoder,
        "DualCoOp: a learnt positive and a learnt negative context; a label's probability is the softmax over the "
        "two at the positive",
    ),
    "vilt_clip": LabelEncoderKind(
        ViltClipLabelEncoder,
        "ViLT-CLIP: the label read by the frozen CLIP text tower with learnt prompts in every layer, coupled by "
        "learnt linear maps to the prompts the vision tower reads",
    ),
}
