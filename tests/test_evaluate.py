"""`python -m training.evaluate` (via `ovmlv evaluate`): a saved model on two manifests end to end, its files read
back by the model card's own reader and checked against metrics recomputed from the saved scores, the
perfect-score case, label-bank reuse, and the errors a user meets."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from ovmlv import cli
from ovmlv.hub_cards.eval_results import METRIC_NAMES, read_eval_results
from ovmlv.hub_cards.export import build_model_card
from ovmlv.modeling_ovmlv import LabelBank, OvmlvModel
from ovmlv.modeling_ovmlv.label_bank import embed_labels
from ovmlv.processing import OvmlvProcessor
from ovmlv.training.batching import Vocabulary
from ovmlv.training.config import ManifestConfig
from ovmlv.training.eval_loop import EvalResult, embed_vocabularies, evaluation_report
from ovmlv.training.eval_reports import CURVE_THRESHOLDS, PLOT_NAME, EvaluatedSet, card_results, summarise
from ovmlv.training.evaluate import vocabulary_embeddings
from ovmlv.training.metrics import deployment_threshold, f1_at_threshold, multilabel_report, top_k_accuracy
from tests.hub_model_folder import save_trained_folder
from tests.process_state import reset_accelerate_state
from tests.video_files import write_not_video, write_video

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
KINDS = {"dog": "object", "red circle": "object", "beach": "scene", "surfing": "action"}
OBJECT_ROWS = [("red.mp4", ["red circle", "dog"]), ("blue.mp4", ["beach"]), ("green.mp4", ["surfing", "dog"])]
ACTION_ROWS = [("red.mp4", "surfing"), ("blue.mp4", ""), ("green.mp4", "surfing|beach")]  # CSV: "" = no label
ACTION_VOCABULARY = ["surfing", "beach", "cooking"]  # "cooking" occurs in no video


@pytest.fixture(scope="module")
def model_folder(towers, processor, tmp_path_factory) -> Path:
    """Its label bank holds two of the labels the manifests use; the others must be encoded."""
    return save_trained_folder(tmp_path_factory.mktemp("model"), towers, processor, ["dog", "beach"])


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """Three solid-colour videos, an unreadable one, and two manifests: JSONL with kinds, CSV with a vocabulary."""
    folder = tmp_path_factory.mktemp("data")
    for name, colour in [("red", (255, 0, 0)), ("blue", (0, 0, 255)), ("green", (0, 255, 0))]:
        frame = np.full((48, 64, 3), colour, dtype=np.uint8)
        write_video(folder / f"{name}.mp4", num_frames=8, fps=8, frame_fn=lambda i, frame=frame: frame)
    write_not_video(folder / "broken.mp4")
    rows = [{"video": video, "labels": labels} for video, labels in [*OBJECT_ROWS, ("broken.mp4", ["dog"])]]
    (folder / "objects.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (folder / "kinds.json").write_text(json.dumps(KINDS))
    (folder / "actions.csv").write_text("video,labels\n" + "".join(f"{v},{labels}\n" for v, labels in ACTION_ROWS))
    (folder / "actions_vocab.txt").write_text("\n".join(ACTION_VOCABULARY) + "\n")
    return folder


@pytest.fixture(autouse=True, scope="module")
def _fresh_accelerate_state():
    """The CLI builds an Accelerator in this process; leave no Accelerate state to the next test module."""
    yield
    reset_accelerate_state()


def evaluate_cli(*argv) -> tuple[int, str, str]:
    """`ovmlv evaluate ARGV`: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["evaluate", *map(str, argv)])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def run(model_folder, data, tmp_path_factory) -> tuple[Path, str]:
    """(out folder, stdout) of one evaluation of both manifests: 2 clips x 2 frames, batches of 2 videos."""
    out = tmp_path_factory.mktemp("eval") / "out"
    code, stdout, stderr = evaluate_cli(
        "--model", model_folder, "--out", out,
        "--manifest", data / "objects.jsonl", "--kinds", data / "kinds.json", "--name", "objects",
        "--dataset-id", "org/objects", "--split", "val",
        "--manifest", data / "actions.csv", "--vocabulary", data / "actions_vocab.txt", "--no-calibrate",
        "--num-frames", 2, "--num-clips", 2, "--batch-size", 2, "--num-workers", 0, "--save-scores",
        *(["--plot"] if HAS_MATPLOTLIB else []),
    )  # fmt: skip
    assert code == 0, stderr
    assert "skipped 1 unreadable video" in stderr and "objects: 4 labels, 2 encoded" in stderr
    return out, stdout


def saved_scores(out: Path, name: str) -> dict[str, np.ndarray]:
    return dict(np.load(out / "scores" / f"{name}.npz"))


def test_results_json_is_what_the_model_card_takes(run, model_folder):
    out, _ = run
    assert "top_1_accuracy" not in json.loads((out / "report.json").read_text())["datasets"]["objects"]  # multi-label
    raw = json.loads((out / "results.json").read_text())
    assert set(raw) == {"results"}  # no --model-name: the card uses the repo name
    for entry in raw["results"]:
        assert set(entry) <= {"dataset", "dataset_id", "config", "split", "metrics"}
        assert set(entry["metrics"]) <= set(METRIC_NAMES)

    report = read_eval_results(out / "results.json")
    names = [(r.dataset, r.config, r.split, r.dataset_id) for r in report.results]
    assert names == [
        ("objects", None, "val", "org/objects"),
        ("objects (action)", "action", "val", "org/objects"),
        ("objects (object)", "object", "val", "org/objects"),
        ("objects (scene)", "scene", "val", "org/objects"),
        ("actions", None, "test", None),
    ]
    overall = report.results[0].metrics
    assert overall["num_videos"] == 3 and overall["threshold"] == 0.0 and overall["recall"] == 1.0  # model's 0.0

    card = build_model_card(
        OvmlvModel.from_pretrained(model_folder), OvmlvProcessor.from_pretrained(model_folder), "org/m", report
    )
    assert "| objects (object) | val |" in card.text
    scores = {(r.dataset_name, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert scores[("objects", "aupr_macro")] == pytest.approx(overall["aupr_macro"])


def test_metrics_agree_with_the_saved_scores(run):
    out, _ = run
    report = json.loads((out / "report.json").read_text())
    objects, actions = saved_scores(out, "objects"), saved_scores(out, "actions")
    assert list(objects["labels"]) == sorted(KINDS) and list(actions["labels"]) == ACTION_VOCABULARY
    assert [Path(video).name for video in objects["videos"]] == [video for video, _ in OBJECT_ROWS]
    assert objects["targets"].tolist() == [
        [label in labels for label in sorted(KINDS)] for _, labels in OBJECT_ROWS
    ]  # the unreadable video is not a row
    assert actions["targets"][:, 2].sum() == 0 and actions["targets"][1].sum() == 0

    for name, saved in [("objects", objects), ("actions", actions)]:
        expected = multilabel_report(saved["targets"], saved["scores"], threshold=0.0)
        got = {key: report["datasets"][name][key] for key in expected}
        assert got == pytest.approx({k: (None if np.isnan(v) else v) for k, v in expected.items()}, nan_ok=True)
    assert report["datasets"]["objects"]["num_unreadable_videos"] == 1
    assert report["datasets"]["actions"]["skipped_classes"] == 1  # "cooking" has no positive: out of macro AUPR

    object_columns = [i for i, label in enumerate(objects["labels"]) if KINDS[label] == "object"]
    per_kind = multilabel_report(objects["targets"][:, object_columns], objects["scores"][:, object_columns], 0.0)
    assert report["datasets"]["objects"]["per_kind"]["object"] == pytest.approx(per_kind)

    threshold, min_f1 = deployment_threshold([(objects["targets"], objects["scores"])])  # actions: --no-calibrate
    assert report["deployment"] == {"threshold": threshold, "min_f1": min_f1, "calibrated_on": ["objects"]}
    at = f1_at_threshold(actions["targets"], actions["scores"], threshold)
    assert report["datasets"]["actions"]["at_deployment_threshold"] == pytest.approx(at)


def test_markdown_table_is_printed_and_written(run):
    out, stdout = run
    markdown = (out / "results.md").read_text()
    assert markdown.strip() == stdout.strip()
    lines = markdown.splitlines()
    assert (
        "| Dataset | Split | AUPR (macro) | AUPR (micro) | AUPR (per video) | Peak F1 |" in markdown
    )  # the card's columns
    assert any(line.startswith("| objects (scene) | val |") and "| – |" in line for line in lines)  # no video count
    assert "Deployment threshold **" in markdown and "over objects (paper §4.6)" in markdown
    assert "| objects | 4 | 3 | 1 | yes |" in markdown and "| actions | 3 | 3 | 0 | no |" in markdown


def test_curves_follow_the_scores(run):
    out, _ = run
    curves = json.loads((out / "curves.json").read_text())
    assert curves["thresholds"] == pytest.approx(CURVE_THRESHOLDS.tolist()) and curves["threshold"] == 0.0
    assert curves["deployment_threshold"] == json.loads((out / "report.json").read_text())["deployment"]["threshold"]
    objects = saved_scores(out, "objects")
    for i in (0, 1, 50):
        at = f1_at_threshold(objects["targets"], objects["scores"], CURVE_THRESHOLDS[i])
        assert {key: curves["datasets"]["objects"][key][i] for key in at} == pytest.approx(at)
    assert set(curves["datasets"]) == {"objects", "actions"}


@pytest.mark.skipif(not HAS_MATPLOTLIB, reason="matplotlib is optional")
def test_plot_is_a_png(run):
    out, _ = run
    assert (out / PLOT_NAME).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_label_bank_rows_are_reused_and_only_new_labels_encoded(model_folder):
    model, processor = OvmlvModel.from_pretrained(model_folder), OvmlvProcessor.from_pretrained(model_folder)
    model.label_bank.embeddings[model.label_bank.labels.index("dog")] = 7.0  # a row no encoder would produce
    embeds, num_encoded = vocabulary_embeddings(model, processor, ["surfing", "dog"], batch_size=8)
    assert num_encoded == 1 and torch.all(embeds[1] == 7.0)
    torch.testing.assert_close(embeds[0], embed_labels(["surfing"], model, processor)[0])


def test_training_evaluation_encodes_each_distinct_label_once(model_folder):
    """Validation sets share labels (world v2's three: 3,906 distinct of 7,584): each is encoded once per round."""
    from accelerate import Accelerator

    model, processor = OvmlvModel.from_pretrained(model_folder), OvmlvProcessor.from_pretrained(model_folder)
    model.train()
    encoded: list[int] = []
    encode = model.get_label_features

    def counting_encode(**inputs):
        encoded.append(len(inputs["input_ids"]))
        return encode(**inputs)

    model.get_label_features = counting_encode
    sets = [
        SimpleNamespace(vocabulary=Vocabulary(labels))
        for labels in (["dog", "beach"], ["beach", "surfing", "dog"], ["surfing"])
    ]
    bank = embed_vocabularies(model, processor, sets, Accelerator(cpu=True), label_batch_size=8)

    assert sum(encoded) == 3 and bank.labels == ["dog", "beach", "surfing"]
    assert model.training  # put back as it was: training goes on after an evaluation
    model.eval()
    torch.testing.assert_close(bank.embeddings, embed_labels(["dog", "beach", "surfing"], model, processor))


def test_perfect_scores_give_aupr_and_f1_of_one():
    labels = ["dog", "beach", "surfing"]
    targets = np.array([[1, 0, 0], [0, 1, 1], [1, 0, 1], [0, 0, 0]], dtype=bool)
    scores = np.where(targets, 0.9, 0.1)
    kinds = {"dog": "object", "beach": "scene", "surfing": "action"}
    report = evaluation_report(targets, scores, Vocabulary(labels), kinds, threshold=0.5)
    result = EvalResult(targets, scores, report, labels, [f"v{i}.mp4" for i in range(4)])
    summary = summarise("m", 0.5, [EvaluatedSet(ManifestConfig("perfect.jsonl"), result, None, "test")], 8, 4)

    assert summary["deployment"]["min_f1"] == 1.0 and 0.1 < summary["deployment"]["threshold"] <= 0.9
    for entry in card_results(summary, "perfect-model")["results"]:
        metrics = entry["metrics"]
        assert metrics["aupr_macro"] == metrics["aupr_micro"] == metrics["peak_f1"] == 1.0
        assert metrics["f1"] == metrics["precision"] == metrics["recall"] == 1.0


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing model", "There is no model folder"),
        ("folder without a model", "folder without config.json"),
        ("missing manifest", "Manifest not found"),
        ("manifest without labels", "has no labels"),
        ("empty vocabulary", "is empty; write one label a line"),
        ("only unreadable videos", "None of the 1 videos of broken could be read"),
        ("same names", "give each its own --name"),
        ("no matplotlib", "--plot needs matplotlib"),
    ],
)
def test_errors_are_one_line_and_exit_1(case, message, model_folder, data, tmp_path, monkeypatch):
    (tmp_path / "unlabelled.jsonl").write_text(json.dumps({"video": "red.mp4", "labels": []}) + "\n")
    (tmp_path / "empty.txt").write_text("\n")
    (tmp_path / "broken.jsonl").write_text(json.dumps({"video": str(data / "broken.mp4"), "labels": ["dog"]}))
    manifest = ["--manifest", data / "objects.jsonl"]
    argv = {
        "missing model": ["--model", tmp_path / "missing", *manifest],
        "folder without a model": ["--model", tmp_path, *manifest],
        "missing manifest": ["--model", model_folder, "--manifest", tmp_path / "missing.jsonl"],
        "manifest without labels": ["--model", model_folder, "--manifest", tmp_path / "unlabelled.jsonl"],
        "empty vocabulary": ["--model", model_folder, *manifest, "--vocabulary", tmp_path / "empty.txt"],
        "only unreadable videos": ["--model", model_folder, "--manifest", tmp_path / "broken.jsonl"],
        "same names": ["--model", model_folder, *manifest, *manifest],
        "no matplotlib": ["--model", model_folder, *manifest, "--plot"],
    }[case]
    if case == "no matplotlib":
        monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, stdout, stderr = evaluate_cli(*argv, "--out", tmp_path / "out", "--num-workers", 0)
    assert code == 1 and stdout == "" and not (tmp_path / "out").exists()
    last_line = stderr.strip().splitlines()[-1]  # after any progress bars of reading the manifest
    assert last_line.startswith("ovmlv evaluate: error:") and message in last_line


def test_per_manifest_option_needs_its_manifest(model_folder, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        evaluate_cli("--model", model_folder, "--kinds", "k.json", "--manifest", "m.jsonl", "--out", tmp_path)
    assert exit_info.value.code == 2


def test_the_deployment_threshold_is_saved_into_an_uncalibrated_model(towers, processor, data, tmp_path):
    """A new model has no threshold; evaluating it on a calibrating set writes the deployment threshold (and
    what chose it) into its config.json, which the pipeline and the model card then use."""
    folder = tmp_path / "model"
    model = OvmlvModel.from_towers(clip=towers.clip, label_encoder="class_name", temporal_layers=0)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    options = ["--manifest", data / "objects.jsonl", "--name", "objects", "--num-frames", 2, "--num-workers", 0]

    code, stdout, stderr = evaluate_cli("--model", folder, "--out", tmp_path / "a", *options, "--no-save-threshold")
    assert code == 0, stderr
    assert "uncalibrated" in stdout  # F1 figures are shown at the deployment threshold only
    assert OvmlvModel.from_pretrained(folder).config.deployment_config.threshold is None

    code, _, stderr = evaluate_cli("--model", folder, "--out", tmp_path / "b", *options)
    assert code == 0, stderr
    deployment = json.loads((tmp_path / "b" / "report.json").read_text())["deployment"]
    config = OvmlvModel.from_pretrained(folder).config
    assert config.deployment_config.threshold == deployment[
        "threshold"
    ] and config.deployment_config.threshold_calibrated_on == ["objects"]
    assert "auto_map" in json.loads((folder / "config.json").read_text())  # still loads with remote code


def test_single_label_sets_report_top_k_and_groups_report_mean_and_std(model_folder, data, tmp_path):
    """UCF101, HMDB51 and the K600 zero-shot splits have one label a video and report top-1/top-5 accuracy; the K600
    splits are reported together as mean ± std (`--group`)."""
    rows = [("red.mp4", "red circle"), ("blue.mp4", "beach"), ("green.mp4", "surfing")]
    splits = {"split1": rows, "split2": rows[::-1][:2]}
    options = []
    for name, split_rows in splits.items():
        (data / f"{name}.jsonl").write_text(
            "".join(json.dumps({"video": v, "labels": [label]}) + "\n" for v, label in split_rows)
        )
        options += ["--manifest", data / f"{name}.jsonl", "--name", name, "--group", "k600", "--no-calibrate"]
    out = tmp_path / "out"
    code, stdout, stderr = evaluate_cli(
        "--model", model_folder, "--out", out, *options, "--num-frames", 2, "--num-workers", 0, "--save-scores"
    )
    assert code == 0, stderr
    report = json.loads((out / "report.json").read_text())
    accuracies = []
    for name in splits:
        saved = saved_scores(out, name)
        classes = saved["targets"].argmax(axis=1)
        expected = {k: top_k_accuracy(classes, saved["scores"], k) for k in (1, 5)}
        assert report["datasets"][name]["top_1_accuracy"] == pytest.approx(expected[1])
        assert report["datasets"][name]["top_5_accuracy"] == pytest.approx(expected[5])
        accuracies.append(expected[1])
    group = report["groups"]["k600"]
    assert group["sets"] == list(splits)
    assert group["top_1_accuracy"] == pytest.approx({"mean": np.mean(accuracies), "std": np.std(accuracies)})
    assert "Top-1 accuracy" in stdout and " ± " in stdout


def test_label_interpolation_curve_is_reported_chosen_on_validation_and_saved_with_the_threshold(
    towers, processor, data, model_folder, tmp_path
):
    """`--label-interpolation`: r = 1 scores exactly as frozen class names (the class-name model's own evaluation of
    the same videos), the chosen r and the threshold calibrated at it are saved together, and the label bank beside
    the model is re-encoded at that r."""
    folder = tmp_path / "model"
    model = OvmlvModel.from_towers(towers.clip, towers.llm, temporal_layers=0)
    with torch.no_grad():
        model.label_encoder.label_gate.fill_(1.0)  # as if trained: the learnt part counts
    model.label_bank = LabelBank.build(model, processor, ["dog", "beach"], progress=False)
    model.save_pretrained(folder)
    OvmlvProcessor.from_towers(towers.clip, towers.llm).save_pretrained(folder)
    options = ["--manifest", data / "objects.jsonl", "--name", "objects", "--num-frames", 2, "--num-clips", 1]
    options += ["--num-workers", 0]

    code, stdout, stderr = evaluate_cli("--model", folder, "--out", tmp_path / "a", *options, "--label-interpolation")
    assert code == 0, stderr
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    curve = report["label_interpolation"]
    assert curve["ratios"] == [0.0, 0.25, 0.5, 0.75, 1.0] and len(curve["aupr_macro"]["objects"]) == 5
    aupr = curve["aupr_macro"]["objects"]
    assert curve["chosen"] == curve["ratios"][int(np.argmax(aupr))]
    assert report["datasets"]["objects"]["aupr_macro"] == pytest.approx(max(aupr))  # the figures are at the chosen r
    assert "Label-side interpolation" in stdout

    code, _, stderr = evaluate_cli("--model", model_folder, "--out", tmp_path / "b", *options, "--no-save-threshold")
    assert code == 0, stderr
    class_names = json.loads((tmp_path / "b" / "report.json").read_text())["datasets"]["objects"]["aupr_macro"]
    assert aupr[-1] == pytest.approx(class_names, abs=1e-6)

    saved = OvmlvModel.from_pretrained(folder).eval()
    assert saved.config.deployment_config.label_interpolation == curve["chosen"]
    assert saved.config.deployment_config.threshold == report["deployment"]["threshold"]
    with torch.no_grad():
        expected = saved.get_label_features(**processor.label_inputs(["dog", "beach"]))
    torch.testing.assert_close(saved.label_bank.embeddings, expected, atol=1e-5, rtol=0)


def test_label_interpolation_needs_an_llm_prompted_model(model_folder, data, tmp_path):
    code, _, stderr = evaluate_cli(
        "--model", model_folder, "--out", tmp_path, "--manifest", data / "objects.jsonl", "--label-interpolation"
    )
    assert code == 1 and "label_encoder='llm_prompted'" in stderr and "Traceback" not in stderr
