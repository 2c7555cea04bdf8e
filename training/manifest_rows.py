"""A manifest checked row by row before `datasets` reads it, so that every mistake is one sentence naming the file
and line (datasets reports an empty file as a bare StopIteration and a bad JSON line as three chained tracebacks).

Formats: JSONL (one object a line; blank lines are skipped), a JSON array of objects, CSV or TSV with a header.
A row has `video` (a non-empty string), `labels` (JSON: a list of strings; CSV: one string, labels separated by
`|`, empty for none), optional `start`/`end` seconds (both or neither, end after start) and `source` (a string).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REQUIRED_FIELDS = ("video", "labels")
EXAMPLE_ROW = '{"video": "clips/a.mp4", "labels": ["dog", "beach"]}'


class ManifestError(ValueError):
    """A manifest that cannot be read; the message names the file and line and says what to fix."""


def check_manifest(path: str | Path) -> int:
    """Check every row of the manifest at `path`; returns the number of rows (at least one)."""
    path = Path(path)
    count = 0
    for where, row in _rows(path):
        _check_row(row, where, csv_row=_is_csv(path))
        count += 1
    if count == 0:
        raise ManifestError(f"Manifest {path} has no rows; write one video a line, e.g. {EXAMPLE_ROW}")
    return count


def _is_csv(path: Path) -> bool:
    return path.suffix.lower() in (".csv", ".tsv")


def _rows(path: Path) -> Iterator[tuple[str, Any]]:
    """(where, row) pairs: `where` names the file and the line (or array item) the row comes from."""
    if _is_csv(path):
        with path.open(newline="", encoding="utf-8") as file:
            reader = csv.DictReader(file, delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            if reader.fieldnames is None:
                return  # an empty file: no header, no rows
            if missing := [name for name in REQUIRED_FIELDS if name not in reader.fieldnames]:
                raise ManifestError(
                    f"Manifest {path}, line 1: the header lacks column(s) {missing}; it has {reader.fieldnames}."
                )
            for row in reader:
                yield f"Manifest {path}, line {reader.line_num}", row
        return
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):  # a JSON array
        try:
            rows = json.loads(text)
        except json.JSONDecodeError as err:
            raise ManifestError(f"Manifest {path}, line {err.lineno}: not valid JSON ({err.msg}).") from err
        yield from ((f"Manifest {path}, item {i} of the array", row) for i, row in enumerate(rows))
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"Manifest {path}, line {number}"
        try:
            yield where, json.loads(line)
        except json.JSONDecodeError as err:
            raise ManifestError(
                f"{where}: not valid JSON ({err.msg} at column {err.colno}); write one object a line, e.g. "
                f"{EXAMPLE_ROW}"
            ) from err


def _check_row(row: Any, where: str, csv_row: bool) -> None:
    if not isinstance(row, dict):
        raise ManifestError(f"{where}: expected an object like {EXAMPLE_ROW}, got {type(row).__name__}.")
    if missing := [name for name in REQUIRED_FIELDS if name not in row]:
        raise ManifestError(f"{where}: lacks field(s) {missing}; a row looks like {EXAMPLE_ROW}.")
    video, labels = row["video"], row["labels"]
    if not isinstance(video, str) or not video.strip():
        raise ManifestError(f"{where}: `video` must be a path or URL, got {video!r}.")
    if csv_row:
        if labels is not None and not isinstance(labels, str):
            raise ManifestError(f"{where}: `labels` must be one cell of labels separated by '|', got {labels!r}.")
    elif not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise ManifestError(f'{where}: `labels` must be a list of strings, e.g. ["dog", "beach"], got {labels!r}.')
    start, end = (_seconds(row.get(name), name, where) for name in ("start", "end"))
    if (start is None) != (end is None):
        raise ManifestError(f"{where}: give both `start` and `end` (seconds) or neither.")
    if start is not None and not end > start:
        raise ManifestError(f"{where}: end ({end}) must be after start ({start}).")
    if (source := row.get("source")) not in (None, "") and not isinstance(source, str):
        raise ManifestError(f"{where}: `source` must be a dataset name, got {source!r}.")


def _seconds(value: Any, name: str, where: str) -> float | None:
    """A `start`/`end` value as seconds; None when absent (a CSV cell may be empty)."""
    if value is None or value == "":
        return None
    try:
        seconds = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise ManifestError(f"{where}: `{name}` must be a number of seconds (0 or more), got {value!r}.")
    return seconds
