"""The synthetic world: real decodable videos, consistent manifests, the held-out structure (unseen labels only in the
held-out split, a paraphrased copy), determinism, shapes that stay apart whatever their heading, synonyms that name
one concept each, and the property the demo relies on: time-reversed motions look alike frame by frame."""

import json
import math
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

from ovmlv.arguments import EXIT_OK
from ovmlv.cli import main
from ovmlv.organism.synonyms import SYNONYMS
from ovmlv.organism.world import (
    COLOURS,
    DIRECTIONS,
    MOTIONS,
    PARAPHRASED,
    SCENES,
    SHAPES,
    SMALL_WORLD,
    SPLITS,
    TIME_REVERSAL_PAIRS,
    MovingObject,
    SyntheticConfig,
    VideoSpec,
    generate_dataset,
    object_mask,
    render_video,
    sample_track,
    sample_video,
)
from ovmlv.organism.world_labels import (
    CATEGORIES,
    HELDOUT_CATEGORIES,
    HELDOUT_CATEGORY,
    HELDOUT_PAIRS,
    HELDOUT_SYNONYM,
    SEEN_SYNONYM_CONCEPTS,
    UNSEEN_COMPOSITION,
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


def test_world_v2_has_thousands_of_labels_and_keeps_every_held_out_kind_out_of_training() -> None:
    config = SyntheticConfig()
    train, heldout = config.train_labels, config.heldout_kinds
    assert len(set(train)) == len(train) >= 1500 and len(heldout) >= 300
    assert not set(train) & set(heldout)
    counts = Counter(heldout.values())
    assert counts[UNSEEN_COMPOSITION] >= 100 and counts[HELDOUT_CATEGORY] >= 50 and counts[HELDOUT_SYNONYM] >= 300
    assert set(config.label_kinds.values()) == {"entity", "action", "count", "scene", "category"}
    for example in ("red star", "star moving left", "red square moving right", "two stars", "three objects"):
        assert example in config.labels
    assert {"polygon", "warm-coloured object", "moving horizontally", "changing size"} <= set(config.labels)

    training_text = " | ".join(train)
    for concept, synonyms in SYNONYMS.items():  # (b): half the concepts' synonyms in training, the others only at test
        for synonym in synonyms:
            in_training = f" {synonym} " in f" {training_text.replace(' | ', ' ')} "
            assert in_training == (concept in SEEN_SYNONYM_CONCEPTS), (concept, synonym)
            assert in_training or any(synonym in label for label in heldout), synonym
    assert 0.4 <= len(SEEN_SYNONYM_CONCEPTS) / len(SYNONYMS) <= 0.6
    for category in CATEGORIES:  # (c): held-out categories never in training labels, the others in some
        assert any(category in label for label in train) == (category not in HELDOUT_CATEGORIES), category
    for colour, shape in HELDOUT_PAIRS:  # (a): no training label names a held-out composition
        assert f"{colour} {shape}" in heldout and not any(f" {colour} {shape} " in f" {label} " for label in train)
    assert 0.3 <= len(HELDOUT_CATEGORIES) / len(CATEGORIES) <= 0.6


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
    heldout = json.loads((out / "heldout.json").read_text())
    assert set(kinds) == set(vocab_all) | set(vocab_train) | set(read_lines(out / "vocab_paraphrased.txt"))
    assert (
        kinds["red circle"] == kinds["star"] == "entity" and kinds["pulsing"] == kinds["star moving left"] == "action"
    )
    assert kinds["checkered background"] == "scene" and kinds["two stars"] == "count"
    assert kinds["polygon"] == kinds["patterned background"] == "category"
    assert heldout == TINY.heldout_kinds and not set(heldout) & set(vocab_train)
    assert set(vocab_all) - set(vocab_train) == set(TINY.unseen_labels)
    assert json.loads((out / "time_reversal_pairs.json").read_text()) == [list(pair) for pair in TIME_REVERSAL_PAIRS]
    for split in SPLITS:
        records = read_manifest(out, split)
        assert len(records) == summary["num_videos"][split]
        for record in records:
            labels = set(record["labels"])
            assert record["source"] == "synthetic"
            assert sum(label in SCENES for label in labels) == 1  # one background, in canonical words
            if split == "heldout":
                assert labels <= set(vocab_all) and {heldout.get(label) for label in labels} >= {UNSEEN_COMPOSITION}
            else:
                assert labels <= set(vocab_train)


def test_paraphrased_copy_names_the_same_videos_in_synonyms(dataset: tuple[Path, dict]) -> None:
    out, _ = dataset
    vocab_all, vocab_paraphrased = read_lines(out / "vocab_all.txt"), read_lines(out / "vocab_paraphrased.txt")
    to_label = json.loads((out / "paraphrases.json").read_text())
    assert list(to_label) == vocab_paraphrased and set(to_label.values()) < set(vocab_all)
    kinds, paraphrased_kinds = (
        json.loads((out / name).read_text()) for name in ("labels.json", "labels_paraphrased.json")
    )
    assert {p: kinds[to_label[p]] for p in paraphrased_kinds} == paraphrased_kinds
    assert (
        to_label["crimson loop"] == "red ring" and to_label["tomato-coloured disc twirling"] == "red circle rotating"
    )
    for original, paraphrased in zip(read_manifest(out, "heldout"), read_manifest(out, PARAPHRASED), strict=True):
        assert paraphrased["video"] == original["video"]
        assert {to_label[label] for label in paraphrased["labels"]} <= set(original["labels"])
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


def test_unseen_compositions_only_in_heldout_split() -> None:
    """Held-out categories hold of training videos too (they are just never their labels); the objects of unseen
    compositions are only in held-out videos."""
    compositions = {label for label, kind in TINY.heldout_kinds.items() if kind == UNSEEN_COMPOSITION}
    for index in range(100):
        assert not compositions & set(sample_video(TINY, "train", index).labels(TINY))
        assert not compositions & set(sample_video(TINY, "val", index).labels(TINY))
        assert compositions & set(sample_video(TINY, "heldout", index).labels(TINY))


def test_generation_is_deterministic_by_seed(dataset: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = dataset
    generate_dataset(tmp_path, TINY, workers=2, progress=False)  # other worker count, same bytes
    written = sorted(path.relative_to(out) for path in out.rglob("*") if path.is_file())
    assert written == sorted(path.relative_to(tmp_path) for path in tmp_path.rglob("*") if path.is_file())
    assert all((out / path).read_bytes() == (tmp_path / path).read_bytes() for path in written)
    other_seed = replace(TINY, seed=TINY.seed + 1)
    assert [sample_video(TINY, "train", i).labels(TINY) for i in range(20)] != [
        sample_video(other_seed, "train", i).labels(TINY) for i in range(20)
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


@pytest.mark.parametrize(
    ("motion", "reversed_motion", "attribute"),
    [("moving left", "moving right", "x"), ("moving up", "moving down", "y"), ("growing", "shrinking", "radius")],
)
def test_time_reversed_motions_look_alike_frame_by_frame(motion: str, reversed_motion: str, attribute: str) -> None:
    """A video of one side, as a set of frames, is distributed as one of the other: the other side's track is its
    own played backwards. Only the order of frames tells them apart."""
    config = SyntheticConfig()

    def sample(name: str, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return np.stack([getattr(sample_track(name, config, rng), attribute) for _ in range(500)])  # (N, T)

    forward, backward = sample(motion, 0), sample(reversed_motion, 1)
    assert ks_statistic(forward.ravel(), backward.ravel()) < 0.05  # single frames: same distribution
    for frame in (0, config.num_frames // 2, -1):  # played backwards, the same at every frame index
        assert ks_statistic(forward[:, frame], backward[:, ::-1][:, frame]) < 0.1
    forward_sign, backward_sign = np.unique(np.sign(np.diff(forward))), np.unique(np.sign(np.diff(backward)))
    assert len(forward_sign) == 1 and forward_sign[0] != 0 and (backward_sign == -forward_sign).all()


def test_movers_cross_the_frame_without_wrapping_and_v1_still_wraps() -> None:
    """World v2: a mover's centre goes straight across the frame and stays inside it, the whole object across the
    axis of motion; world v1's movers wrap around the edges."""
    config = SyntheticConfig()
    rng = np.random.default_rng(0)
    step = config.speed * config.size / config.fps
    for _ in range(100):
        for motion, (dx, dy) in DIRECTIONS.items():
            track = sample_track(motion, config, rng)
            along, across = (track.x, track.y) if dx else (track.y, track.x)
            assert np.allclose(np.diff(along), (dx + dy) * step)
            assert 0 <= along.min() and along.max() <= config.size
            assert track.radius[0] <= across.min() and across.max() <= config.size - track.radius[0]
    v1 = replace(config, version=1)
    wrapped = [sample_track("moving right", v1, rng).x for _ in range(100)]
    assert any((np.diff(x) < 0).any() for x in wrapped)


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
    with pytest.raises(ValueError, match="version"):
        SyntheticConfig(version=3)
    with pytest.raises(ValueError, match="max_objects"):
        SyntheticConfig(max_objects=200)


def test_cli_writes_dataset(tmp_path: Path, capsys) -> None:
    argv = ["synthetic", "--out", str(tmp_path), "--num-train", "2", "--num-val", "1", "--num-heldout", "1"]
    assert main(argv) == EXIT_OK
    summary = json.loads(capsys.readouterr().out)
    assert summary["num_videos"] == {"train": 2, "val": 1, "heldout": 1}
    assert len(list((tmp_path / "videos").glob("*.mp4"))) == 4
    assert len(read_lines(tmp_path / f"{PARAPHRASED}.jsonl")) == 1


def read_object(obj: MovingObject, size: int, wrap: bool) -> tuple[str, str, str]:
    """(colour, shape, motion) of one object read off its own rendering (alone on a dark background), by the rules
    of docs/organism.md: the colour its body is painted, the shape whose mask it fills at its pose, and the motion
    from how its body's centroid, area and marker dot change over the frames."""
    frames = render_video(VideoSpec((obj,), None, wrap), size).astype(int)  # (T, H, W, 3)
    painted = (frames != frames[0, 0, 0]).any(-1) & ~(frames == 0).all(-1)  # body pixels, marker excluded
    values, counts = np.unique(frames[painted], axis=0, return_counts=True)
    colour = next(name for name, rgb in COLOURS.items() if tuple(values[counts.argmax()]) == rgb)
    body = painted | (frames == 0).all(-1)
    first = obj.track.at(0)
    grid = np.arange(size, dtype=np.float64)
    dx, dy = grid[None, :] - first.x[0], grid[:, None] - first.y[0]
    cos, sin = math.cos(first.heading[0]), math.sin(first.heading[0])
    u, v = dx * cos + dy * sin, dy * cos - dx * sin
    ious = {
        name: (mask(u, v, first.radius[0]) & body[0]).sum() / (mask(u, v, first.radius[0]) | body[0]).sum()
        for name, mask in SHAPES.items()
    }
    shape = max(ious, key=ious.get)
    rows, cols = np.indices((size, size))
    area = body.sum((1, 2)).astype(float)
    cx, cy = (body * cols).sum((1, 2)) / area, (body * rows).sum((1, 2)) / area
    steps_x = np.diff(cx)
    if max(np.ptp(cx), np.ptp(cy)) > 4:  # the centre travels
        if (steps_x > 0.5).any() and (steps_x < -0.5).any():
            motion = "bouncing"
        elif np.ptp(cx) > np.ptp(cy):
            motion = "moving right" if cx[-1] > cx[0] else "moving left"
        else:
            motion = "moving down" if cy[-1] > cy[0] else "moving up"
    elif np.ptp(area) > 0.15 * area.max():  # the size changes
        rising, falling = (np.diff(area) > 0).sum(), (np.diff(area) < 0).sum()
        motion = "growing" if not falling else "shrinking" if not rising else "pulsing"
    else:
        marker = (frames == 0).all(-1)
        mx, my = (marker * cols).sum((1, 2)) / marker.sum((1, 2)), (marker * rows).sum((1, 2)) / marker.sum((1, 2))
        motion = "rotating" if np.hypot(mx - mx[0], my - my[0]).max() > 2 else "still"
    return colour, shape, motion


def read_scene(spec: VideoSpec, size: int) -> str:
    """The background whose painter matches the pixels no object covers."""
    frame = render_video(spec, size)[0]
    free = ~np.any([np.any(object_mask(obj, size, spec.wrap), axis=0)[0] for obj in spec.objects], axis=0)
    return next(name for name, paint in SCENES.items() if (paint(size)[free] == frame[free]).all())


def test_every_label_is_its_rule_applied_to_what_the_rendering_shows() -> None:
    """On sampled videos of every split, the colour, shape and motion of each object and the background, read off
    the rendering, decide by the written rules (`Label.holds`) exactly the labels the manifest gives."""
    config = replace(SyntheticConfig(), num_train=20, num_val=5, num_heldout=10)
    checked = Counter()
    for split in SPLITS:
        for index in range(5):
            spec = sample_video(config, split, index)
            objects = [read_object(obj, config.size, spec.wrap) for obj in spec.objects]
            assert objects == [(obj.colour, obj.shape, obj.motion) for obj in spec.objects]
            scene = read_scene(spec, config.size)
            expected = [text for text, label in config.labels.items() if label.holds(objects, scene)]
            assert spec.labels(config) == expected
            checked.update(config.label_kinds[label] for label in expected)
    assert min(checked.values()) >= 5 and set(checked) == {"entity", "action", "count", "scene", "category"}


def test_the_small_world_keeps_every_held_out_kind_at_a_fifth_of_the_labels() -> None:
    """The smoke tests' world (`SMALL_WORLD`) still tests every held-out kind and every time-reversal pair."""
    small, whole = SyntheticConfig(**SMALL_WORLD), SyntheticConfig()
    assert set(small.heldout_kinds.values()) == {UNSEEN_COMPOSITION, HELDOUT_SYNONYM, HELDOUT_CATEGORY}
    assert all(set(pair) <= set(small.motions) for pair in TIME_REVERSAL_PAIRS)
    assert len(small.train_labels) * 4 < len(whole.train_labels)
