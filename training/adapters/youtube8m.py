"""YouTube-8M (Abu-El-Haija et al., 2016): video-level labels, or the human-rated 5-second segments (2019).

Format (research.google.com/youtube8m/download.html; starter code github.com/google/youtube-8m, readers.py):
TFRecord shards of tf.train.Example (video-level features) or SequenceExample (frame-level; labels in its context)
with `id` (bytes; `video_id` in the 2017 files) and `labels` (int64 indices into vocabulary.csv). The
segment-rated validation set adds `segment_start_times` (int64 seconds: frame features are one per second),
`segment_labels` (int64) and `segment_scores` (float: 1 = the label is in the segment, 0 = it is not) for 5-second
segments. vocabulary.csv: Index,TrainVideoCount,KnowledgeGraphId,Name,WikiUrl,Vertical1,Vertical2,Vertical3,
WikiDescription; a label's kind is its Vertical1 (e.g. "Arts & Entertainment").

Default: one row per video with its labels; the vocabulary is every named class. --segments: one row per rated
segment [t, t + 5) with the labels rated present there (possibly none); the vocabulary is the rated classes. Only
a segment's rated labels are known, the rest are unrated rather than verified absent. The `id`s are anonymised
4-character ids (data.yt8m.org/2/j/i/<2 chars>/<id>.js maps one to its YouTube id): name the videos by id, or
adapt --video-pattern; its field is `id`.

Curation (the paper trains on 2429 classes, video-game titles removed): --drop-vertical leaves out the classes of
a vertical (YouTube-8M files game titles under "Games", beside a few generic game classes: check the result), and
--max-labels keeps the most frequent remaining classes by TrainVideoCount. Labels left out disappear from every
row; a row that had labels and has none left is dropped (counted in the summary): it would otherwise teach that
nothing is in its video.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from .manifest import Adapted, AnnotationError, Clip, read_csv
from .tfrecord import parse_features, read_records

VIDEO_PATTERN = "{id}.mp4"
SEGMENT_SECONDS = 5  # the rated segments' length, fixed by the dataset
SEGMENT_KEYS = ("segment_start_times", "segment_labels", "segment_scores")


VERTICALS = ("Vertical1", "Vertical2", "Vertical3")


def read_vocabulary(
    path: str | Path, drop_verticals: Sequence[str] = (), max_labels: int | None = None
) -> tuple[dict[int, str], dict[str, str]]:
    """`{index: name}` of the named classes kept by the curation (module docstring), and `{name: Vertical1}`."""
    rows = read_csv(path, "YouTube-8M vocabulary", ("Index", "Name"))
    names, kinds, counts = {}, {}, {}
    for line, row in enumerate(rows, start=2):
        where = f"YouTube-8M vocabulary {path}, line {line}"
        if not row["Index"].strip().isdigit():
            raise AnnotationError(f"{where}: Index should be an integer, got {row['Index']!r}.")
        name = row["Name"].strip()
        if not name or {(row.get(key) or "").strip() for key in VERTICALS} & set(drop_verticals):
            continue
        index = int(row["Index"])
        names[index] = name
        if vertical := (row.get("Vertical1") or "").strip():
            kinds[name] = vertical
        if max_labels is not None:
            count = (row.get("TrainVideoCount") or "").strip()
            if not count.isdigit():
                raise AnnotationError(f"{where}: --max-labels needs TrainVideoCount, got {count!r}.")
            counts[index] = int(count)
    if max_labels is not None:
        kept = sorted(counts, key=lambda index: (-counts[index], index))[:max_labels]
        names = {index: names[index] for index in sorted(kept)}
    return names, kinds


def tfrecord_files(paths: Sequence[str | Path]) -> list[Path]:
    """The files named, with a folder standing for the *.tfrecord files in it."""
    files = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(path.glob("*.tfrecord"))
        elif path.is_file():
            files.append(path)
        else:
            raise AnnotationError(f"YouTube-8M TFRecord file or folder not found: {path}")
    if not files:
        raise AnnotationError(f"No *.tfrecord files in {[str(p) for p in paths]}.")
    return files


def _named(labels: Sequence[int], names: dict[int, str], known: set[int], where: str) -> list[str]:
    """The names of the labels kept by the curation; `known` holds every index the vocabulary CSV names."""
    if unknown := [label for label in labels if label not in known]:
        raise AnnotationError(f"{where}: label(s) {unknown[:5]} have no Name in the vocabulary CSV.")
    return list(dict.fromkeys(names[label] for label in labels if label in names))


def _segment_clips(
    video_id: str, features: dict[str, list], names: dict[int, str], known: set[int], where: str
) -> list[Clip]:
    """One clip per rated segment start, labelled with the labels rated present (score 1)."""
    starts, labels, scores = (features[key] for key in SEGMENT_KEYS)
    if not len(starts) == len(labels) == len(scores):
        raise AnnotationError(
            f"{where}: {SEGMENT_KEYS} have different lengths ({len(starts)}, {len(labels)}, {len(scores)})."
        )
    present: dict[int, list[int]] = {}
    for start, label, score in zip(starts, labels, scores, strict=True):
        positives = present.setdefault(start, [])
        if score >= 0.5:
            positives.append(label)
    return [
        Clip({"id": video_id}, _named(positives, names, known, where), float(start), float(start + SEGMENT_SECONDS))
        for start, positives in sorted(present.items())
        if not positives or any(label in names for label in positives)  # a segment's only labels curated away
    ]


def read(
    paths: Sequence[str | Path],
    vocabulary_csv: str | Path,
    segments: bool = False,
    drop_verticals: Sequence[str] = (),
    max_labels: int | None = None,
) -> Adapted:
    known = set(read_vocabulary(vocabulary_csv)[0])
    names, verticals = read_vocabulary(vocabulary_csv, drop_verticals, max_labels)
    needed = SEGMENT_KEYS if segments else ("labels",)
    clips, rated, curated_away = [], set(), 0
    for path in tfrecord_files(paths):
        for index, record in enumerate(read_records(path)):
            where = f"YouTube-8M TFRecord {path}, record {index}"
            try:
                features = parse_features(record, {"id", "video_id", *needed})
            except AnnotationError as error:
                raise AnnotationError(f"{where}: {error}") from None
            ids = features.get("id") or features.get("video_id")
            if not ids or (missing := [key for key in needed if key not in features]):
                raise AnnotationError(
                    f"{where} lacks {missing if ids else 'id'} (found {sorted(features)})"
                    + (" (--segments needs the segment-rated validation set)." if segments else ".")
                )
            video_id = ids[0].decode("utf-8")
            if segments:
                video_clips = _segment_clips(video_id, features, names, known, where)
                curated_away += len(set(features["segment_start_times"])) - len(video_clips)
                clips += video_clips
                rated.update(features["segment_labels"])
            elif labels := _named(features["labels"], names, known, where):
                clips.append(Clip({"id": video_id}, labels))
            else:
                curated_away += bool(features["labels"])
                if not features["labels"]:
                    clips.append(Clip({"id": video_id}, []))
    vocabulary = list(dict.fromkeys(names[label] for label in sorted(rated if segments else names) if label in names))
    notes = [f"{curated_away} rows whose every label was curated away left out"] if curated_away else []
    kinds = {name: verticals[name] for name in vocabulary if name in verticals} or None
    return Adapted(clips, vocabulary, kinds, notes)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--annotations",
        required=True,
        nargs="+",
        help="TFRecord shards, or folders of *.tfrecord (video or frame level)",
    )
    parser.add_argument("--vocabulary-csv", required=True, help="vocabulary.csv (Index, Name, Vertical1, ...)")
    parser.add_argument("--segments", action="store_true", help="one row per rated 5 s segment (segment-rated set)")
    parser.add_argument(
        "--drop-vertical",
        action="append",
        default=[],
        dest="drop_verticals",
        metavar="VERTICAL",
        help='leave out the classes of this vertical, repeatable (the paper\'s recipe: "Games")',
    )
    parser.add_argument(
        "--max-labels",
        type=int,
        metavar="N",
        help="keep the N most frequent classes (TrainVideoCount; the paper: 2429)",
    )
    parser.set_defaults(
        adapt=lambda args: read(
            args.annotations, args.vocabulary_csv, args.segments, args.drop_verticals, args.max_labels
        )
    )
