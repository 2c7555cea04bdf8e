"""How long a label may be: one rule for every label encoder, checked where labels come in.

A label must fit CLIP's text context (77 positions) together with what its encoder adds: [BOS] and [EOS], plus the
soft prompt (`attribute_length` vectors for the LLM-prompted encoder, `context_length` for CoOp and DualCoOp) or,
for the template ensemble, the longest template's words. Labels that do not fit are rejected before any work starts
(a pipeline call, a label bank, a training or validation vocabulary), never truncated: a cut label would silently be
another label, and two long ones could become the same.
"""

from __future__ import annotations

from collections.abc import Sequence

# The config field holding the length of the soft prompt each encoder inserts after [BOS] (none for the others).
SOFT_PROMPT_LENGTH_FIELD = {"llm_prompted": "attribute_length", "coop": "context_length", "dualcoop": "context_length"}
_SHOWN = 3  # offending labels quoted in the error


def text_context_length(processor, config) -> int:
    """Positions of CLIP's text tower (some tokenizers report a far larger model_max_length)."""
    return min(processor.tokenizer.model_max_length, config.text_config.max_position_embeddings)


def label_token_counts(labels: Sequence[str], processor, config) -> list[int]:
    """Text-tower positions each label takes: its CLIP tokens with [BOS] and [EOS], plus the encoder's prompt."""
    tokenize = dict(truncation=False, verbose=False)  # counting: no truncation, no warning about the length
    if config.label_encoder == "templates":
        templates = processor.prompt_templates
        prompts = [template.format(label=label) for label in labels for template in templates]
        lengths = [len(ids) for ids in processor.tokenizer(prompts, **tokenize)["input_ids"]]
        return [max(lengths[i : i + len(templates)]) for i in range(0, len(lengths), len(templates))]
    field = SOFT_PROMPT_LENGTH_FIELD.get(config.label_encoder)
    prompt_length = getattr(config.label_encoder_config, field) if field else 0
    return [len(ids) + prompt_length for ids in processor.tokenizer(list(labels), **tokenize)["input_ids"]]


def check_label_lengths(labels: Sequence[str], processor, config, where: str = "candidate_labels") -> None:
    """Raise ValueError naming the labels of `where` that do not fit the text tower with the encoder's prompt."""
    if not labels:
        return
    limit = text_context_length(processor, config)
    too_long = [
        (label, count)
        for label, count in zip(labels, label_token_counts(labels, processor, config), strict=True)
        if count > limit
    ]
    if too_long:
        field = SOFT_PROMPT_LENGTH_FIELD.get(config.label_encoder)
        prompt = f"its {getattr(config.label_encoder_config, field)}-vector soft prompt" if field else "its prompt"
        shown = "; ".join(
            f"{label[:60]!r}{'...' if len(label) > 60 else ''} needs {count}" for label, count in too_long[:_SHOWN]
        )
        raise ValueError(
            f"{len(too_long)} label(s) in {where} are too long for CLIP's text tower: with the {config.label_encoder} "
            f"encoder ([BOS], [EOS] and {prompt} included) a label may take {limit} positions; {shown}"
            f"{'; ...' if len(too_long) > _SHOWN else ''}. Shorten them (a label is a short phrase, not a caption)."
        )
