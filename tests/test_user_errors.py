"""What a user (or their machine) gets wrong ends in one line, `ovmlv <cmd>: error: ...`, naming the file or input
and what to do, with exit 1 (130 for Ctrl-C), and nothing half-written behind: a full disk, Ctrl-C, a broken YAML
config, a damaged index.json, text files in another encoding, a device this machine lacks, a non-finite threshold,
no network, a used output_dir, launcher variables that name no process, and labels that are only spaces."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest
import torch

from ovmlv.arguments import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, user_error_message
from ovmlv.cli import main
from ovmlv.modeling_ovmlv import LabelBank, OvmlvModel, ZeroShotVideoClassificationPipeline
from ovmlv.modeling_ovmlv.atomic_files import write_folder_atomically
from ovmlv.modeling_ovmlv.label_bank import BANK_LABELS_NAME
from ovmlv.text_files import clean_label, read_lines
from tests.hub_model_folder import VOCABULARY, save_trained_folder
from tests.video_library_files import build_index, write_library

TORCH_DISK_FULL = "[enforce fail at inline_container.cc:672] . unexpected pos 1088 vs 960"  # torch.save, ENOSPC


@pytest.fixture(scope="module")
def bank_folder(towers, processor, tmp_path_factory) -> Path:
    return save_trained_folder(tmp_path_factory.mktemp("with_bank"), towers, processor, VOCABULARY)


def run(capsys, *argv) -> tuple[int, str]:
    """`ovmlv ARGV`: its exit code and its one error line (asserting there is exactly one, and no traceback)."""
    code = main([str(arg) for arg in argv])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("ovmlv ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return code, errors[0]


def hidden_files(folder: Path) -> list[str]:
    """Temporary files and folders left in `folder`; writer locks (`.NAME.lock`) stay by design (file_locks.py)."""
    return sorted(path.name for path in folder.rglob(".*") if not path.name.endswith(".lock"))


def disk_full(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_during_vocab_build_names_the_bank_and_keeps_the_old_one(
    capsys, bank_folder, tmp_path, monkeypatch
):
    folder = shutil.copytree(bank_folder, tmp_path / "model")
    before = (folder / BANK_LABELS_NAME).read_bytes()
    monkeypatch.setattr("ovmlv.modeling_ovmlv.label_bank.save_file", disk_full)
    code, line = run(capsys, "vocab", "build", "--model", folder, "--labels", "dog, cat")
    assert code == EXIT_ERROR and f"disk full while writing {folder}" in line and "free some space" in line
    assert (folder / BANK_LABELS_NAME).read_bytes() == before and hidden_files(folder) == []


def test_a_full_disk_during_export_overwrite_keeps_the_old_export(capsys, bank_folder, tmp_path, monkeypatch):
    out = tmp_path / "hub"
    assert main(["export", "--model", str(bank_folder), "--out", str(out)]) == 0
    before = {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()}

    def save_half_then_fill_the_disk(self, folder, **kwargs):
        (Path(folder) / "model.safetensors").write_bytes(b"half")
        raise RuntimeError(TORCH_DISK_FULL)

    monkeypatch.setattr(OvmlvModel, "save_pretrained", save_half_then_fill_the_disk)
    code, line = run(capsys, "export", "--model", bank_folder, "--out", out, "--overwrite")
    assert code == EXIT_ERROR and f"disk full while writing {out}" in line and "unexpected pos" not in line
    assert {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()} == before
    assert hidden_files(tmp_path) == []


def test_a_full_disk_while_writing_final_names_the_folder(tmp_path):
    """final/ is written through `write_folder_atomically`: torch's "unexpected pos" becomes "disk full" on it."""
    final = tmp_path / "final"
    with pytest.raises(OSError) as caught, write_folder_atomically(final) as folder:
        torch.save(torch.zeros(2), folder / "weights.pt")
        raise RuntimeError(TORCH_DISK_FULL)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(final)
    assert user_error_message(caught.value).startswith(f"disk full while writing {final};")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_while_checkpointing_leaves_no_partial_checkpoint(tmp_path, monkeypatch, fresh_accelerate_state):
    from accelerate import Accelerator

    from ovmlv.training.checkpointing import save_checkpoint

    accelerator = Accelerator(cpu=True)
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model, optimizer = accelerator.prepare(model, optimizer)
    assert save_checkpoint(accelerator, tmp_path, 1, keep=None).is_dir()

    def torch_save_fills_the_disk(*_args, **_kwargs):
        raise RuntimeError(TORCH_DISK_FULL)

    monkeypatch.setattr(torch, "save", torch_save_fills_the_disk)
    with pytest.raises(OSError) as caught:
        save_checkpoint(accelerator, tmp_path, 2, keep=None)
    assert caught.value.errno == errno.ENOSPC and caught.value.filename.endswith("step_2")
    assert sorted(path.name for path in (tmp_path / "checkpoints").iterdir()) == ["step_1"]


@pytest.mark.parametrize("command", ["classify", "vocab build", "index"])
def test_ctrl_c_is_one_line_and_exit_130(capsys, bank_folder, video_path, tmp_path, monkeypatch, command):
    def interrupt(*_args, **_kwargs):
        raise KeyboardInterrupt

    if command == "classify":
        monkeypatch.setattr(ZeroShotVideoClassificationPipeline, "__call__", interrupt)
        argv = ["classify", video_path, "--model", bank_folder, "--labels", "dog"]
    elif command == "vocab build":
        monkeypatch.setattr(LabelBank, "build", interrupt)
        argv = ["vocab", "build", "--model", shutil.copytree(bank_folder, tmp_path / "m"), "--labels", "dog"]
    else:
        monkeypatch.setattr("ovmlv.video_library.indexing.index_videos", interrupt)
        argv = ["index", video_path, "--model", bank_folder, "--out", tmp_path / "library.index"]
    code, line = run(capsys, *argv)
    assert code == EXIT_INTERRUPTED and line == f"ovmlv {command.split()[0]}: error: " + (
        "interrupted; only whole files were written: rerun to finish."
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ("optimizer:\n  lr: [1\n", "(line 3, column 1): expected ',' or ']'"),
        ("optimizer:\n  lr: !!python/object:os.system 1\n", "(line 2, column 7): could not determine a constructor"),
        ("optimizer:\n  max_steps: 99999999999999999999999\n", "optimizer.max_steps: 99999999999999999999999 is out"),
        ("optimizer:\n  lr: 1.0e999\n", "optimizer.lr: '1.0e999' is out of range"),
        ("- optimizer\n", "a config maps sections to fields"),
    ],
)
def test_a_broken_yaml_config_is_one_line_naming_the_file(capsys, tmp_path, text, message):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    code, line = run(capsys, "train", "--config", config, "--output_dir", tmp_path / "out")
    assert code == EXIT_ERROR and str(config) in line and message in line
    assert not (tmp_path / "out").exists()


def test_train_into_a_used_output_dir_is_one_line_before_launching(capsys, tmp_path, monkeypatch):
    (tmp_path / "run" / "checkpoints").mkdir(parents=True)
    monkeypatch.setattr("subprocess.run", lambda *a, **k: pytest.fail("launched"))
    code, line = run(capsys, "train", "--config", "synthetic_tiny", "--output_dir", tmp_path / "run")
    assert code == EXIT_ERROR and f"output_dir {tmp_path / 'run'} already holds a run (checkpoints)" in line


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "is not JSON"),
        ('["a"]', "holds a JSON list, not an object"),
        ("drop:num_clips", "lacks 'num_clips'"),
        ("add:colour", "has an unknown key 'colour'"),
    ],
)
def test_a_damaged_index_json_is_one_line_naming_it(capsys, bank_folder, tmp_path, content, message):
    index = build_index(write_library(tmp_path / "videos", count=1), bank_folder, tmp_path / "library.index")
    info_file = index / "index.json"
    info = json.loads(info_file.read_text())
    if content.startswith("drop:"):
        content = json.dumps({k: v for k, v in info.items() if k != content[5:]})
    elif content.startswith("add:"):
        content = json.dumps({**info, content[4:]: 1})
    info_file.write_text(content)
    code, line = run(capsys, "search", index, "red star")
    assert code == EXIT_ERROR and f"{info_file} {message}" in line and "build it again with `ovmlv index`" in line


@pytest.mark.parametrize(
    "encoding, message", [("utf-16", "is UTF-16, not UTF-8"), ("latin-1", "is not UTF-8 (byte 0xe9 at offset")]
)
def test_text_files_in_another_encoding_are_named(capsys, bank_folder, video_path, tmp_path, encoding, message):
    labels = tmp_path / "labels.txt"
    labels.write_text("café\nrouge\n", encoding=encoding)
    code, line = run(capsys, "classify", video_path, "--model", bank_folder, "--labels-file", labels)
    assert code == EXIT_ERROR and f"labels file {labels} {message}" in line and "save it as UTF-8" in line
    videos = tmp_path / "videos.txt"
    videos.write_text(f"{video_path}\nvidéo.mp4\n", encoding=encoding)
    code, line = run(capsys, "index", videos, "--model", bank_folder, "--out", tmp_path / "library.index")
    assert code == EXIT_ERROR and f"Video list {videos} {message}" in line
    assert not (tmp_path / "library.index").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_device_this_machine_lacks_is_one_line(capsys, bank_folder, video_path):
    code, line = run(capsys, "classify", video_path, "--model", bank_folder, "--labels", "dog", "--device", "cuda")
    assert code == EXIT_ERROR and "--device cuda: this machine has 0 CUDA device(s); use --device cpu." in line


@pytest.mark.parametrize(
    "option, value, message",
    [("--device", "gpu0", "'gpu0' is not a torch device"), ("--threshold", "nan", "must be a finite number, got nan")],
)
def test_unknown_devices_and_non_finite_thresholds_are_usage_errors(
    capsys, bank_folder, video_path, option, value, message
):
    with pytest.raises(SystemExit) as exited:
        main(["classify", str(video_path), "--model", str(bank_folder), option, value])
    err = capsys.readouterr().err
    assert exited.value.code == EXIT_USAGE and f"argument {option}: {message}" in err and "Traceback" not in err


def test_push_without_network_is_one_line(capsys, bank_folder, monkeypatch):
    from huggingface_hub.utils import _http

    client = next(getattr(_http, name) for name in ("httpx2", "httpx") if hasattr(_http, name))

    def refused(*_args, **_kwargs):
        raise client.ConnectError("[Errno 111] Connection refused")

    monkeypatch.setattr("huggingface_hub.HfApi.create_repo", refused)
    code, line = run(capsys, "push", bank_folder, "--repo", "org/name")
    # Refused by the Hub check before the upload (hub_access.py), or by the upload itself where the Hub answers.
    assert code == EXIT_ERROR and f"pushing {bank_folder} to org/name failed: " in line and "\n" not in line


def test_launcher_variables_that_name_no_process_are_refused(capsys, bank_folder, video_path, tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "5")
    monkeypatch.setenv("WORLD_SIZE", "2")
    code, line = run(capsys, "index", video_path, "--model", bank_folder, "--out", tmp_path / "library.index")
    assert code == EXIT_ERROR and "RANK=5 WORLD_SIZE=2 LOCAL_RANK=0 is no process of a launch" in line
    assert not (tmp_path / "library.index").exists()


@pytest.mark.parametrize("labels", [["   "], [" , ,"], ["\u200b"], ["\ufeff", "\u00a0"]])
def test_labels_that_are_only_spaces_are_refused_not_replaced_by_the_bank(capsys, bank_folder, video_path, labels):
    code, line = run(capsys, "classify", video_path, "--model", bank_folder, "--labels", *labels)
    assert code == EXIT_ERROR and "holds no label: give at least one label." in line


def test_invisible_characters_around_labels_are_stripped(tmp_path):
    assert clean_label("\u200b red star \u200b\ufeff") == "red star" and clean_label("\u2060\u3000") == ""
    assert clean_label("a\u200bb") == "a\u200bb"  # inside a label, kept: it is the user's
    vocabulary = tmp_path / "vocab.txt"
    vocabulary.write_text("\u200b\ndog\u200b\n \u00a0\ncat\n", encoding="utf-8")
    assert read_lines(vocabulary, "vocabulary") == ["dog", "cat"]


def test_train_checks_the_configs_data_files_before_launching(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where the paper recipe's data/yt8m/... and data/k400/... manifests are not
    monkeypatch.setattr("subprocess.run", lambda *a, **k: pytest.fail("launched"))
    code, line = run(capsys, "train", "--config", "paper_recipe")
    assert (
        code == EXIT_ERROR
        and "paper_recipe.yaml names data files that do not exist here: data/yt8m/train.jsonl" in line
    )
    assert "`ovmlv adapt DATASET ... --out DIR`" in line


def test_export_of_a_missing_folder_says_it_is_missing(capsys, tmp_path):
    missing = tmp_path / "outputs" / "paper_recipe" / "final"
    argv = ["--clip", "openai/clip-vit-base-patch32", "--llm", "google/flan-t5-xl", "--llm-revision", "COMMIT"]
    code, line = run(capsys, "export", "--model", missing, "--out", tmp_path / "hub", "--variant", "adapter", *argv)
    assert code == EXIT_ERROR and f"There is no model folder {missing}" in line and "Repo id" not in line


def test_a_failed_synth_labels_leaves_no_folder_behind(capsys, video_path, tmp_path):
    manifest = tmp_path / "train.jsonl"
    manifest.write_text(json.dumps({"video": str(video_path), "labels": ["dog"]}) + "\n")
    out = tmp_path / "data" / "synthetic_labels"  # data/ is made by the run too
    missing = tmp_path / "no_captioner"
    argv = ["--manifest", manifest, "--captioner", missing, "--llm", missing, "--clip", missing, "--out", out]
    code, line = run(capsys, "synth-labels", *argv)
    assert code == EXIT_ERROR and str(missing) in line
    assert not (tmp_path / "data").exists()


def test_evaluate_plot_needs_no_extra_beyond_train():
    import tomllib

    extras = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert "matplotlib" in extras["optional-dependencies"]["train"]  # evaluate is a train command
