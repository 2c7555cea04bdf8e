"""The recipe's AdamW parameter groups (paper supp.): weight decay on new layers only, none on CLIP-initialised ones."""

from __future__ import annotations

from typing import Any

from ovmlv.modeling_ovmlv import OvmlvModel


def parameter_groups(model: OvmlvModel, weight_decay: float, clip_weight_decay: float) -> list[dict[str, Any]]:
    """Trainable parameters split by origin; frozen ones never reach the optimizer (no state, no decay, no cost).

    The groups carry a `name`, so logs and tests can tell them apart.
    """
    clip_initialised = model.clip_initialised_parameter_names()
    new, from_clip = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (from_clip if name in clip_initialised else new).append(parameter)
    if not new and not from_clip:
        raise ValueError(
            "The model has no trainable parameters with this configuration (frozen towers and nothing new): "
            "pick a label encoder or temporal branch with new layers, or set learnable_temperature / "
            "freeze_text_tower=false in the `model` section."
        )
    groups = [
        {"name": "new_layers", "params": new, "weight_decay": weight_decay},
        {"name": "clip_initialised", "params": from_clip, "weight_decay": clip_weight_decay},
    ]
    return [group for group in groups if group["params"]]
