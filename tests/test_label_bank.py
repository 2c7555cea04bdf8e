"""LabelBank: build, add, remove, save/load (safetensors + JSON), query; and label validation."""

from __future__ import annotations

import json

import pytest
import torch

from ovmlv.modeling_ovmlv import LabelBank, OvmlvModel
from ovmlv.modeling_ovmlv.label_bank import clean_labels
from ovmlv.processing import OvmlvProcessor


@pytest.fixture(scope="module", params=["clip", "siglip"])
def tower_folder(request, towers, siglip_towers):
    """The bank is built on either kind of vision-language towers."""
    return towers.clip if request.param == "clip" else siglip_towers("siglip").clip


@pytest.fixture(scope="module")
def processor(tower_folder):
    return OvmlvProcessor.from_towers(tower_folder)


@pytest.fixture(scope="module")
def model(tower_folder):
    return OvmlvModel.from_towers(clip=tower_folder, label_encoder="class_name", temporal_layers=0).eval()


def test_build_matches_direct_encoding_in_any_batch_size(model, processor):
    labels = ["dog", "beach", "surfing", "red circle", "moving left"]
    bank = LabelBank.build(model, processor, labels, batch_size=2, progress=False)
    with torch.no_grad():
        direct = model.get_label_features(**processor(text=labels))
    assert bank.labels == labels
    assert torch.allclose(bank.embeddings, direct, atol=1e-6)


def test_add_remove_and_lookup_order(model, processor):
    bank = LabelBank.build(model, processor, ["dog", "beach"], progress=False)
    assert bank.add(model, processor, ["beach", "cat"], progress=False) == ["cat"]
    assert len(bank) == 3 and "cat" in bank
    cat_then_dog = bank.embeddings_for(["cat", "dog"])
    assert torch.equal(cat_then_dog[0], bank.embeddings[2]) and torch.equal(cat_then_dog[1], bank.embeddings[0])
    bank.remove(["beach"])
    assert bank.labels == ["dog", "cat"]
    with pytest.raises(KeyError, match="beach"):
        bank.remove(["beach"])
    with pytest.raises(KeyError, match="Not in the label bank"):
        bank.embeddings_for(["horse"])


def test_missing_labels_are_encoded_once_through_the_callback(model, processor):
    bank = LabelBank([], torch.empty(0, model.config.projection_dim))
    calls = []

    def embed(labels):
        calls.append(list(labels))
        return torch.nn.functional.normalize(torch.randn(len(labels), model.config.projection_dim), dim=-1)

    bank.embeddings_for(["dog", "cat", "dog"], embed_missing=embed)
    bank.embeddings_for(["cat", "dog"], embed_missing=embed)
    assert calls == [["dog", "cat"]]


def test_save_load_is_safetensors_and_json(model, processor, tmp_path):
    bank = LabelBank.build(model, processor, ["dog", "beach", "surfing"], progress=False)
    bank.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["label_bank.json", "label_bank.safetensors"]
    assert json.loads((tmp_path / "label_bank.json").read_text())["labels"] == ["dog", "beach", "surfing"]
    loaded = LabelBank.load(tmp_path)
    assert loaded.labels == bank.labels and torch.equal(loaded.embeddings, bank.embeddings)
    assert LabelBank.from_pretrained(tmp_path).labels == bank.labels
    (tmp_path / "model-without-bank").mkdir()
    assert LabelBank.from_pretrained(tmp_path / "model-without-bank") is None


def test_model_folder_carries_its_bank(model, processor, tmp_path):
    model.label_bank = LabelBank.build(model, processor, ["dog", "beach"], progress=False)
    try:
        model.save_pretrained(tmp_path)
    finally:
        model.label_bank = None
    reloaded = OvmlvModel.from_pretrained(tmp_path)
    assert reloaded.label_bank.labels == ["dog", "beach"]


def test_query_top_k_and_threshold(model, processor):
    bank = LabelBank.build(model, processor, ["dog", "beach", "surfing"], progress=False)
    video = bank.embeddings[1:2]  # a "video" that looks exactly like "beach"
    [ranked] = bank.query(video, lambda v, t: v @ t.T, top_k=2)
    assert ranked[0] == {"label": "beach", "score": pytest.approx(1.0, abs=1e-5)} and len(ranked) == 2
    between = (ranked[0]["score"] + ranked[1]["score"]) / 2  # random SigLIP labels may lie within 1e-3 of each other
    [kept] = bank.query(video, lambda v, t: v @ t.T, threshold=between)
    assert [item["label"] for item in kept] == ["beach"]


@pytest.mark.parametrize(
    "labels, expected",
    [("dog, beach ,surfing", ["dog", "beach", "surfing"]), (["dog", "dog", " cat "], ["dog", "cat"])],
)
def test_clean_labels(labels, expected):
    assert clean_labels(labels) == expected


@pytest.mark.parametrize(
    "labels, error, message",
    [([], ValueError, "empty"), (["dog", ""], ValueError, "empty label"), (["dog", 3], TypeError, "strings")],
)
def test_clean_labels_errors(labels, error, message):
    with pytest.raises(error, match=message):
        clean_labels(labels)
