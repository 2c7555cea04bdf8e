"""The moving-shapes benchmark: real decodable videos, consistent manifests, a clean held-out split, determinism,
and the property the demo relies on: time-reversed motions look alike frame by frame."""

import json
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

from ovmlv.training.synthetic import (
    COLOURS,
    SPLITS,
    TIME_REVERSAL_PAIRS,
    SyntheticConfig,
    generate_dataset,
    main,
    sample_track,
    sample_video,
)

TINY = SyntheticConfig(num_train=6, num_val=3, num_heldout=3, size=48, fps=8, seconds=2.0, seed=3)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("synthetic")
    return out, generate_dataset(out, TINY, progress=False)


def read_manifest(out: Path, split: str) -> list[dict]:
    return [json.loads(line) for line in (out / f"{split}.jsonl").read_text().splitlines()]


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def decode(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov distance: the largest gap between the empirical CDFs."""
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    cdf_b = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(np.abs(cdf_a - cdf_b).max())


def test_videos_decode_with_expected_frames_and_size(dataset: tuple[Path, dict]) -> None:
    out, summary = dataset
    assert summary["num_frames"] == TINY.num_frames == 16
    for split in SPLITS:
        for record in read_manifest(out, split):
            assert not Path(record["video"]).is_absolute()
            assert decode(out / record["video"]).shape == (16, 48, 48, 3)


def test_manifests_and_vocabularies_are_consistent(dataset: tuple[Path, dict]) -> None:
    out, summary = dataset
    vocab_all, vocab_train = read_lines(out / "vocab_all.txt"), read_lines(out / "vocab_train.txt")
    kinds = json.loads((out / "labels.json").read_text())
    heldout = set(TINY.heldout_labels)
    assert list(kinds) == vocab_all and set(kinds.values()) == {"entity", "action", "scene"}
    assert kinds["red circle"] == "entity" and kinds["moving left"] == "action" and kinds["dark background"] == "scene"
    assert set(vocab_all) - set(vocab_train) == heldout and heldout <= set(vocab_all)
    assert json.loads((out / "time_reversal_pairs.json").read_text()) == [list(pair) for pair in TIME_REVERSAL_PAIRS]
    for split in SPLITS:
        records = read_manifest(out, split)
        assert len(records) == summary["num_videos"][split]
        for record in records:
            labels = set(record["labels"])
            assert record["source"] == "synthetic"
            assert labels <= set(vocab_all)
            assert sum(kinds[label] == "scene" for label in labels) == 1
            if split == "heldout":
                assert labels & heldout
            else:
                assert labels <= set(vocab_train)


def test_heldout_labels_only_in_heldout_split() -> None:
    heldout = set(TINY.heldout_labels)
    for index in range(300):
        assert not heldout & set(sample_video(TINY, "train", index).labels)
        assert not heldout & set(sample_video(TINY, "val", index).labels)
        assert heldout & set(sample_video(TINY, "heldout", index).labels)


def test_generation_is_deterministic_by_seed(dataset: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = dataset
    generate_dataset(tmp_path, TINY, workers=2, progress=False)  # other worker count, same bytes
    written = sorted(path.relative_to(out) for path in out.rglob("*") if path.is_file())
    assert written == sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*") if path.is_file())
    assert all((out / path).read_bytes() == (tmp_path / path).read_bytes() for path in written)
    other_seed = replace(TINY, seed=TINY.seed + 1)
    assert [sample_video(TINY, "train", i).labels for i in range(20)] != [
        sample_video(other_seed, "train", i).labels for i in range(20)
    ]


def test_decoded_video_shows_object_where_its_track_says(dataset: tuple[Path, dict]) -> None:
    out, _ = dataset
    palette = np.array([COLOURS[colour] for colour in TINY.colours], dtype=np.float64)
    for split in SPLITS:
        for index, record in enumerate(read_manifest(out, split)):
            top = sample_video(TINY, split, index).objects[-1]  # drawn last: nothing covers it
            frames = decode(out / record["video"]).astype(np.float64)
            rows = np.round(top.track.y).astype(int) % TINY.size
            cols = np.round(top.track.x).astype(int) % TINY.size
            centres = frames[np.arange(len(frames)), rows, cols]  # (T, 3)
            distances = np.linalg.norm(centres[:, None] - palette[None], axis=-1)  # (T, colours)
            assert (distances.argmin(axis=1) == TINY.colours.index(top.colour)).all()
            assert distances.min(axis=1).max() < 60


def wrapped_steps(values: np.ndarray, size: int) -> np.ndarray:
    """Frame-to-frame change, undoing the wrap-around of positions (radii never change by size / 2)."""
    return (np.diff(values, axis=-1) + size / 2) % size - size / 2


@pytest.mark.parametrize(
    ("motion", "reversed_motion", "attribute"),
    [("moving left", "moving right", "x"), ("moving up", "moving down", "y"), ("growing", "shrinking", "radius")],
)
def test_time_reversed_motions_look_alike_frame_by_frame(motion: str, reversed_motion: str, attribute: str) -> None:
    config = SyntheticConfig()

    def sample(name: str, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return np.stack([getattr(sample_track(name, config, rng), attribute) for _ in range(500)])  # (N, T)

    forward, backward = sample(motion, 0), sample(reversed_motion, 1)
    assert ks_statistic(forward.ravel(), backward.ravel()) < 0.05  # single frames: same distribution
    if attribute != "radius":  # positions match at every frame index too, not only pooled over frames
        assert ks_statistic(forward[:, 0], backward[:, 0]) < 0.1
        assert ks_statistic(forward[:, -1], backward[:, -1]) < 0.1
    forward_sign = np.unique(np.sign(wrapped_steps(forward, config.size)))
    backward_sign = np.unique(np.sign(wrapped_steps(backward, config.size)))
    assert len(forward_sign) == 1 and forward_sign[0] != 0 and (backward_sign == -forward_sign).all()


def test_rotation_turns_in_place_and_bouncing_reflects_inside_the_frame() -> None:
    config = SyntheticConfig()
    rng = np.random.default_rng(0)
    for _ in range(50):
        rotating = sample_track("rotating", config, rng)
        assert np.ptp(rotating.x) == np.ptp(rotating.y) == 0
        turns = np.diff(rotating.heading)
        assert np.allclose(turns, turns[0]) and turns[0] != 0
        bouncing = sample_track("bouncing", config, rng)
        radius = bouncing.radius[0]
        assert (bouncing.x >= radius - 1e-9).all() and (bouncing.x <= config.size - radius + 1e-9).all()
        assert len(np.unique(np.sign(np.diff(bouncing.x)))) == 2  # at least one horizontal reflection


def test_config_rejects_impossible_settings() -> None:
    with pytest.raises(ValueError, match="even"):
        SyntheticConfig(size=63)
    with pytest.raises(ValueError, match="held-out"):
        SyntheticConfig(heldout_labels=("purple circle",))
    with pytest.raises(ValueError, match="max_objects"):
        SyntheticConfig(max_objects=20)


def test_cli_writes_dataset(tmp_path: Path) -> None:
    summary = main(["--out", str(tmp_path), "--num-train", "2", "--num-val", "1", "--num-heldout", "1"])
    assert summary["num_videos"] == {"train": 2, "val": 1, "heldout": 1}
    assert len(list((tmp_path / "videos").glob("*.mp4"))) == 4
