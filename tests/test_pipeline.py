"""The zero-shot-video-classification pipeline, in-process and from a saved folder in a process without ovmlv."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch
from transformers import pipeline

from ovmlv.modeling_ovmlv import LabelBank, OvmlvModel, ZeroShotVideoClassificationPipeline
from tests.fresh_process import run_without_ovmlv


@pytest.fixture(scope="module")
def model_folder(towers, processor, tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    model = OvmlvModel.from_towers(clip=towers.clip, label_encoder="class_name", temporal_layers=0, threshold=0.0)
    model.label_bank = LabelBank.build(model, processor, ["dog", "beach"], progress=False)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def classifier(model_folder):
    return pipeline("zero-shot-video-classification", model=str(model_folder), trust_remote_code=True)


def expected_scores(model_folder, processor, video, labels):
    model = OvmlvModel.from_pretrained(model_folder).eval()
    inputs = processor(videos=video, text=labels)
    with torch.no_grad():
        return model(**inputs).logits_per_video.sigmoid()[0]


def test_scores_are_independent_sigmoids_sorted(classifier, model_folder, processor, video_path):
    labels = ["dog", "surfing", "red circle"]
    result = classifier(str(video_path), candidate_labels=labels)
    assert [set(item) for item in result] == [{"label", "score"}] * 3
    scores = [item["score"] for item in result]
    assert scores == sorted(scores, reverse=True)
    expected = dict(zip(labels, expected_scores(model_folder, processor, video_path, labels).tolist(), strict=True))
    for item in result:
        assert item["score"] == pytest.approx(expected[item["label"]], abs=1e-5)
    alone = classifier(str(video_path), candidate_labels=["surfing"])[0]["score"]
    assert alone == pytest.approx(expected["surfing"], abs=1e-5)  # scored independently of the other labels


def test_threshold_top_k_and_comma_string(classifier, video_path):
    full = classifier(str(video_path), candidate_labels="dog, beach, surfing")
    assert len(classifier(str(video_path), candidate_labels="dog, beach, surfing", top_k=2)) == 2
    middle = full[1]["score"]
    kept = classifier(str(video_path), candidate_labels=["dog", "beach", "surfing"], threshold=middle)
    assert [item["label"] for item in kept] == [item["label"] for item in full[:2]]


def test_batch_of_videos_matches_one_by_one(classifier, video_path, tmp_path):
    from tests.video_files import write_video

    other = write_video(tmp_path / "other.webm", codec="libvpx-vp9", num_frames=12, fps=12)
    videos = [str(video_path), str(other), str(video_path)]
    batched = classifier(videos, candidate_labels=["dog", "beach"], batch_size=2)
    single = [classifier(v, candidate_labels=["dog", "beach"]) for v in videos]
    assert len(batched) == 3
    for got, want in zip(batched, single, strict=True):
        assert [i["label"] for i in got] == [i["label"] for i in want]
        assert [i["score"] for i in got] == pytest.approx([i["score"] for i in want], abs=1e-5)


def test_label_bank_is_used_and_missing_labels_cached(classifier):
    assert classifier.label_bank.labels[:2] == ["dog", "beach"]
    before = len(classifier.label_bank)
    classifier(torch.zeros(4, 32, 32, 3, dtype=torch.uint8).numpy(), candidate_labels=["dog", "a new label"])
    assert len(classifier.label_bank) == before + ("a new label" not in classifier.label_bank.labels[:before])


def test_label_cache_is_bounded_and_keeps_the_models_vocabulary(model_folder, monkeypatch):
    classifier = pipeline("zero-shot-video-classification", model=str(model_folder), trust_remote_code=True)
    monkeypatch.setattr(classifier, "max_cached_labels", 3)
    frames = torch.zeros(4, 32, 32, 3, dtype=torch.uint8).numpy()
    for batch in (["a", "b"], ["c", "d"], ["e", "f", "g", "h"]):
        classifier(frames, candidate_labels=batch)
    # The bank's own labels stay; of the cached ones the oldest went, and all of the current call's stayed.
    assert classifier.label_bank.labels == ["dog", "beach", "e", "f", "g", "h"]
    classifier(frames, candidate_labels=["i"])
    assert classifier.label_bank.labels == ["dog", "beach", "g", "h", "i"]


def test_without_candidate_labels_the_bank_vocabulary_is_scored(classifier, video_path):
    assert sorted(item["label"] for item in classifier(str(video_path))) == ["beach", "dog"]


def test_errors_are_clear(classifier, video_path, towers):
    bankless = pipeline(
        model=OvmlvModel.from_towers(clip=towers.clip, label_encoder="class_name", temporal_layers=0),
        task="zero-shot-video-classification",
        processor=classifier.processor,
    )
    with pytest.raises(ValueError, match="candidate_labels is required"):
        bankless(str(video_path))
    with pytest.raises(ValueError, match="empty"):
        classifier(str(video_path), candidate_labels=[])
    with pytest.raises(TypeError, match="strings"):
        classifier(str(video_path), candidate_labels=["dog", 7])


def test_in_process_class_and_saved_pipeline_entry(model_folder, classifier):
    assert isinstance(classifier, ZeroShotVideoClassificationPipeline) or type(classifier).__name__ == (
        "ZeroShotVideoClassificationPipeline"
    )
    config = json.loads((model_folder / "config.json").read_text())
    assert config["custom_pipelines"]["zero-shot-video-classification"]["impl"] == (
        "pipeline_ovmlv.ZeroShotVideoClassificationPipeline"
    )
    assert config["auto_map"]["AutoModel"] == "modeling_ovmlv.OvmlvModel"


FRESH_PROCESS_SCRIPT = textwrap.dedent(
    """
    import json, sys

    from transformers import AutoModel, AutoProcessor, pipeline

    folder, video = sys.argv[1], sys.argv[2]
    classifier = pipeline("zero-shot-video-classification", model=folder, trust_remote_code=True)
    result = classifier(video, candidate_labels=["dog", "surfing"])
    model = AutoModel.from_pretrained(folder, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    logits = model(**processor(videos=video, text=["dog", "surfing"])).logits_per_video
    print(json.dumps({"pipeline": result, "logits": logits.tolist(), "module": type(model).__module__}))
    """
)


def test_saved_folder_works_in_a_fresh_process_without_ovmlv(model_folder, video_path, tmp_path, classifier):
    out = run_without_ovmlv(FRESH_PROCESS_SCRIPT, [str(model_folder), str(video_path)], tmp_path)
    assert out["module"].startswith("transformers_modules.")
    here = classifier(str(video_path), candidate_labels=["dog", "surfing"])
    assert {i["label"]: i["score"] for i in out["pipeline"]} == pytest.approx(
        {i["label"]: i["score"] for i in here}, abs=1e-5
    )


def test_an_uncalibrated_model_returns_every_label_ranked_and_says_so(towers, processor, video_path, caplog):
    """Zero-shot CLIP cosines (~0.15-0.3) put every sigmoid(cos / 0.07) near 0.9-0.99: a threshold never calibrated
    on data says nothing. A new model has none; the pipeline then ranks every label and warns once."""
    model = OvmlvModel.from_towers(clip=towers.clip, label_encoder="class_name", temporal_layers=0)
    assert model.config.deployment_config.threshold is None
    classifier = pipeline("zero-shot-video-classification", model=model, processor=processor)
    labels = ["dog", "beach", "surfing"]
    with caplog.at_level("WARNING"):
        first = classifier(str(video_path), candidate_labels=labels)
        second = classifier(str(video_path), candidate_labels=labels)
    assert sorted(item["label"] for item in first) == sorted(labels) and first == second
    assert [item["score"] for item in first] == sorted((item["score"] for item in first), reverse=True)
    assert sum("never calibrated" in record.message for record in caplog.records) == 1
    assert len(classifier(str(video_path), candidate_labels=labels, threshold=1.0)) == 0  # an explicit one applies


def test_the_lazy_registration_names_this_pipeline():
    """`ovmlv.registration` names the task and class as strings (so `import ovmlv` needs no torch): they must be
    this pipeline's, and `pipeline()` loads models through ovmlv's own class."""
    from transformers.pipelines import PIPELINE_REGISTRY

    from ovmlv import registration
    from ovmlv.modeling_ovmlv import PIPELINE_TASK

    assert registration.PIPELINE_TASK == PIPELINE_TASK
    module, name = registration.PIPELINE_CLASS.rsplit(".", 1)
    assert getattr(__import__(module, fromlist=[name]), name) is ZeroShotVideoClassificationPipeline
    task = PIPELINE_REGISTRY.supported_tasks[PIPELINE_TASK]
    assert task["impl"] == registration.PIPELINE_CLASS and task["pt"] == (registration.OvmlvAutoModel,)
