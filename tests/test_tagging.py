"""`ovmlv tag`: per video, the labels at or above the threshold and the top-k, as the model scores them, in JSONL
and Parquet; an uncalibrated model gets the top-k only, and says so."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from ovmlv import arguments, cli
from ovmlv.modeling_ovmlv import LabelBank, OvmlvModel
from ovmlv.modeling_ovmlv.label_bank import embed_labels
from ovmlv.video_library.index_store import VideoIndex
from tests.hub_model_folder import VOCABULARY, save_trained_folder
from tests.video_library_files import build_index, write_library

THRESHOLD, TOP_K = 0.05, 2
LABELS = ["dog", "beach", "cat", 'a "red" café']  # the last two are not in the label bank: encoded


@pytest.fixture(scope="module")
def model_folder(towers, processor, tmp_path_factory) -> Path:
    return save_trained_folder(tmp_path_factory.mktemp("model"), towers, processor, VOCABULARY)


@pytest.fixture(scope="module")
def index(model_folder, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("library")
    return build_index(write_library(folder / "videos"), model_folder, folder / "library.index")


@pytest.fixture(scope="module")
def expected(index, model_folder, processor) -> dict[str, dict[str, float]]:
    """Every video's probability for every label, straight from the model."""
    model = OvmlvModel.from_pretrained(model_folder).eval()
    videos, embeddings = VideoIndex.open(index).embedded()
    with torch.no_grad():
        probs = model.logits(embeddings, embed_labels(LABELS, model, processor)).sigmoid()
    return {video: dict(zip(LABELS, row.tolist(), strict=True)) for video, row in zip(videos, probs, strict=True)}


def ranked(scores: dict[str, float], top_k: int | None = None, threshold: float | None = None) -> list[str]:
    order = sorted(scores, key=scores.get, reverse=True)
    return [label for label in order if threshold is None or scores[label] >= threshold][:top_k]


def tag(index: Path, out: Path, *options: str) -> int:
    return cli.main(["tag", str(index), "--labels", *LABELS, "--out", str(out), "--top-k", str(TOP_K), *options])


def test_jsonl_tags_are_the_models_scores_cut_by_threshold_and_top_k(index, expected, tmp_path):
    assert tag(index, tmp_path / "tags.jsonl", "--threshold", str(THRESHOLD)) == arguments.EXIT_OK
    records = [json.loads(line) for line in (tmp_path / "tags.jsonl").read_text().splitlines()]
    assert sorted(record["video"] for record in records) == sorted(expected)
    predicted_any = 0
    for record in records:
        scores = expected[record["video"]]
        assert record["threshold"] == THRESHOLD
        assert [item["label"] for item in record["top_k"]] == ranked(scores, TOP_K)
        assert [item["label"] for item in record["predicted"]] == ranked(scores, threshold=THRESHOLD)
        for item in record["top_k"] + record["predicted"]:
            assert item["score"] == pytest.approx(scores[item["label"]], abs=1e-6)
        predicted_any += len(record["predicted"])
    assert 0 < predicted_any < len(records) * len(LABELS)  # the threshold did cut


def test_parquet_holds_the_same_tags(index, expected, tmp_path):
    assert tag(index, tmp_path / "tags.parquet", "--threshold", str(THRESHOLD)) == arguments.EXIT_OK
    table = pq.read_table(tmp_path / "tags.parquet")
    assert json.loads(table.schema.metadata[b"ovmlv.threshold"]) == THRESHOLD
    for row in table.to_pylist():
        scores = expected[row["video"]]
        assert row["top_labels"] == ranked(scores, TOP_K)
        assert row["predicted_labels"] == ranked(scores, threshold=THRESHOLD)
        assert row["top_scores"] == pytest.approx([scores[label] for label in row["top_labels"]], abs=1e-6)


def test_an_uncalibrated_model_tags_top_k_only_and_says_so(index, processor, tmp_path, capsys):
    folder = tmp_path / "uncalibrated"
    model = OvmlvModel.from_pretrained(VideoIndex.open(index).info.model)
    model.config.deployment_config.threshold = None
    model.label_bank = LabelBank.build(model, processor, VOCABULARY, progress=False)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    out = tmp_path / "tags.jsonl"
    assert (
        cli.main(["tag", str(index), "--model", str(folder), "--out", str(out), "--top-k", "3"]) == arguments.EXIT_OK
    )
    assert "never calibrated" in capsys.readouterr().err
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert all("predicted" not in record and len(record["top_k"]) == 3 for record in records)
    assert {item["label"] for record in records for item in record["top_k"]} <= set(VOCABULARY)  # the bank's labels

    cli.main(["tag", str(index), "--model", str(folder), "--out", str(tmp_path / "tags.parquet")])
    assert "predicted_labels" not in pq.read_table(tmp_path / "tags.parquet").column_names


def test_bad_output_names_are_refused(index, tmp_path, capsys):
    assert tag(index, tmp_path / "tags.csv") == arguments.EXIT_ERROR
    assert "write tags to a .jsonl or .parquet file" in capsys.readouterr().err
