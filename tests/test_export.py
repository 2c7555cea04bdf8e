"""Hub export: a complete repo folder, a card whose metadata parses back with huggingface_hub, a faked push, and
the card's usage snippets run in a fresh process that has transformers/torch/av but not this package."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import huggingface_hub
import pytest
import torch
from huggingface_hub import HfApi, ModelCard
from huggingface_hub.repocard import metadata_load
from huggingface_hub.repocard_data import model_index_to_eval_results
from safetensors.torch import load_file

from ovmlv import arguments, cli
from ovmlv.hub_cards.eval_results import EvalResultsError, read_eval_results
from ovmlv.hub_cards.export import PICKLE_SUFFIXES, ExportError, build_model_card, export_model
from ovmlv.modeling_ovmlv import LabelBank, OvmlvModel, ZeroShotVideoClassificationPipeline
from ovmlv.processing import OvmlvProcessor
from tests.fresh_process import run_without_ovmlv
from tests.hub_model_folder import VOCABULARY, save_trained_folder

REPO_ID = "test-org/tiny-ovmlv"
EVAL_RESULTS = {
    "model_name": "tiny-ovmlv",
    "results": [
        {
            "dataset": "TAO",
            "dataset_id": "tao",
            "split": "val",
            "metrics": {"aupr_macro": 0.638, "peak_f1": 0.566, "peak_f1_threshold": 0.41, "threshold": 0.5, "f1": 0.5},
        },
        {"dataset": "ActivityNet", "metrics": {"aupr_macro": 0.502, "aupr_micro": None, "skipped_classes": 3}},
    ],
}


@pytest.fixture(scope="module")
def trained_folder(towers, processor, tmp_path_factory) -> Path:
    """No label bank: the export builds it from the vocabulary."""
    return save_trained_folder(tmp_path_factory.mktemp("trained"), towers, processor)


@pytest.fixture(scope="module")
def eval_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("eval") / "results.json"
    path.write_text(json.dumps(EVAL_RESULTS))
    return path


@pytest.fixture(scope="module")
def exported(trained_folder, eval_file, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hub") / "tiny-ovmlv"
    report = read_eval_results(eval_file)
    return export_model(trained_folder, out, REPO_ID, VOCABULARY, report, datasets=["test-org/shapes"])


def test_folder_is_a_complete_hub_repo(exported, trained_folder, processor):
    files = {p.relative_to(exported).as_posix() for p in exported.rglob("*") if p.is_file()}
    expected = {"README.md", "config.json", "model.safetensors", "processor_config.json", "tokenizer.json"}
    assert expected | {"label_bank.safetensors", "label_bank.json", "llm_tokenizer/tokenizer.json"} <= files
    assert not [name for name in files if Path(name).suffix in PICKLE_SUFFIXES]

    config = json.loads((exported / "config.json").read_text())
    processor_config = json.loads((exported / "processor_config.json").read_text())
    entry_points = [
        *config["auto_map"].values(),
        config["custom_pipelines"]["zero-shot-video-classification"]["impl"],
        processor_config["auto_map"]["AutoProcessor"],
    ]
    assert config["auto_map"]["AutoModel"] == "modeling_ovmlv.OvmlvModel"
    for entry in entry_points:
        assert entry.split(".")[0] + ".py" in files
    for code in exported.glob("*.py"):  # flat code: every relative import ships beside it
        for module in re.findall(r"^\s*from \.(\w+) import", code.read_text(), re.M):
            assert f"{module}.py" in files, f"{code.name} imports .{module}, which is not in the folder"

    trained, shipped = load_file(trained_folder / "model.safetensors"), load_file(exported / "model.safetensors")
    assert trained.keys() == shipped.keys()
    assert all(torch.equal(trained[key], shipped[key]) for key in trained)
    bank = LabelBank.load(exported)
    reference = LabelBank.build(OvmlvModel.from_pretrained(trained_folder), processor, VOCABULARY, progress=False)
    assert bank.labels == VOCABULARY
    assert torch.allclose(bank.embeddings, reference.embeddings, atol=1e-6)


def test_card_metadata_parses_back_with_huggingface_hub(exported):
    card = ModelCard.load(exported / "README.md")
    assert card.data.library_name == "transformers"
    assert card.data.pipeline_tag == "video-classification"
    assert {"zero-shot-video-classification", "multi-label", "custom_code"} <= set(card.data.tags)
    assert card.data.license == "apache-2.0"
    assert card.data.datasets == ["test-org/shapes"]

    name, results = model_index_to_eval_results(metadata_load(exported / "README.md")["model-index"])
    assert name == "tiny-ovmlv"
    scores = {(r.dataset_type, r.dataset_name, r.dataset_split, r.metric_type): r.metric_value for r in results}
    assert scores == {  # counts, thresholds and null values stay out of model-index
        ("tao", "TAO", "val", "aupr_macro"): 0.638,
        ("tao", "TAO", "val", "peak_f1"): 0.566,
        ("tao", "TAO", "val", "f1"): 0.5,
        ("ActivityNet", "ActivityNet", "test", "aupr_macro"): 0.502,
    }
    assert next(r for r in results if r.metric_type == "f1").metric_args == {"threshold": 0.5}
    assert all(r.task_type == "video-classification" for r in results)
    assert "| TAO | val | 0.638 | 0.566 | 0.410 | 0.500 | 0.500 | – |" in card.text
    assert "| ActivityNet | test | 0.502 | – | – | – | – | 3 |" in card.text
    assert f'model="{REPO_ID}"' in card.text and "4 labels of the training vocabulary" in card.text


def test_card_without_results_and_with_hub_towers(exported):
    model, processor = OvmlvModel.from_pretrained(exported), OvmlvProcessor.from_pretrained(exported)
    card = build_model_card(model, processor, "someone/model")
    assert card.data.eval_results is None and "model-index" not in card.content
    assert "No evaluation results were supplied" in card.text
    assert card.data.base_model is None  # the tiny towers are local folders, not Hub ids
    model.config.deployment_config.clip_name_or_path = "openai/clip-vit-base-patch32"
    assert build_model_card(model, processor, "someone/model").data.base_model == ["openai/clip-vit-base-patch32"]


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json", "not valid JSON"),
        ('{"results": {}}', '"results" list'),
        ('{"results": [{"metrics": {"aupr_macro": 0.5}}]}', r'results\[0\] needs a "dataset"'),
        ('{"results": [{"dataset": "TAO"}]}', '"metrics" object'),
        ('{"results": [{"dataset": "TAO", "metrics": {"aupr_macro": "high"}}]}', "must be a number or null"),
        ('{"results": [{"dataset": "TAO", "split": 1, "metrics": {"f1": 0.5}}]}', "'split' must be a string"),
    ],
)
def test_bad_eval_results_are_named(tmp_path, content, message):
    path = tmp_path / "results.json"
    path.write_text(content)
    with pytest.raises(EvalResultsError, match=message):
        read_eval_results(path)


def test_export_refuses_unsafe_or_incomplete_inputs(trained_folder, exported, tmp_path):
    with pytest.raises(ExportError, match="is not empty; pass --overwrite"):
        export_model(trained_folder, exported, REPO_ID, VOCABULARY)
    with pytest.raises(ExportError, match="holds the model being exported"):
        export_model(trained_folder, trained_folder.parent, REPO_ID, VOCABULARY, overwrite=True)
    with pytest.raises(ExportError, match="has no label bank: pass --vocab"):
        export_model(trained_folder, tmp_path / "out", REPO_ID)


class Killed(BaseException):
    """Stands for SIGKILL arriving during the export (BaseException: no `except Exception` stops it)."""


def test_an_export_killed_midway_leaves_the_previous_export_whole(trained_folder, tmp_path, monkeypatch):
    out = tmp_path / "export"
    export_model(trained_folder, out, REPO_ID, VOCABULARY)
    before = {path.relative_to(out): path.read_bytes() for path in out.rglob("*") if path.is_file()}

    def killed(folder: Path) -> None:
        assert (folder / "README.md").is_file()  # killed after the weights and the card were written
        raise Killed

    monkeypatch.setattr("ovmlv.hub_cards.export.write_export_checksums", killed)
    with pytest.raises(Killed):
        export_model(trained_folder, out, "test-org/other", VOCABULARY, overwrite=True)
    after = {path.relative_to(out): path.read_bytes() for path in out.rglob("*") if path.is_file()}
    assert after == before and sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # nothing half-written


def test_push_creates_the_repo_and_uploads_the_folder(trained_folder, tmp_path, monkeypatch, capsys):
    """Through `ovmlv export --push`, with HfApi's two network calls faked and the Hub marked offline."""
    calls = {}

    def create_repo(self, repo_id, **kwargs):
        calls["create_repo"] = (repo_id, kwargs)
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        root = Path(folder_path)
        calls["upload_folder"] = (repo_id, {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()})

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("dog\n\nbeach\n")
    out = tmp_path / "export"
    argv = ["export", "--model", str(trained_folder), "--out", str(out), "--vocab", str(vocab)]
    assert cli.main([*argv, "--push", "test-org/pushed", "--private"]) == arguments.EXIT_OK

    assert calls["create_repo"] == ("test-org/pushed", {"private": True, "exist_ok": True, "repo_type": "model"})
    repo_id, uploaded = calls["upload_folder"]
    assert repo_id == "test-org/pushed"
    assert uploaded == {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"README.md", "model.safetensors", "label_bank.json", "config.json"} <= uploaded
    assert 'model="test-org/pushed"' in (out / "README.md").read_text()
    assert LabelBank.load(out).labels == ["dog", "beach"]
    assert "Pushed to https://huggingface.co/test-org/pushed" in capsys.readouterr().out


FRESH_PROCESS_SCRIPT = textwrap.dedent(
    """
    import json, re, sys

    readme, folder, video, repo_id = sys.argv[1:]
    card = open(readme, encoding="utf-8").read()
    namespace = {}
    for snippet in re.findall(r"```python\\n(.*?)```", card, re.S):
        exec(snippet.replace(repo_id, folder).replace("video.mp4", video), namespace)
    print(json.dumps({
        "predictions": namespace["predictions"],
        "probabilities": dict(zip(namespace["labels"], namespace["probabilities"].tolist())),
        "best": namespace["best"],
        "module": type(namespace["model"]).__module__,
    }))
    """
)


def test_card_snippets_run_in_a_fresh_process_without_ovmlv(exported, video_path, tmp_path):
    """The card's snippets in a process that cannot import this package (see tests/fresh_process.py)."""
    fresh = run_without_ovmlv(
        FRESH_PROCESS_SCRIPT, [str(exported / "README.md"), str(exported), str(video_path), REPO_ID], tmp_path
    )
    assert fresh["module"].startswith("transformers_modules.")

    model, processor = OvmlvModel.from_pretrained(exported), OvmlvProcessor.from_pretrained(exported)
    here = ZeroShotVideoClassificationPipeline(model=model, processor=processor)
    expected = here(str(video_path), candidate_labels=["dog", "beach", "surfing"])  # threshold 0: all labels
    assert [item["label"] for item in fresh["predictions"]] == [item["label"] for item in expected]
    expected_scores = {item["label"]: item["score"] for item in expected}
    assert {item["label"]: item["score"] for item in fresh["predictions"]} == pytest.approx(expected_scores, abs=1e-5)
    assert fresh["probabilities"] == pytest.approx(expected_scores, abs=1e-5)
    with torch.no_grad():
        video_embeds = model.get_video_features(processor(videos=str(video_path))["pixel_values_videos"])
    best = model.label_bank.query(video_embeds, lambda v, t: model.logits(v, t).sigmoid(), top_k=5)[0]
    assert [item["label"] for item in fresh["best"]] == [item["label"] for item in best]
    assert sorted(item["label"] for item in best) == sorted(VOCABULARY)
