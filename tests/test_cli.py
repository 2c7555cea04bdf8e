"""The `ovmlv` command line: help, label-bank management, classify (tables, JSON, exit codes), evaluate delegation."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest
import torch

from ovmlv.arguments import EXIT_ERROR, EXIT_OK, EXIT_PARTIAL, EXIT_USAGE
from ovmlv.cli import COMMANDS, main
from ovmlv.modeling_ovmlv import LabelBank, OvmlvModel, ZeroShotVideoClassificationPipeline
from ovmlv.saved_models import load_model
from ovmlv.training.config import load_config
from tests.hub_model_folder import VOCABULARY, save_trained_folder
from tests.video_files import write_not_video


@pytest.fixture(scope="module")
def bare_folder(towers, processor, tmp_path_factory) -> Path:
    return save_trained_folder(tmp_path_factory.mktemp("bare"), towers, processor)


@pytest.fixture(scope="module")
def bank_folder(towers, processor, tmp_path_factory) -> Path:
    return save_trained_folder(tmp_path_factory.mktemp("with_bank"), towers, processor, VOCABULARY)


@pytest.fixture(scope="module")
def reference(bank_folder, processor) -> ZeroShotVideoClassificationPipeline:
    return ZeroShotVideoClassificationPipeline(model=OvmlvModel.from_pretrained(bank_folder), processor=processor)


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "command, explains",
    [
        ([], ["classify", "vocab", "evaluate", "export", "exit codes", "some videos could not be read"]),
        (["classify"], ["VIDEO", "--labels", "--threshold", "--top-k", "--json", "label bank"]),
        (["vocab"], ["build", "add", "remove", "list", "precomputed embeddings"]),
        (["vocab", "build"], ["--labels-file", "--out", "--batch-size"]),
        (["export"], ["--eval", "--push", "--vocab", "--repo-id", "model card"]),
    ],
)
def test_help_explains_each_command(capsys, command, explains):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == EXIT_OK
    help_text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for phrase in explains:
        assert phrase in help_text


def test_usage_errors_exit_2(capsys, bank_folder):
    with pytest.raises(SystemExit) as exit_info:
        main(["classify", "--model", str(bank_folder)])  # no VIDEO
    assert exit_info.value.code == EXIT_USAGE
    assert "VIDEO" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["classify", "v.mp4", "--model", str(bank_folder), "--top-k", "-1"])
    assert exit_info.value.code == EXIT_USAGE
    assert "--top-k: must be 0 or more, got -1" in capsys.readouterr().err


def test_vocab_build_add_remove_list(capsys, bare_folder, processor, tmp_path):
    folder = shutil.copytree(bare_folder, tmp_path / "model")
    code, _, err = run(capsys, "vocab", "list", "--model", folder)
    assert code == EXIT_ERROR and "has no label bank" in err

    labels_file = tmp_path / "more.txt"
    labels_file.write_text("surfing\n")
    code, out, _ = run(
        capsys, "vocab", "build", "--model", folder, "--labels", "dog, beach", "--labels-file", labels_file
    )
    assert code == EXIT_OK and "3 labels" in out
    model = OvmlvModel.from_pretrained(folder)
    reference = LabelBank.build(model, processor, ["dog", "beach", "surfing", "red circle"], progress=False)
    assert model.label_bank.labels == ["dog", "beach", "surfing"]
    assert torch.allclose(model.label_bank.embeddings, reference.embeddings[:3], atol=1e-6)

    code, out, _ = run(capsys, "vocab", "add", "--model", folder, "--labels", "beach", "red circle")
    assert code == EXIT_OK and "Added 1 labels (1 already there)" in out
    bank = LabelBank.load(folder)
    assert bank.labels == ["dog", "beach", "surfing", "red circle"]
    assert torch.allclose(bank.embeddings, reference.embeddings, atol=1e-6)

    assert run(capsys, "vocab", "remove", "surfing", "--model", folder)[0] == EXIT_OK
    code, out, _ = run(capsys, "vocab", "list", "--model", folder)
    assert code == EXIT_OK
    assert out.splitlines()[1:] == ["#  label", "1  dog", "2  beach", "3  red circle"]
    assert json.loads(run(capsys, "vocab", "list", "--model", folder, "--json")[1]) == ["dog", "beach", "red circle"]

    code, _, err = run(capsys, "vocab", "remove", "horse", "--model", folder)
    assert code == EXIT_ERROR and "Not in the label bank: ['horse']" in err


def test_two_concurrent_vocab_adds_both_land(bank_folder, processor, tmp_path, monkeypatch):
    """The second `vocab add` waits for the first's save, then adds to its result: no labels lost."""
    from ovmlv.commands import vocab
    from ovmlv.modeling_ovmlv.file_locks import FileLock
    from ovmlv.modeling_ovmlv.label_bank import BANK_LABELS_NAME

    folder = shutil.copytree(bank_folder, tmp_path / "model")
    first_model = OvmlvModel.from_pretrained(folder)  # the first writer read the bank before the second started
    loaded = threading.Event()

    def load_then_signal(name):
        result = load_model(name)
        loaded.set()
        return result

    monkeypatch.setattr(vocab, "load_model", load_then_signal)
    first = FileLock(folder / BANK_LABELS_NAME)
    first.acquire()  # the first writer is between reading and saving
    second = threading.Thread(target=main, args=(["vocab", "add", "--model", str(folder), "--labels", "cat"],))
    second.start()
    assert loaded.wait(60)
    first_model.label_bank.add(first_model, processor, ["horse"], progress=False)
    first_model.label_bank.save(folder)
    first.release()
    second.join(60)
    assert LabelBank.load(folder).labels == [*VOCABULARY, "horse", "cat"]


def test_vocab_needs_out_for_a_hub_model(capsys):
    code, _, err = run(capsys, "vocab", "build", "--model", "some-org/some-model", "--labels", "dog")
    assert code == EXIT_ERROR and "pass --out DIR" in err


def test_classify_shows_what_the_pipeline_keeps(capsys, bank_folder, reference, video_path):
    """One inference path: the command passes --threshold and --top-k to the pipeline and shows what it returns (the
    labels at or above the threshold, best first), never thresholding again itself."""
    labels = ["dog", "beach", "surfing"]
    expected = reference(str(video_path), candidate_labels=labels, threshold=0.0)
    middle = expected[1]["score"]
    code, out, _ = run(
        capsys, "classify", video_path, "--model", bank_folder, "--labels", *labels, "--threshold", middle, "--json"
    )
    assert code == EXIT_OK
    [result] = json.loads(out)
    assert result["video"] == str(video_path) and result["threshold"] == middle
    assert result["labels"] == reference(str(video_path), candidate_labels=labels, threshold=middle)
    assert [item["label"] for item in result["labels"]] == [item["label"] for item in expected[:2]]
    assert [item["score"] for item in result["labels"]] == pytest.approx([item["score"] for item in expected[:2]])


def test_classify_table_defaults_to_the_label_bank(capsys, bank_folder, reference, video_path):
    expected = reference(str(video_path), candidate_labels=VOCABULARY)  # the model's threshold: 0.0
    code, out, _ = run(capsys, "classify", video_path, "--model", bank_folder, "--top-k", "2")
    assert code == EXIT_OK
    lines = out.splitlines()
    assert lines[0] == str(video_path)
    assert lines[1].split() == ["label", "score", "≥", "0"]
    assert len(lines) == 4  # header, then the top 2 of the labels the pipeline kept
    for line, item in zip(lines[2:], expected[:2], strict=True):
        assert line.strip().startswith(item["label"]) and f"{item['score']:.3f}" in line


def test_classify_exit_codes_for_unreadable_videos(capsys, bank_folder, video_path, tmp_path):
    broken = write_not_video(tmp_path / "broken.mp4")
    code, out, err = run(capsys, "classify", video_path, broken, "--model", bank_folder, "--labels", "dog", "--json")
    assert code == EXIT_PARTIAL and "1 of 2 videos could not be read" in err
    good, bad = json.loads(out)
    assert (
        [item["label"] for item in good["labels"]] == ["dog"]
        and bad["video"] == str(broken)
        and "Cannot decode video" in bad["error"]
    )
    code, out, _ = run(capsys, "classify", broken, "--model", bank_folder, "--labels", "dog")
    assert code == EXIT_ERROR and "error: Cannot decode video" in out


def test_classify_errors_are_one_line(capsys, bare_folder, video_path, tmp_path):
    code, _, err = run(capsys, "classify", video_path, "--model", bare_folder)
    assert code == EXIT_ERROR and "has no label bank: pass --labels" in err
    code, _, err = run(capsys, "classify", video_path, "--model", tmp_path / "missing", "--labels", "dog")
    assert code == EXIT_ERROR and err.startswith("ovmlv classify: error:") and len(err.strip().splitlines()) == 1


def test_each_command_runs_its_own_module(capsys, monkeypatch, tmp_path):
    """`ovmlv evaluate` builds its options and runs through `ovmlv.commands.evaluate`, imported only then; its
    library (and the train extra) loads when it runs, and a missing optional dependency names the extra."""
    received = []
    module = types.ModuleType("ovmlv.commands.evaluate")
    module.add_arguments = lambda parser: parser.add_argument("--model")
    module.run = lambda args: received.append(args.model) or EXIT_OK
    monkeypatch.setitem(sys.modules, "ovmlv.commands.evaluate", module)
    assert main(["evaluate", "--model", "m"]) == EXIT_OK
    assert received == ["m"]

    monkeypatch.delitem(sys.modules, "ovmlv.commands.evaluate")
    monkeypatch.delitem(sys.modules, "ovmlv.training.evaluate", raising=False)
    monkeypatch.setitem(sys.modules, "accelerate", None)  # as if the train extra were not installed
    argv = ["evaluate", "--model", "m", "--out", str(tmp_path), "--manifest", "m.jsonl"]
    assert main(argv) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("ovmlv evaluate: error:") and "accelerate" in err and "pip install 'ovmlv[train]'" in err
    monkeypatch.setitem(sys.modules, "ovmlv.training.evaluate", None)  # our own module broken: no extra to name
    assert main(argv) == EXIT_ERROR
    assert "pip install" not in capsys.readouterr().err


def test_unknown_commands_and_no_command(capsys):
    assert main(["evaluat"]) == EXIT_USAGE
    assert "Did you mean `ovmlv evaluate`?" in capsys.readouterr().err
    assert main([]) == EXIT_USAGE
    assert "commands:" in capsys.readouterr().err


def test_train_checks_the_config_before_launching(capsys, monkeypatch, tmp_path):
    """A typo fails in one line before any process starts; a good command line becomes one `accelerate launch`."""
    from ovmlv.training import launch

    launched = []
    monkeypatch.setattr(
        launch.subprocess,
        "run",
        lambda command, check: launched.append(command) or types.SimpleNamespace(returncode=0),
    )
    assert main(["train", "--config", "synthetic_tiny", "--lrr", "3"]) == EXIT_ERROR
    assert "--lrr is no field" in capsys.readouterr().err and not launched
    assert main(["train", "--config", "no_such_config"]) == EXIT_ERROR
    assert "neither a file nor a shipped config" in capsys.readouterr().err

    monkeypatch.chdir(tmp_path)  # shipped configs are found from anywhere, DeepSpeed's JSON too
    assert main(["train", "--config", "synthetic_tiny"]) == EXIT_ERROR and not launched
    assert "names data files that do not exist here: outputs/demo/data/train.jsonl" in capsys.readouterr().err
    data = load_config(launch.resolve("synthetic_tiny", "--config")).data
    for spec in (*data.train, *data.validation):  # the data files it names, present (checked before launching)
        for name in (spec.manifest, spec.vocabulary, spec.kinds):
            if name is not None:
                (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
                (tmp_path / name).touch()
    assert (
        main(["train", "--launch-config", "accelerate_zero2", "--config", "synthetic_tiny", "--lr", "1e-4"]) == EXIT_OK
    )
    [command] = launched
    assert command[command.index("-m", 3) :][:2] == ["-m", "ovmlv.training.train"] and command[-2:] == ["--lr", "1e-4"]
    assert Path(command[command.index("--deepspeed_config_file") + 1]).name == "ds_zero2.json"
    assert Path(command[command.index("--config") + 1]).is_file()


def test_module_entry_point(tmp_path):
    """`python -m ovmlv` is what the `ovmlv` console script runs (`ovmlv.cli:main`), from any folder."""
    completed = subprocess.run(
        [sys.executable, "-m", "ovmlv", "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == EXIT_OK and completed.stdout.startswith("usage: ovmlv")


FRONT_DOOR = """
import json, sys, time
HEAVY = ("torch", "transformers", "numpy", "av", "pyarrow", "gradio", "accelerate")
from ovmlv.cli import main
timings = {}
for argv in [["--help"], ["clasify"], *[[name, "--help"] for name in sys.argv[1:]]]:
    start = time.perf_counter()
    try:
        main(argv)
    except SystemExit:
        pass
    timings[" ".join(argv)] = time.perf_counter() - start
heavy = sorted(name for name in HEAVY if name in sys.modules)
import ovmlv.modeling_ovmlv  # registers the pipeline task
from transformers.pipelines import PIPELINE_REGISTRY
print(json.dumps({"heavy": heavy, "timings": timings, "task": "zero-shot-video-classification" in PIPELINE_REGISTRY.supported_tasks}))
"""


def test_help_and_mistyped_commands_do_not_wait_for_torch(tmp_path):
    """`ovmlv --help`, a mistyped command and every command's --help import neither torch, transformers, numpy nor
    any other heavy library (command modules import their library in `run`; the pipeline task is registered lazily,
    `ovmlv.registration`); importing the model registers it. The times are reported, not asserted: a loaded CI
    machine would make a bound flaky, and what makes help slow is an import, which is asserted."""
    commands = list(COMMANDS)
    completed = subprocess.run(
        [sys.executable, "-c", FRONT_DOOR, *commands], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["heavy"] == [] and result["task"]
    assert set(result["timings"]) == {"--help", "clasify", *(f"{name} --help" for name in commands)}
    print("\n".join(f"ovmlv {argv}: {seconds:.3f} s" for argv, seconds in result["timings"].items()))
