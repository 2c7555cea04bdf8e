"""Test-time interpolation on the label side (WiSE-FT; Open-VCLIP's curve), beside the vision branch's patching.

A trained LLM-prompted label encoder is mixed with the frozen class-name embedding it started from:
f_r(l) = normalize((1 - r) f_t(l) + r f_class_name(l)) (`OvmlvDeploymentConfig.label_interpolation`). r = 0 is the
trained model, r = 1 exactly frozen CLIP's class names. `ovmlv evaluate --label-interpolation` scores every set at each r of
a grid, from the videos' embeddings of its one pass (the video side does not depend on r), reports the curve,
and picks the r with the best mean macro AUPR over the calibrating sets; the deployment threshold is then
calibrated at that r and both are saved together.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from ovmlv.modeling_ovmlv import OvmlvModel
from ovmlv.modeling_ovmlv.label_bank import embed_labels, label_slot_rows
from ovmlv.modeling_ovmlv.llm_label_encoder import interpolate_label_embeddings
from ovmlv.processing import OvmlvProcessor

from .metrics import multilabel_report

RATIOS = (0.0, 0.25, 0.5, 0.75, 1.0)


@contextmanager
def label_interpolation(model: OvmlvModel, ratio: float) -> Iterator[None]:
    """The model's label encoder at interpolation `ratio` for the duration (its saved ratio restored after)."""
    saved = model.config.deployment_config.label_interpolation
    model.config.deployment_config.label_interpolation = ratio
    try:
        yield
    finally:
        model.config.deployment_config.label_interpolation = saved


def check_interpolatable(model: OvmlvModel) -> None:
    """Only the LLM-prompted label encoder has a learnt and a frozen embedding of the same label to mix."""
    if model.config.label_encoder != "llm_prompted":
        raise ValueError(
            f"--label-interpolation needs a model with label_encoder='llm_prompted'; this one has "
            f"{model.config.label_encoder!r}, whose label embeddings have no frozen counterpart to mix with."
        )


@dataclass
class InterpolationSet:
    """What the curve needs of one evaluated set: its labels, targets and the videos' embeddings."""

    name: str
    labels: list[str]
    targets: np.ndarray  # (N, C) bool
    video_embeds: torch.Tensor  # (N, D)
    calibrate: bool


@dataclass
class InterpolationCurve:
    ratios: list[float]
    aupr_macro: dict[str, list[float]]  # per set, one figure per ratio
    chosen: float | None  # best mean macro AUPR over the calibrating sets; None without one
    scores: dict[str, list[np.ndarray]]  # per set, (N, C) probabilities per ratio

    def as_dict(self) -> dict:
        return {"ratios": self.ratios, "aupr_macro": self.aupr_macro, "chosen": self.chosen}


@torch.no_grad()
def interpolation_curve(
    model: OvmlvModel,
    processor: OvmlvProcessor,
    sets: Sequence[InterpolationSet],
    batch_size: int,
    ratios: Sequence[float] = RATIOS,
) -> InterpolationCurve:
    """Every set scored at every ratio; the learnt (r = 0) and frozen (r = 1) label embeddings encoded once each, the
    category members (if any) asked of the LLM once for both."""
    check_interpolatable(model)
    model.eval()
    aupr, scores = {}, {}
    dim, codes = model.config.projection_dim, model.config.direction_dims
    for item in sets:
        rows = label_slot_rows(item.labels, model, processor) if model.config.category_member_slots else None
        with label_interpolation(model, 0.0):
            learnt = embed_labels(item.labels, model, processor, batch_size, slot_rows=rows)
        with label_interpolation(model, 1.0):
            frozen = embed_labels(item.labels, model, processor, batch_size, slot_rows=rows)
        video = item.video_embeds.to(learnt.device, learnt.dtype)
        scores[item.name] = [
            model.logits(video, interpolate_label_embeddings(learnt, frozen, ratio, dim, codes))
            .sigmoid()
            .float()
            .cpu()
            .numpy()
            for ratio in ratios
        ]
        aupr[item.name] = [float(multilabel_report(item.targets, s)["aupr_macro"]) for s in scores[item.name]]
    calibrating = [item.name for item in sets if item.calibrate]
    chosen = None
    if calibrating:
        means = np.nanmean([aupr[name] for name in calibrating], axis=0)
        chosen = float(ratios[int(np.nanargmax(means))])  # the first best: the least frozen of equals
    return InterpolationCurve(list(map(float, ratios)), aupr, chosen, scores)


def curve_markdown(curve: InterpolationCurve) -> str:
    """The curve as a Markdown table: one row per set, one column per ratio."""
    header = "| set | " + " | ".join(f"r = {ratio:g}" for ratio in curve.ratios) + " |"
    lines = [
        "Label-side interpolation (macro AUPR; r = 0 the trained label encoder, r = 1 frozen class names)"
        + ("" if curve.chosen is None else f"; chosen on the calibrating sets: r = {curve.chosen:g}"),
        "",
        header,
        "|" + "---|" * (len(curve.ratios) + 1),
    ]
    for name, figures in curve.aupr_macro.items():
        lines.append(f"| {name} | " + " | ".join(f"{figure:.3f}" for figure in figures) + " |")
    return "\n".join(lines)
