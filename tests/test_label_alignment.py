"""Text-only alignment of the LLM-prompted label encoder: it moves the learnt path toward CLIP's reading of the
LLM's answers and nothing else, so the model still scores exactly as its zero-shot start."""

from __future__ import annotations

import pytest
import torch

from ovmlv.modeling_ovmlv import OvmlvModel
from ovmlv.modeling_ovmlv.label_bank import embed_labels
from ovmlv.training.config import LabelAlignmentConfig, TrainConfig
from ovmlv.training.label_alignment import align_label_encoder, alignment_key, alignment_targets

LABELS = ["red circle", "blue square", "moving left", "green ring", "striped background"]
TINY = {"num_prefixes": 1, "num_attributes": 1, "attribute_length": 2, "prompt_transformer_layers": 1}


def test_alignment_moves_the_learnt_path_toward_its_targets_and_keeps_the_zero_shot_start(
    towers, processor, one_thread
) -> None:
    torch.manual_seed(0)
    model = OvmlvModel.from_towers(towers.clip, towers.llm, method="ovmlv", temporal_layers=0, **TINY)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    settings = LabelAlignmentConfig(text_steps=8, labels_per_step=4)
    report = align_label_encoder(model, processor, LABELS, settings, lr=1e-2, seed=0, progress=False)

    assert report.steps == 8 and report.labels == len(LABELS)
    assert report.cosine_after > report.cosine_before
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert changed and changed < trainable  # only weights the video steps would train moved
    assert "label_encoder.label_gate" not in changed  # the gate decides later, from videos
    class_names = OvmlvModel.from_towers(towers.clip, towers.llm, method="class_name", temporal_layers=0).eval()
    learnt, frozen = (embed_labels(LABELS, m.eval(), processor) for m in (model, class_names))
    assert torch.nn.functional.cosine_similarity(learnt, frozen).min() >= 0.9999


def test_targets_are_clip_reading_the_answer_or_the_label(towers, processor, one_thread) -> None:
    model = OvmlvModel.from_towers(towers.clip, towers.llm, method="ovmlv", temporal_layers=0, **TINY).eval()
    targets = alignment_targets(model, processor, LABELS[:2], LabelAlignmentConfig(max_answer_tokens=4))
    assert targets.shape == (2, model.config.projection_dim)
    torch.testing.assert_close(targets.norm(dim=-1), torch.ones(2))


def test_alignment_needs_the_llm_prompted_encoder(towers, processor) -> None:
    model = OvmlvModel.from_towers(towers.clip, towers.llm, method="coop", temporal_layers=0)
    with pytest.raises(ValueError, match="label_alignment.text_steps=3 needs the LLM-prompted label encoder"):
        align_label_encoder(model, processor, LABELS, LabelAlignmentConfig(text_steps=3), lr=1e-3, seed=0)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("text_steps", -1, "0 or more"), ("labels_per_step", 0, "positive"), ("lr_scale", 0.0, "positive")],
)
def test_alignment_settings_are_checked(field: str, value, message: str) -> None:
    with pytest.raises(ValueError, match=f"label_alignment.{field} must be {message}"):
        TrainConfig(label_alignment=LabelAlignmentConfig(**{field: value}))


def test_an_alignment_key_names_what_the_alignment_depends_on_and_nothing_else(towers) -> None:
    """Runs that differ only outside the label path (the temporal branch, where the cache lives) share an
    alignment; another seed, vocabulary, setting or label encoder does not."""
    settings, tower_names = LabelAlignmentConfig(text_steps=4), (str(towers.clip), str(towers.llm))

    def key(labels=LABELS, config=settings, seed=0, **fields) -> str:
        torch.manual_seed(0)
        model = OvmlvModel.from_towers(towers.clip, towers.llm, method="ovmlv", **(TINY | fields))
        return alignment_key(model, labels, config, lr=1e-3, seed=seed, towers=tower_names)

    reference = key(temporal_layers=0)
    assert key(temporal_layers=1) == reference
    assert key(temporal_layers=0, category_members=4) == reference  # scoring, not the learnt path
    assert key(temporal_layers=0, config=LabelAlignmentConfig(text_steps=4, cache_dir="x", freeze_after=False)) == (
        reference
    )
    assert key(temporal_layers=0, seed=1) != reference
    assert key(temporal_layers=0, labels=LABELS[:-1]) != reference
    assert key(temporal_layers=0, config=LabelAlignmentConfig(text_steps=5)) != reference
    assert key(temporal_layers=0, num_attributes=2) != reference
