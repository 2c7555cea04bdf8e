"""The synthetic world: real decodable videos, consistent manifests, the held-out structure (unseen labels only in the
held-out split, a paraphrased copy), determinism, shapes that stay apart whatever their heading, synonyms that name
one concept each, and the property the demo relies on: time-reversed motions look alike frame by frame."""

import json
import math
import re
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

from ovmlv.arguments import EXIT_OK
from ovmlv.cli import main
from ovmlv.training.synonyms import SYNONYMS, paraphrase
from ovmlv.training.synthetic import (
    COLOURS,
    MOTIONS,
    PARAPHRASED,
    SCENES,
    SHAPES,
    SPLITS,
    TIME_REVERSAL_PAIRS,
    SyntheticConfig,
    generate_dataset,
    object_mask,
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


def test_the_world_holds_what_the_organism_needs() -> None:
    assert len(COLOURS) >= 10 and len(SHAPES) >= 8 and len(SCENES) >= 4
    assert {"red", "green", "blue", "yellow", "purple", "cyan", "white", "orange"} <= set(COLOURS)
    assert {"circle", "square", "triangle", "diamond", "ring", "cross", "bar", "star"} <= set(SHAPES)
    assert "pulsing" in MOTIONS and len(MOTIONS) == 9
    config = SyntheticConfig()
    assert len(config.label_kinds) == 10 * 8 + 8 + 9 + 4
    assert set(config.unseen_labels) == set(config.heldout_labels) | {
        f"{c} {s}" for c in COLOURS for s in ("star", "cross")
    }


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
    unseen = set(TINY.unseen_labels)
    assert list(kinds) == vocab_all and set(kinds.values()) == {"entity", "action", "scene"}
    assert kinds["red circle"] == kinds["star"] == "entity" and kinds["pulsing"] == "action"
    assert kinds["checkered background"] == "scene"
    assert set(vocab_all) - set(vocab_train) == unseen and {"star", "red star", "blue circle"} <= unseen
    assert json.loads((out / "time_reversal_pairs.json").read_text()) == [list(pair) for pair in TIME_REVERSAL_PAIRS]
    for split in SPLITS:
        records = read_manifest(out, split)
        assert len(records) == summary["num_videos"][split]
        for record in records:
            labels = set(record["labels"])
            assert record["source"] == "synthetic"
            assert labels <= set(vocab_all)
            assert sum(kinds[label] == "scene" for label in labels) == 1
            for label in labels:  # a pair comes with its shape
                if label.split(" ", 1)[0] in COLOURS:
                    assert label.split(" ", 1)[1] in labels
            if split == "heldout":
                assert labels & unseen
            else:
                assert labels <= set(vocab_train)


def test_paraphrased_copy_names_the_same_videos_in_synonyms(dataset: tuple[Path, dict]) -> None:
    out, _ = dataset
    vocab_all, vocab_paraphrased = read_lines(out / "vocab_all.txt"), read_lines(out / "vocab_paraphrased.txt")
    to_label = json.loads((out / "paraphrases.json").read_text())
    assert list(to_label) == vocab_paraphrased and set(to_label.values()) == set(vocab_all)
    pairs = set(TINY.entities)
    assert len(vocab_paraphrased) == len(pairs) + sum(
        len(SYNONYMS[label]) for label in vocab_all if label not in pairs
    )
    kinds, paraphrased_kinds = (
        json.loads((out / name).read_text()) for name in ("labels.json", "labels_paraphrased.json")
    )
    assert {p: kinds[to_label[p]] for p in paraphrased_kinds} == paraphrased_kinds
    assert to_label["hoop"] == "ring" and paraphrase("red ring", 1) == "scarlet hoop"
    for original, paraphrased in zip(read_manifest(out, "heldout"), read_manifest(out, PARAPHRASED), strict=True):
        assert paraphrased["video"] == original["video"]
        assert sorted({to_label[label] for label in paraphrased["labels"]}) == original["labels"]
        assert {label for label in vocab_paraphrased if to_label[label] in original["labels"]} == set(
            paraphrased["labels"]
        )


def test_synonyms_name_one_concept_each_and_never_a_canonical_word() -> None:
    concepts = [*COLOURS, *SHAPES, *MOTIONS, *SCENES]
    assert list(SYNONYMS) == concepts
    assert all(2 <= len(synonyms) <= 4 for synonyms in SYNONYMS.values())
    every = [synonym for synonyms in SYNONYMS.values() for synonym in synonyms]
    assert len(set(every)) == len(every)
    canonical_words = {word for concept in concepts for word in concept.split()}
    for synonym in every:
        assert not set(re.split(r"[ -]", synonym)) & canonical_words, synonym
    written = SyntheticConfig().paraphrases
    used = {
        word
        for label in written
        for word in every
        if label == word or label.startswith(f"{word} ") or label.endswith(f" {word}")
    }
    assert used == set(every)  # the paraphrased vocabulary uses every synonym


def test_unseen_labels_only_in_heldout_split() -> None:
    unseen = set(TINY.unseen_labels)
    for index in range(300):
        assert not unseen & set(sample_video(TINY, "train", index).labels)
        assert not unseen & set(sample_video(TINY, "val", index).labels)
        assert unseen & set(sample_video(TINY, "heldout", index).labels)


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


def inner_pixel(body: np.ndarray, marker: np.ndarray) -> tuple[int, int]:
    """A pixel of the object's colour whose 8 neighbours are too: away from edges that chroma subsampling blurs."""
    inside = body & ~marker
    padded = np.pad(inside, 1)
    core = np.ones_like(inside)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            core &= padded[1 + dy : 1 + dy + inside.shape[0], 1 + dx : 1 + dx + inside.shape[1]]
    rows, cols = np.nonzero(core)
    return int(rows[len(rows) // 2]), int(cols[len(cols) // 2])


def test_decoded_video_shows_object_where_its_track_says(dataset: tuple[Path, dict]) -> None:
    out, _ = dataset
    palette = np.array(list(COLOURS.values()), dtype=np.float64)
    checked = 0
    for split in SPLITS:
        for index, record in enumerate(read_manifest(out, split)):
            top = sample_video(TINY, split, index).objects[-1]  # drawn last: nothing covers it
            frames = decode(out / record["video"]).astype(np.float64)
            bodies, markers = object_mask(top, TINY.size)
            for frame, body, marker in zip(frames, bodies, markers, strict=True):
                row, col = inner_pixel(body, marker)
                distances = np.linalg.norm(frame[row, col] - palette, axis=-1)
                assert distances.argmin() == list(COLOURS).index(top.colour) and distances.min() < 60
                checked += 1
    assert checked == 12 * TINY.num_frames


def test_shapes_stay_apart_whatever_the_heading() -> None:
    """The diamond is no turned square, nor the ring a circle: at the best alignment over 72 headings, no two shapes'
    masks overlap by more than 0.8 intersection over union."""
    grid = np.arange(64) - 31.5
    u0, v0 = np.meshgrid(grid, grid)
    headings = np.linspace(0, 2 * math.pi, 72, endpoint=False)
    masks = {
        name: [shape(u0 * math.cos(h) + v0 * math.sin(h), v0 * math.cos(h) - u0 * math.sin(h), 20.0) for h in headings]
        for name, shape in SHAPES.items()
    }
    names = list(SHAPES)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            reference = masks[first][0]
            best = max((reference & turned).sum() / (reference | turned).sum() for turned in masks[second])
            assert 0 < best < 0.8, (first, second, best)


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


def test_rotation_turns_in_place_bouncing_reflects_and_pulsing_swings_through_the_sizes() -> None:
    config = SyntheticConfig()
    r_min, r_max = (fraction * config.size for fraction in config.radius_range)
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
        pulsing = sample_track("pulsing", config, rng)
        assert np.ptp(pulsing.x) == np.ptp(pulsing.y) == 0
        assert r_min - 1e-9 <= pulsing.radius.min() and pulsing.radius.max() <= r_max + 1e-9
        assert np.ptp(pulsing.radius) > (r_max - r_min) / 2  # 2.5 s at 1 Hz: through most of the range
        assert len(np.unique(np.sign(np.diff(pulsing.radius)))) == 2  # grows and shrinks


def test_config_rejects_impossible_settings() -> None:
    with pytest.raises(ValueError, match="even"):
        SyntheticConfig(size=63)
    with pytest.raises(ValueError, match="held-out"):
        SyntheticConfig(heldout_labels=("purple hexagon",))
    with pytest.raises(ValueError, match="max_objects"):
        SyntheticConfig(max_objects=200)


def test_cli_writes_dataset(tmp_path: Path, capsys) -> None:
    argv = ["synthetic", "--out", str(tmp_path), "--num-train", "2", "--num-val", "1", "--num-heldout", "1"]
    assert main(argv) == EXIT_OK
    summary = json.loads(capsys.readouterr().out)
    assert summary["num_videos"] == {"train": 2, "val": 1, "heldout": 1}
    assert len(list((tmp_path / "videos").glob("*.mp4"))) == 4
    assert len(read_lines(tmp_path / f"{PARAPHRASED}.jsonl")) == 1
