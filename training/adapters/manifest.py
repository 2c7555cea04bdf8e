"""What every adapter shares: the clips it produces, reading annotation files with errors that name the file, label
names made readable, and writing the manifest, vocabulary and kinds files that `training.data` reads.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class AnnotationError(ValueError):
    """An annotation file is not in the format its dataset publishes; the message names the file and the problem."""


@dataclass
class Clip:
    """One manifest row before its video path is known: `fields` are what --video-pattern may name."""

    fields: dict[str, Any]
    labels: list[str]
    start: float | None = None
    end: float | None = None


@dataclass
class Adapted:
    """An adapter's result: rows, the class list they are scored against, optional `{label: kind}`, and remarks
    for the summary line (what was skipped and why)."""

    clips: list[Clip]
    vocabulary: list[str]
    kinds: dict[str, str] | None = None
    notes: list[str] = field(default_factory=list)


def clean_label(name: str) -> str:
    """Identifier-style names made readable: "baby_buggy" -> "baby buggy", "bow_(weapon)" -> "bow (weapon)"."""
    return " ".join(name.replace("_", " ").split())


def split_camel_case(name: str) -> str:
    """Split where a lower-case letter meets an upper-case one, lower-cased: "ApplyEyeMakeup" -> "apply eye makeup"."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).lower()


def number(text: str, where: str) -> int | float:
    """A time from a CSV cell: an int when whole (so `{time_start:06d}` patterns work), else a float."""
    try:
        value = float(text)
    except ValueError:
        raise AnnotationError(f"{where}: expected a number, got {text!r}.") from None
    return int(value) if value.is_integer() else value


def require_file(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"{what} not found: {path}")
    return path


def read_json(path: str | Path, what: str) -> Any:
    path = require_file(path, what)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise AnnotationError(f"{what} {path} is not valid JSON: {error}") from None


def read_csv(path: str | Path, what: str, columns: Sequence[str]) -> list[dict[str, str]]:
    """Rows as dicts keyed by the header; `columns` must all be in the header (a byte-order mark is ignored)."""
    path = require_file(path, what)
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.DictReader(file)
        header = reader.fieldnames or []
        if missing := [column for column in columns if column not in header]:
            raise AnnotationError(f"{what} {path} lacks column(s) {missing}; its header is {header}.")
        return list(reader)


def require_keys(item: Any, keys: Iterable[str], where: str) -> None:
    if not isinstance(item, Mapping):
        raise AnnotationError(f"{where}: expected an object, got {type(item).__name__}.")
    if missing := [key for key in keys if key not in item]:
        raise AnnotationError(f"{where} lacks key(s) {missing}; it has {sorted(item)}.")


def records(data: Mapping[str, Any], key: str, keys: Iterable[str], where: str) -> list[dict[str, Any]]:
    """`data[key]`, a list of objects that all have `keys` (COCO-style JSON: videos, tracks, categories...)."""
    require_keys(data, [key], where)
    items = data[key]
    if not isinstance(items, list):
        raise AnnotationError(f"{where}: `{key}` should be a list, got {type(items).__name__}.")
    keys = list(keys)
    for index, item in enumerate(items):
        require_keys(item, keys, f"{where}, {key}[{index}]")
    return items


def format_video(pattern: str, fields: Mapping[str, Any]) -> str:
    """`pattern` filled from a clip's fields, with an error that lists the fields when it names another."""
    try:
        return pattern.format(**fields)
    except KeyError as error:
        raise AnnotationError(
            f"--video-pattern {pattern!r} names {{{error.args[0]}}}; this dataset offers {sorted(fields)}."
        ) from None
    except ValueError as error:  # a format spec that does not fit the value, e.g. {x:06d} on a float
        raise AnnotationError(f"--video-pattern {pattern!r} does not fit {dict(fields)}: {error}") from None


def write_dataset(
    adapted: Adapted,
    out: str | Path,
    name: str,
    videos: str | Path,
    video_pattern: str,
    absolute_paths: bool = False,
    check_videos: bool = False,
    drop_missing: bool = False,
) -> dict[str, Any]:
    """Write `<out>/<name>.jsonl`, `<name>_vocabulary.txt` and, with kinds, `<name>_kinds.json`; return a summary.

    Video paths are relative to the manifest's folder (the output folder and the videos can move together), or
    absolute. With `check_videos` the videos missing on disk are counted; `drop_missing` also leaves their rows out.
    """
    from ovmlv.modeling_ovmlv.atomic_files import write_text_atomically  # torch: `ovmlv adapt --help` waits not

    out = Path(out)
    videos = Path(os.path.abspath(videos))
    if unknown := sorted({label for clip in adapted.clips for label in clip.labels} - set(adapted.vocabulary)):
        raise AnnotationError(f"Labels used but missing from the vocabulary, e.g. {unknown[:5]}.")
    base = out.resolve()  # as `training.data` resolves the manifest's folder, so a symlinked --out still works
    rows, missing = [], set()
    for clip in adapted.clips:
        path = videos / format_video(video_pattern, clip.fields)
        if (check_videos or drop_missing) and not path.is_file():
            missing.add(path)
            if drop_missing:
                continue
        row: dict[str, Any] = {
            "video": str(path) if absolute_paths else os.path.relpath(path, base),
            "labels": clip.labels,
        }
        if clip.start is not None:
            row.update(start=float(clip.start), end=float(clip.end))
        rows.append({**row, "source": name})
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / f"{name}.jsonl"
    write_text_atomically(manifest, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    vocabulary = out / f"{name}_vocabulary.txt"
    write_text_atomically(vocabulary, "".join(label + "\n" for label in adapted.vocabulary))
    kinds = None
    if adapted.kinds:
        kinds = out / f"{name}_kinds.json"
        write_text_atomically(kinds, json.dumps(adapted.kinds, indent=1, ensure_ascii=False) + "\n")
    return {
        "manifest": str(manifest),
        "rows": len(rows),
        "vocabulary": str(vocabulary),
        "labels": len(adapted.vocabulary),
        "kinds": str(kinds) if kinds else None,
        "missing_videos": len(missing) if check_videos or drop_missing else None,
        "missing_examples": [str(path) for path in sorted(missing)[:3]],
        "notes": adapted.notes,
    }
