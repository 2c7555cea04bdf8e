"""A model folder as a training run leaves it, for the export, CLI and app tests."""

from __future__ import annotations

from pathlib import Path

from ovmlv.modeling_ovmlv import LabelBank, OvmlvModel

VOCABULARY = ["dog", "beach", "surfing", "red circle"]


def save_trained_folder(folder: Path, towers, processor, labels: list[str] | None = None) -> Path:
    """Model (tiny towers, class-name labels) + processor; a label bank of `labels` when given.

    threshold=0.0 so every label shows in default pipeline output: random towers give tiny scores.
    """
    model = OvmlvModel.from_towers(clip=towers.clip, label_encoder="class_name", temporal_layers=0, threshold=0.0)
    if labels is not None:
        model.label_bank = LabelBank.build(model, processor, labels, progress=False)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
