"""The recipe's AdamW parameter groups (paper supp.: weight decay on new layers only, none on CLIP-initialised ones),
and Open-VCLIP++'s weight averaging (SWA / EMA of the trained weights along training)."""

from __future__ import annotations

from typing import Any

import torch

from ovmlv.modeling_ovmlv import OvmlvModel

WEIGHT_AVERAGING = ("none", "swa", "ema")


def is_gate(name: str) -> bool:
    """The zero-initialised gates that hold a new model at its zero-shot start (`tmp_gate`, `label_gate`, ...)."""
    return name.rsplit(".", 1)[-1].endswith(("_gate", "_gates"))


def is_label_gate(name: str) -> bool:
    """A gate of the label side (`label_encoder.label_gate`), as opposed to the video side's (`tmp_gate`, ...)."""
    return is_gate(name) and name.startswith("label_encoder.")


def is_label_path(name: str) -> bool:
    """A learnt weight of the label encoder other than its gate: prompts, prefixes, connector, LoRA."""
    return name.startswith("label_encoder.") and not is_gate(name)


def parameter_groups(
    model: OvmlvModel,
    weight_decay: float,
    clip_weight_decay: float,
    gate_lr: float | None = None,
    label_gate_lr: float | None = None,
    label_path_lr: float | None = None,
) -> list[dict[str, Any]]:
    """Trainable parameters split by origin; frozen ones never reach the optimizer (no state, no decay, no cost).

    The gates get a group of their own, without weight decay (it would pull them back to the zero-shot start) and
    at `gate_lr` when given: one scalar each, they must travel from 0 to about 1 within a short run, which the new
    layers' rate (a step of about lr per update under Adam) does not do. The label side's gate has a group of its
    own at `label_gate_lr` (default `gate_lr`): the branch's order path needs its gates opened fast, while an open
    label gate lets still-untrained prompts outvote the class name (docs/design.md §4.3). The groups carry a
    `name`, so logs and tests can tell them apart. `label_path_lr` (when given) is the rate of the label encoder's
    other new weights (a group of its own; 0 leaves them out: they keep what text-only alignment taught them, which
    video steps at the new layers' rate undo, docs/design.md §4.4).
    """
    clip_initialised = model.clip_initialised_parameter_names()
    new, from_clip, gates, label_gates, label_path = [], [], [], [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        if is_label_gate(name):
            label_gates.append(parameter)
        elif is_gate(name):
            gates.append(parameter)
        elif label_path_lr is not None and is_label_path(name) and name not in clip_initialised:
            label_path.append(parameter)
        else:
            (from_clip if name in clip_initialised else new).append(parameter)
    if label_path_lr == 0:
        label_path = []
    if not new and not from_clip and not gates and not label_gates and not label_path:
        raise ValueError(
            "The model has no trainable parameters with this configuration (frozen towers and nothing new): "
            "pick a label encoder or temporal branch with new layers, or set learnable_temperature / "
            "freeze_text_tower=false in the `model` section."
        )
    groups = [
        {"name": "new_layers", "params": new, "weight_decay": weight_decay},
        {"name": "clip_initialised", "params": from_clip, "weight_decay": clip_weight_decay},
        {"name": "gates", "params": gates, "weight_decay": 0.0, **_rate(gate_lr)},
        {"name": "label_gates", "params": label_gates, "weight_decay": 0.0, **_rate(label_gate_lr or gate_lr)},
        {"name": "label_path", "params": label_path, "weight_decay": weight_decay, **_rate(label_path_lr)},
    ]
    return [group for group in groups if group["params"]]


def _rate(lr: float | None) -> dict[str, float]:
    """A group's own learning rate, or none (the optimizer's)."""
    return {} if lr is None else {"lr": lr}


class WeightAverage:
    """A running average of the trainable weights along training (Open-VCLIP++'s SWA; or an EMA), applied at the end.

    `"swa"`: the plain mean of the weights after every optimizer step from `start_step` on (Open-VCLIP++ starts
    after the warm-up). `"ema"`: avg <- decay avg + (1 - decay) theta from `start_step` on. Averaging the weights and
    then patching toward CLIP equals patching and then averaging (both are linear), so the test-time patching and
    the weight regulariser compose with it as in that paper. The average lives on the weights' device and is saved
    in checkpoints (`accelerator.register_for_checkpointing`), so a resumed run averages the same steps.
    """

    def __init__(self, model: torch.nn.Module, kind: str, decay: float, start_step: int):
        if kind not in WEIGHT_AVERAGING[1:]:
            raise ValueError(f"weight averaging must be one of {WEIGHT_AVERAGING[1:]}, got {kind!r}.")
        if not 0 < decay < 1:
            raise ValueError(f"optimizer.ema_decay must lie in (0, 1), got {decay}.")
        self.kind, self.decay, self.start_step = kind, decay, start_step
        self.parameters = {name: p for name, p in model.named_parameters() if p.requires_grad}
        self.average = {name: p.detach().clone() for name, p in self.parameters.items()}
        self.count = 0  # steps averaged so far

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Fold in the weights after optimizer step `step` (1-based); steps before `start_step` are skipped."""
        if step < self.start_step:
            return
        self.count += 1
        weight = 1.0 / self.count if self.kind == "swa" or self.count == 1 else 1.0 - self.decay
        for name, parameter in self.parameters.items():
            self.average[name].lerp_(parameter.detach(), weight)

    @torch.no_grad()
    def apply(self) -> None:
        """Put the averaged weights into the model (a no-op before the first averaged step)."""
        if self.count:
            for name, parameter in self.parameters.items():
                parameter.copy_(self.average[name])

    def state_dict(self) -> dict[str, Any]:
        return {"count": torch.tensor(self.count), **{f"average.{name}": v for name, v in self.average.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count = int(state["count"])
        for name, value in self.average.items():
            value.copy_(state[f"average.{name}"])
