"""A label bank on disk: a save killed half way leaves the previous bank, a damaged or half-replaced pair is named
and not used, and a bank only ever scores with the weights that made it (`weights_fingerprint.py`)."""

from __future__ import annotations

import builtins
import io
import shutil
from pathlib import Path

import pytest
import torch

from ovmlv.modeling_ovmlv import LabelBank, OvmlvModel
from ovmlv.modeling_ovmlv import label_bank as label_bank_module
from ovmlv.modeling_ovmlv.label_bank import BANK_LABELS_NAME, BANK_WEIGHTS_NAME, LabelBankError
from tests.hub_model_folder import VOCABULARY, save_trained_folder


class Killed(BaseException):
    """Stands for SIGKILL arriving while a file is being written (BaseException: no `except Exception` stops it)."""


@pytest.fixture(scope="module")
def bank_folder(towers, processor, tmp_path_factory) -> Path:
    return save_trained_folder(tmp_path_factory.mktemp("with_bank"), towers, processor, VOCABULARY)


@pytest.fixture()
def folder(bank_folder, tmp_path) -> Path:
    return shutil.copytree(bank_folder, tmp_path / "model")


def another_model(towers) -> OvmlvModel:
    """The same architecture with other label-encoder weights, as after training: other label embeddings."""
    model = OvmlvModel.from_towers(clip=towers.clip, label_encoder="class_name", temporal_layers=0, threshold=0.0)
    with torch.no_grad():
        model.label_encoder.text_tower.text_projection.weight.add_(
            0.5 * torch.randn_like(model.label_encoder.text_tower.text_projection.weight)
        )
    return model


def dies_half_way(monkeypatch, name: str) -> None:
    """Make the next write of a file whose name contains `name` stop after half its bytes, as a kill would."""
    real_open, real_save_file = builtins.open, label_bank_module.save_file

    class HalfWriter(io.TextIOWrapper):
        def write(self, text: str) -> int:
            super().write(text[: len(text) // 2])
            self.flush()
            raise Killed

    def open_(file, mode="r", *args, **kwargs):
        if "w" in mode and name in Path(file).name and "b" not in mode:
            return HalfWriter(real_open(file, "wb"), encoding="utf-8")
        return real_open(file, mode, *args, **kwargs)

    def save_file(tensors, filename, *args, **kwargs):
        if name in Path(filename).name:
            real_save_file(tensors, filename, *args, **kwargs)
            data = Path(filename).read_bytes()
            Path(filename).write_bytes(data[: len(data) // 2])
            raise Killed
        return real_save_file(tensors, filename, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", open_)
    monkeypatch.setattr(io, "open", open_)
    monkeypatch.setattr(label_bank_module, "save_file", save_file)


@pytest.mark.parametrize("file", [BANK_LABELS_NAME, BANK_WEIGHTS_NAME])
def test_a_save_killed_while_writing_leaves_the_previous_bank(folder, model_and_processor, monkeypatch, file):
    model, processor = model_and_processor(folder)
    before = LabelBank.load(folder)
    model.label_bank.add(model, processor, ["a new label"], progress=False)
    dies_half_way(monkeypatch, file)
    with pytest.raises(Killed):
        model.label_bank.save(folder)
    monkeypatch.undo()
    after = OvmlvModel.from_pretrained(folder).label_bank  # the previous bank, whole and usable
    assert after.labels == before.labels == VOCABULARY and torch.equal(after.embeddings, before.embeddings)


def test_a_half_replaced_pair_is_named_and_not_used(folder, towers, processor, tmp_path, caplog):
    """A kill between the two renames of a save: new embeddings beside the old labels file."""
    model = OvmlvModel.from_pretrained(folder)
    LabelBank.build(model, processor, ["cat", "horse"], progress=False).save(tmp_path / "newer")
    shutil.copy(tmp_path / "newer" / BANK_WEIGHTS_NAME, folder / BANK_WEIGHTS_NAME)
    with pytest.raises(LabelBankError, match=f"{BANK_WEIGHTS_NAME} and .*{BANK_LABELS_NAME} do not belong together"):
        LabelBank.load(folder)
    with caplog.at_level("WARNING"):
        assert OvmlvModel.from_pretrained(folder).label_bank is None  # the model still loads, without the bank
    assert "do not belong together" in caplog.text and "loaded without a label bank" in caplog.text


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda f: (f / BANK_LABELS_NAME).write_text('{"labels": ["dog", "bea'), "label_bank.json is damaged"),
        (lambda f: (f / BANK_WEIGHTS_NAME).unlink(), "incomplete: label_bank.json without label_bank.safetensors"),
    ],
)
def test_a_damaged_bank_is_named(folder, damage, message, caplog):
    damage(folder)
    with pytest.raises(LabelBankError, match=message):
        LabelBank.from_pretrained(folder)
    with caplog.at_level("WARNING"):
        assert OvmlvModel.from_pretrained(folder).label_bank is None
    assert message.split(":")[0] in caplog.text


def test_saving_a_model_without_a_bank_removes_the_old_one(folder, towers):
    another_model(towers).save_pretrained(folder)  # into a folder that holds another model's bank
    assert not (folder / BANK_LABELS_NAME).exists() and not (folder / BANK_WEIGHTS_NAME).exists()
    assert OvmlvModel.from_pretrained(folder).label_bank is None


def test_a_bank_from_another_model_is_reported_and_not_used(folder, towers, tmp_path, caplog):
    other = tmp_path / "other"
    another_model(towers).save_pretrained(other)
    for name in (BANK_LABELS_NAME, BANK_WEIGHTS_NAME):  # copied by hand from the first model's folder
        shutil.copy(folder / name, other / name)
    with caplog.at_level("WARNING"):
        assert OvmlvModel.from_pretrained(other).label_bank is None
    assert "encoded by another model than the weights beside it" in caplog.text
    with pytest.raises(LabelBankError, match="encoded by another model"):
        LabelBank.from_pretrained(other, OvmlvModel.from_pretrained(other).label_encoder_fingerprint)
    mixed = OvmlvModel.from_pretrained(folder).label_bank
    with pytest.raises(LabelBankError, match="encoded by another model"):  # nor extended by another model
        mixed.add(OvmlvModel.from_pretrained(other), None, ["cat"], progress=False)


def test_the_fingerprint_follows_the_weights_not_the_load_dtype(folder, tmp_path):
    stored = OvmlvModel.from_pretrained(folder).label_encoder_fingerprint
    half = OvmlvModel.from_pretrained(folder, dtype=torch.float16)
    assert half.label_encoder_fingerprint == stored and half.label_bank.labels == VOCABULARY
    half.save_pretrained(tmp_path / "half")  # other bytes on disk: the bank made here follows them
    resaved = OvmlvModel.from_pretrained(tmp_path / "half")
    assert resaved.label_encoder_fingerprint != stored and resaved.label_bank.labels == VOCABULARY


@pytest.fixture()
def model_and_processor(processor):
    return lambda folder: (OvmlvModel.from_pretrained(folder), processor)
