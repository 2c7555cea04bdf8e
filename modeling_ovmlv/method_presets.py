"""Named methods -> `OvmlvConfig` overrides: the paper's model and its baselines (Tables 1-2) in one table.

A method fixes what makes it that method (the label encoder, the temporal branch, which CLIP towers train);
every other field keeps its `OvmlvConfig` default. Explicit fields given beside a method win over its preset, so
`method="ovmlv", temporal_layers=2` is the paper's model with a shallower branch; only the label encoder may not
be overridden (it is what the method is; `allowed_label_encoders`), and `OvmlvConfig` checks that. The chosen name
is saved in the config (`config.method`), so a saved model says what it is.

ViFi-CLIP's own prompt is "a photo of a {}.": run `method="vifi_clip", label_encoder="templates"` with a processor
of that one template (`OvmlvProcessor.from_towers(clip, prompt_templates=["a photo of a {label}."])`).

| method            | label_encoder  | temporal_layers | trains                                         |
|-------------------|----------------|-----------------|------------------------------------------------|
| ovmlv             | llm_prompted   | 4               | LLM prefixes + prompt transformer + branch     |
| ovmlv_no_temporal | llm_prompted   | 0               | LLM prefixes + prompt transformer              |
| class_name        | class_name     | 0               | nothing (zero-shot CLIP)                       |
| templates         | templates      | 0               | nothing (zero-shot CLIP, template ensemble)    |
| llm_fixed         | llm_fixed      | 0               | nothing (zero-shot CLIP + fixed LLM prompts)   |
| coop              | coop           | 0               | 4 shared context vectors ("a video of a")      |
| dualcoop          | dualcoop       | 0               | positive and negative context vectors          |
| vifi_clip         | class_name (*) | 0               | both CLIP towers (all their weights)           |
| vilt_clip         | vilt_clip      | 0               | deep text + vision prompts, their linear maps  |

ViLT-CLIP (Wang et al. 2024) runs on CLIP towers only: b = 10 prompt tokens in every layer both towers have, the
vision prompts of the first half mapped from the text prompts and the text prompts of the second half mapped from
the vision prompts, plus the scenario-guided loss toward the frozen template embeddings (`deep_prompts.py`,
`vilt_clip.py`).
"""

from __future__ import annotations

from typing import Any

_FROZEN = {"freeze_text_tower": True, "freeze_vision_backbone": True}

METHOD_PRESETS: dict[str, dict[str, Any]] = {
    # The paper: learnable LLM prompts + the parallel temporal branch (with its weight regulariser).
    "ovmlv": {"label_encoder": "llm_prompted", "temporal_layers": 4, **_FROZEN},
    "ovmlv_no_temporal": {"label_encoder": "llm_prompted", "temporal_layers": 0, **_FROZEN},
    # Zero-shot CLIP rows: frame mean pooling, nothing to train.
    "class_name": {"label_encoder": "class_name", "temporal_layers": 0, **_FROZEN},
    "templates": {"label_encoder": "templates", "temporal_layers": 0, **_FROZEN},
    "llm_fixed": {"label_encoder": "llm_fixed", "temporal_layers": 0, **_FROZEN},
    # CoOp (Zhou et al. 2022) with its paper's template init: 4 context vectors from the words of "a video of a"
    # (4 tokens in CLIP's BPE), so it starts at that template's zero-shot. DualCoOp (Sun et al. 2022): 16 random
    # context vectors each, its paper's init.
    "coop": {
        "label_encoder": "coop",
        "context_length": 4,
        "context_init": "a video of a",
        "temporal_layers": 0,
        **_FROZEN,
    },
    "dualcoop": {"label_encoder": "dualcoop", "context_length": 16, "temporal_layers": 0, **_FROZEN},
    # ViFi-CLIP (Rasheed et al. 2023): both towers fine-tuned, frames mean-pooled, class-name prompt.
    "vifi_clip": {
        "label_encoder": "class_name",
        "temporal_layers": 0,
        "freeze_text_tower": False,
        "freeze_vision_backbone": False,
    },
    # ViLT-CLIP (Wang et al. 2024): deep prompts in both frozen towers, coupled; frames mean-pooled; the paper's
    # few-shot setting (10 tokens in every layer, K = N/2) from the config defaults, random N(0, 0.02) prompts.
    "vilt_clip": {"label_encoder": "vilt_clip", "temporal_layers": 0, **_FROZEN},
}
METHODS = tuple(METHOD_PRESETS)
# Label encoders a method may run with besides its preset's: ViFi-CLIP's "a photo of a {}." is a one-template ensemble.
ALTERNATIVE_LABEL_ENCODERS: dict[str, tuple[str, ...]] = {"vifi_clip": ("templates",)}


def allowed_label_encoders(method: str) -> tuple[str, ...]:
    """The label encoders that keep `method` what it is: its preset's, then any alternative."""
    return (METHOD_PRESETS[method]["label_encoder"], *ALTERNATIVE_LABEL_ENCODERS.get(method, ()))


def method_overrides(method: str | None, **overrides: Any) -> dict[str, Any]:
    """`OvmlvConfig` keyword arguments for `method`: its preset, then `overrides` on top, and `method` itself.

    `method=None` returns `overrides` unchanged (a hand-made configuration, recorded as `method=None`).
    """
    if method is None:
        return dict(overrides)
    if method not in METHOD_PRESETS:
        raise ValueError(f"method={method!r} is not one of {METHODS}.")
    return {**METHOD_PRESETS[method], **overrides, "method": method}
