"""The pipeline with inputs a user gets wrong: a bad video inside a batch, frames given as a list, call arguments
that are wrong for every video. A batch never loses its good results; one video still raises."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ovmlv.modeling_ovmlv import OvmlvModel, ZeroShotVideoClassificationPipeline
from ovmlv.processing import VideoDecodeError
from tests.hub_model_folder import VOCABULARY, save_trained_folder
from tests.video_files import write_not_video, write_video

LABELS = ["dog", "beach", "surfing"]


@pytest.fixture(scope="module")
def classifier(towers, processor, tmp_path_factory) -> ZeroShotVideoClassificationPipeline:
    folder = save_trained_folder(tmp_path_factory.mktemp("model"), towers, processor, VOCABULARY)
    return ZeroShotVideoClassificationPipeline(model=OvmlvModel.from_pretrained(folder), processor=processor)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("videos")
    return {
        "good": str(write_video(folder / "good.mp4", num_frames=12, fps=12)),
        "other": str(write_video(folder / "other.webm", codec="libvpx-vp9", num_frames=8, fps=8)),
        "broken": str(write_not_video(folder / "broken.mp4")),
        "missing": str(folder / "missing.mp4"),
    }


def scores(result: list[dict]) -> dict[str, float]:
    return {item["label"]: item["score"] for item in result}


@pytest.mark.parametrize("batch_size", [1, 3])
def test_a_bad_video_in_a_batch_keeps_the_good_results(classifier, videos, batch_size, caplog):
    order = ["good", "broken", "other", "missing", "good"]
    with caplog.at_level("WARNING"):
        results = classifier([videos[name] for name in order], candidate_labels=LABELS, batch_size=batch_size)
    assert len(results) == len(order)
    for name, result in zip(order, results, strict=True):
        if name in ("broken", "missing"):
            assert result["video"] == videos[name] and result["error"].startswith(
                f"Cannot decode video {videos[name]}"
            )
        else:
            alone = classifier(videos[name], candidate_labels=LABELS)
            assert scores(result) == pytest.approx(scores(alone), abs=1e-5)
    assert sum("the other videos are scored" in record.message for record in caplog.records) == 2


def test_a_generator_of_videos_is_a_batch_too(classifier, videos):
    results = list(classifier((videos[name] for name in ("broken", "good")), candidate_labels=LABELS))
    assert "error" in results[0] and sorted(scores(results[1])) == sorted(LABELS)


def test_a_single_bad_video_still_raises(classifier, videos):
    with pytest.raises(VideoDecodeError, match="broken.mp4"):
        classifier(videos["broken"], candidate_labels=LABELS)
    assert classifier([], candidate_labels=LABELS) == []


def test_frames_given_as_a_list_are_one_video(classifier):
    frames = np.random.default_rng(0).integers(0, 255, (5, 40, 50, 3), dtype=np.uint8)
    as_array = classifier(frames, candidate_labels=LABELS)
    for as_list in ([Image.fromarray(frame) for frame in frames], list(frames)):
        result = classifier(as_list, candidate_labels=LABELS)
        assert isinstance(result[0], dict)  # one ranking, not one per frame
        assert scores(result) == pytest.approx(scores(as_array), abs=1e-5)


@pytest.mark.parametrize(
    "argument",
    [{"num_frames": 0}, {"clips": 0}, {"num_frames": -2}, {"clips": 1.5}, {"num_frames": 100000}, {"clips": 20000}],
)
def test_arguments_wrong_for_every_video_raise_for_the_call(classifier, videos, argument):
    name = next(iter(argument))
    with pytest.raises(ValueError, match=f"{name}.* must be a whole number from 1 to "):
        classifier([videos["good"], videos["other"]], candidate_labels=LABELS, **argument)


def test_processor_arguments_are_not_replaced_by_defaults(processor, videos):
    with pytest.raises(ValueError, match="num_frames must be a whole number from 1 to"):
        processor(videos=videos["good"], num_frames=0)
    with pytest.raises(ValueError, match="num_clips"):
        processor(videos=videos["good"], num_clips=0)
    assert processor(videos=videos["good"], num_frames=3)["pixel_values_videos"].shape[1] == 3


@pytest.mark.parametrize("source, reason", [("", "the path is empty"), (42, "cannot read a video from a int")])
def test_an_unusable_source_says_what_it_is(processor, source, reason):
    with pytest.raises(VideoDecodeError, match=reason):
        processor(videos=source)
