"""Checksum manifests: an export lists its files' sizes and SHA-256 (`checksums.json`), and loading checks them, so
a truncated or bit-flipped weights file is named instead of loaded (safetensors has no checksum of its own)."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from ovmlv.arguments import EXIT_ERROR, EXIT_OK
from ovmlv.cli import main
from ovmlv.hub_cards.export import export_model
from ovmlv.modeling_ovmlv import OvmlvModel
from ovmlv.modeling_ovmlv.checksums import CHECKSUMS_NAME, VERIFY_ENV, ChecksumError, write_checksums
from tests.hub_model_folder import VOCABULARY, save_trained_folder


@pytest.fixture(scope="module")
def exported(towers, processor, tmp_path_factory) -> Path:
    trained = save_trained_folder(tmp_path_factory.mktemp("trained"), towers, processor)
    return export_model(trained, tmp_path_factory.mktemp("hub") / "model", "org/model", VOCABULARY)


@pytest.fixture()
def copy(exported, tmp_path) -> Path:
    return shutil.copytree(exported, tmp_path / "model")


def flip_one_bit(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def test_an_export_lists_what_no_command_rewrites(exported):
    files = json.loads((exported / CHECKSUMS_NAME).read_text())["files"]
    assert {"model.safetensors", "processor_config.json", "tokenizer.json", "modeling_ovmlv.py"} <= set(files)
    assert "llm_tokenizer/tokenizer.json" in files
    # The card, the config (a calibrated threshold) and the label bank (`ovmlv vocab`) may change after export.
    assert not {"README.md", "config.json", "label_bank.json", "label_bank.safetensors"} & set(files)
    assert files["model.safetensors"]["size"] == (exported / "model.safetensors").stat().st_size


def test_an_export_is_readable_as_a_plain_write_would_be(exported):
    """Staged files keep the mode the umask gives (not mkstemp's 0600): a server process serving the folder, or
    another user, can read the weights, the label bank and the manifest."""
    umask = os.umask(0)
    os.umask(umask)
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in exported.rglob("*") if path.is_file()}
    assert {"model.safetensors", "label_bank.safetensors", "label_bank.json", CHECKSUMS_NAME} <= modes.keys()
    assert {name: mode for name, mode in modes.items() if mode != 0o666 & ~umask} == {}


def test_a_flipped_bit_in_the_weights_is_named(exported, copy, capsys, video_path, monkeypatch):
    weights = copy / "model.safetensors"
    flip_one_bit(weights, weights.stat().st_size - 3)  # inside a tensor: safetensors itself loads it
    with pytest.raises(ChecksumError, match="model.safetensors has another SHA-256"):
        OvmlvModel.from_pretrained(copy)
    code = main(["classify", str(video_path), "--model", str(copy), "--labels", "dog"])
    assert code == EXIT_ERROR and "does not match its checksums.json" in capsys.readouterr().err
    monkeypatch.setenv(VERIFY_ENV, "0")  # unchecked, the damaged weights load without a word: what the check is for
    damaged, intact = load_file(weights), load_file(exported / "model.safetensors")
    assert sum(not torch.equal(damaged[name], intact[name]) for name in intact) == 1
    OvmlvModel.from_pretrained(copy)


def test_a_truncated_file_is_named_with_its_size(copy):
    tokenizer = copy / "tokenizer.json"
    tokenizer.write_text(tokenizer.read_text()[:100])
    with pytest.raises(ChecksumError, match=r"tokenizer.json has 100 bytes, \d+ expected"):
        OvmlvModel.from_pretrained(copy)


def test_documented_changes_after_export_keep_it_loadable(copy, capsys):
    assert main(["vocab", "add", "--model", str(copy), "--labels", "cat"]) == EXIT_OK
    (copy / "README.md").write_text("edited on the Hub\n")
    model = OvmlvModel.from_pretrained(copy)
    assert model.label_bank.labels == [*VOCABULARY, "cat"]


def test_write_checksums_skips_hidden_and_excluded_files(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.bin").write_bytes(b"abc")
    (tmp_path / ".partial").write_bytes(b"x")
    (tmp_path / "skip.txt").write_text("y")
    files = write_checksums(tmp_path, exclude=("skip.txt",))
    assert files == {
        "sub/a.bin": {"size": 3, "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}
    }


@pytest.mark.parametrize("name", ["../../../../etc/passwd", "/etc/passwd", "sub/../../x", "a\\..\\..\\x", "./x", ""])
def test_a_manifest_naming_files_outside_its_folder_is_refused_unopened(copy, name, monkeypatch):
    manifest = json.loads((copy / CHECKSUMS_NAME).read_text())
    manifest["files"][name] = {"size": 1, "sha256": "0" * 64}
    (copy / CHECKSUMS_NAME).write_text(json.dumps(manifest))
    opened = []
    monkeypatch.setattr("ovmlv.modeling_ovmlv.checksums.file_sha256", lambda path: opened.append(path) or "")
    with pytest.raises(ChecksumError, match=r"lists files outside its folder .*Nothing was opened"):
        OvmlvModel.from_pretrained(copy)
    assert opened == []
