"""`ovmlv` with what users get wrong: a model path that is no model, damaged weights, a damaged or interrupted
label bank. Each is one sentence and an exit code, and `vocab build` repairs a bank."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ovmlv.arguments import EXIT_ERROR, EXIT_OK
from ovmlv.cli import main
from ovmlv.modeling_ovmlv.label_bank import BANK_LABELS_NAME
from tests.hub_model_folder import VOCABULARY, save_trained_folder


@pytest.fixture(scope="module")
def bank_folder(towers, processor, tmp_path_factory) -> Path:
    return save_trained_folder(tmp_path_factory.mktemp("with_bank"), towers, processor, VOCABULARY)


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    errors = [line for line in err.splitlines() if line.startswith("ovmlv ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


@pytest.mark.parametrize(
    "model, message",
    [
        (lambda tmp: tmp / "outputs" / "run" / "final", "There is no model folder"),
        (lambda tmp: tmp, "is a folder without config.json, so not a saved model"),
    ],
)
def test_a_model_argument_that_is_no_model(capsys, tmp_path, video_path, model, message):
    code, _, err = run(capsys, "classify", video_path, "--model", model(tmp_path), "--labels", "dog")
    assert code == EXIT_ERROR and message in one_error_line(err)


def test_truncated_weights_are_named(capsys, bank_folder, tmp_path, video_path):
    folder = shutil.copytree(bank_folder, tmp_path / "model")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    code, _, err = run(capsys, "classify", video_path, "--model", folder, "--labels", "dog")
    line = one_error_line(err)
    assert code == EXIT_ERROR and "model.safetensors) cannot be read" in line and "damaged or truncated" in line


def test_a_truncated_bank_is_named_and_vocab_build_repairs_it(capsys, caplog, bank_folder, tmp_path, video_path):
    folder = shutil.copytree(bank_folder, tmp_path / "model")
    bank_file = folder / BANK_LABELS_NAME
    bank_file.write_text(bank_file.read_text()[:40])  # what an in-place write killed half way left
    with caplog.at_level("WARNING"):
        code, out, _ = run(capsys, "classify", video_path, "--model", folder, "--labels", "dog", "--json")
    assert code == EXIT_OK and json.loads(out)[0]["labels"][0]["label"] == "dog"  # labels given: works without it
    assert f"{bank_file} is damaged" in caplog.text  # the warning names the file
    code, _, err = run(capsys, "vocab", "list", "--model", folder)
    assert code == EXIT_ERROR and f"{bank_file} is damaged" in one_error_line(err)
    assert run(capsys, "vocab", "build", "--model", folder, "--labels", "dog, cat")[0] == EXIT_OK
    code, out, _ = run(capsys, "vocab", "list", "--model", folder, "--json")
    assert code == EXIT_OK and json.loads(out) == ["dog", "cat"]
