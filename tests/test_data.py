"""Manifests read with `datasets`, weighted mixing, segment decoding, and bad videos that never stop training."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from ovmlv.processing.frame_transforms import CLIP_MEAN, CLIP_STD
from ovmlv.training.config import DataConfig, ManifestConfig
from ovmlv.training.data import VideoClips, collate_clips, load_training_data, manifest_vocabulary, read_manifest
from tests.video_files import write_video

FPS, NUM_FRAMES = 12, 24  # 2 s videos


def grey_frame(index: int) -> np.ndarray:
    """Frame i is uniformly grey at level 10 * i: a decoded frame tells its index through its mean."""
    return np.full((48, 64, 3), 10 * index, dtype=np.uint8)


def frame_indices(pixels: torch.Tensor) -> np.ndarray:
    """Indices of the grey frames behind (T, 3, S, S) CLIP-normalised pixels."""
    mean, std = torch.tensor(CLIP_MEAN).view(3, 1, 1), torch.tensor(CLIP_STD).view(3, 1, 1)
    levels = ((pixels * std + mean) * 255).mean(dim=(1, 2, 3))
    return np.round(levels.numpy() / 10).astype(int)


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("manifest_videos")
    (root / "clips").mkdir()
    for name in ("a", "b", "c"):
        write_video(root / "clips" / f"{name}.mp4", num_frames=NUM_FRAMES, fps=FPS, frame_fn=grey_frame)
    (root / "clips" / "broken.mp4").write_bytes(b"not a video" * 50)
    return root


def test_jsonl_rows_get_absolute_paths_and_one_schema(videos: Path) -> None:
    manifest = write_jsonl(
        videos / "train.jsonl",
        [
            {"video": "clips/a.mp4", "labels": ["dog", "beach"]},
            {"video": "clips/b.mp4", "labels": ["cat"], "start": 0.5, "end": 1.5, "source": "k400"},
        ],
    )
    records = read_manifest(ManifestConfig(str(manifest)))
    assert records[0] == {
        "video": str(videos / "clips/a.mp4"),
        "labels": ["dog", "beach"],
        "start": None,
        "end": None,
        "source": "train",  # the manifest's name when a row names no source
    }
    assert records[1]["start"] == 0.5 and records[1]["source"] == "k400"


def test_csv_labels_are_pipe_separated(videos: Path) -> None:
    manifest = videos / "train.csv"
    manifest.write_text("video,labels,start,end\nclips/a.mp4,dog|playing fetch,0.0,1.0\n")
    (record,) = read_manifest(ManifestConfig(str(manifest)))
    assert record["labels"] == ["dog", "playing fetch"] and record["end"] == 1.0


@pytest.mark.parametrize(
    ("row", "message"),
    [({"video": "clips/a.mp4", "labels": ["x"], "start": 1.0}, "both `start` and `end`"), ({"video": "a"}, "lacks")],
)
def test_malformed_rows_are_named(videos: Path, row: dict, message: str) -> None:
    manifest = write_jsonl(videos / "bad.jsonl", [row])
    with pytest.raises(ValueError, match=message):
        read_manifest(ManifestConfig(str(manifest)))


def test_vocabulary_from_file_must_cover_the_labels(videos: Path) -> None:
    manifest = write_jsonl(videos / "v.jsonl", [{"video": "clips/a.mp4", "labels": ["dog", "cat"]}])
    (videos / "vocab.txt").write_text("dog\nbird\n")
    records = read_manifest(ManifestConfig(str(manifest)))
    assert manifest_vocabulary(ManifestConfig(str(manifest)), records) == ["cat", "dog"]  # no file: labels used
    with pytest.raises(ValueError, match="missing from its vocabulary"):
        manifest_vocabulary(ManifestConfig(str(manifest), vocabulary=str(videos / "vocab.txt")), records)


def test_manifests_mix_by_weight(tmp_path: Path) -> None:
    small = write_jsonl(tmp_path / "small.jsonl", [{"video": f"s{i}.mp4", "labels": ["s"]} for i in range(100)])
    large = write_jsonl(tmp_path / "large.jsonl", [{"video": f"l{i}.mp4", "labels": ["l"]} for i in range(300)])
    config = DataConfig(train=[ManifestConfig(str(large), weight=1), ManifestConfig(str(small), weight=3)])
    data = load_training_data(config, seed=0)
    sources = data.records["source"]
    assert set(data.records["video"]) == {
        str(tmp_path / f"{p}{i}.mp4") for p, n in (("s", 100), ("l", 300)) for i in range(n)
    }
    assert 0.7 < sources.count("small") / len(sources) < 0.8  # 3:1, the small manifest oversampled
    assert data.vocabulary.labels == ["l", "s"]
    assert load_training_data(config, seed=0).records["video"] == data.records["video"]


def clips_for(videos: Path, rows: list[dict], processor, **kwargs) -> VideoClips:
    manifest = write_jsonl(videos / "clips.jsonl", rows)
    return VideoClips(read_manifest(ManifestConfig(str(manifest))), processor, num_frames=4, **kwargs)


def test_segment_frames_come_from_the_segment(videos: Path, processor) -> None:
    clips = clips_for(videos, [{"video": "clips/a.mp4", "labels": ["x"], "start": 1.0, "end": 2.0}], processor)
    indices = frame_indices(clips[0]["pixel_values_videos"])
    assert indices.min() >= FPS and np.all(np.diff(indices) > 0)  # the second half, one frame per segment
    whole = clips_for(videos, [{"video": "clips/a.mp4", "labels": ["x"]}], processor, sampling="uniform")
    assert frame_indices(whole[0]["pixel_values_videos"]).tolist() == [3, 9, 15, 21]  # segment centres


def test_training_frames_change_with_the_epoch_only(videos: Path, processor) -> None:
    clips = clips_for(videos, [{"video": "clips/a.mp4", "labels": ["x"]}], processor, seed=0)
    first = clips[0]["pixel_values_videos"]
    assert torch.equal(clips[0]["pixel_values_videos"], first)
    clips.set_epoch(1)
    assert not torch.equal(clips[0]["pixel_values_videos"], first)


def test_bad_training_video_is_replaced_and_counted(videos: Path, processor) -> None:
    rows = [
        {"video": "clips/broken.mp4", "labels": ["broken"]},
        {"video": "clips/missing.mp4", "labels": ["missing"]},
        {"video": "clips/b.mp4", "labels": ["b"]},
        {"video": "clips/c.mp4", "labels": ["c"]},
    ]
    clips = clips_for(videos, rows, processor)
    sample = clips[0]
    assert sample["labels"] == ["b"] and sample["valid"]
    assert [Path(path).name for path in sample["skipped"]] == ["broken.mp4", "missing.mp4"]
    serial = collate_clips([clips[i] for i in range(4)])
    assert serial["num_skipped_videos"] == 3  # records 0 and 1 replaced (2 + 1 attempts)
    assert serial["labels"] == [["b"], ["b"], ["b"], ["c"]]
    # Decoding in a worker process gives the same batch, and the count crosses the process boundary.
    (parallel,) = DataLoader(clips, batch_size=4, num_workers=1, collate_fn=collate_clips)
    assert torch.equal(parallel["pixel_values_videos"], serial["pixel_values_videos"])
    assert parallel["num_skipped_videos"] == 3

    clips.max_consecutive_bad = 2
    with pytest.raises(RuntimeError, match="2 consecutive videos"):
        clips[0]


def test_bad_validation_video_is_masked_not_replaced(videos: Path, processor) -> None:
    rows = [{"video": "clips/broken.mp4", "labels": ["x"]}, {"video": "clips/a.mp4", "labels": ["y"]}]
    clips = clips_for(videos, rows, processor, num_clips=2, sampling="uniform", replace_bad=False)
    batch = collate_clips([clips[0], clips[1]])
    assert batch["valid"].tolist() == [False, True]
    assert batch["pixel_values_videos"].shape == (2, 2, 4, 3, 32, 32)
    assert batch["labels"] == [["x"], ["y"]] and batch["num_skipped_videos"] == 1
