"""Manifests users get wrong: each mistake is one `ManifestError` sentence naming the file and the line
(`training/manifest_rows.py`), raised before `datasets` reads the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from ovmlv.training.config import ManifestConfig
from ovmlv.training.data import read_manifest
from ovmlv.training.manifest_rows import ManifestError, check_manifest

GOOD = '{"video": "a.mp4", "labels": ["dog"]}'


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.jsonl", "", "has no rows"),
        ("blank.jsonl", "\n\n  \n", "has no rows"),
        ("cut.jsonl", f'{GOOD}\n{{"video": "b.mp4", "labels": [\n', r"line 2: not valid JSON"),
        ("array.json", '[{"video": "a.mp4",\n "labels": [}]', r"line 2: not valid JSON"),
        ("list.jsonl", f'{GOOD}\n["b.mp4", ["dog"]]\n', r"line 2: expected an object"),
        ("nolabels.jsonl", f'\n{GOOD}\n\n{{"video": "b.mp4"}}\n', r"line 4: lacks field\(s\) \['labels'\]"),
        ("string.jsonl", '{"video": "a.mp4", "labels": "dog"}\n', r"line 1: `labels` must be a list of strings"),
        ("number.jsonl", '{"video": 7, "labels": []}\n', r"line 1: `video` must be a path or URL"),
        ("half.jsonl", '{"video": "a.mp4", "labels": [], "start": 1}\n', r"line 1: give both `start` and `end`"),
        ("order.jsonl", '{"video": "a.mp4", "labels": [], "start": 2, "end": 1}\n', r"line 1: end \(1.0\) must be"),
        ("time.jsonl", '{"video": "a.mp4", "labels": [], "start": "x", "end": 1}\n', r"`start` must be a number"),
        ("empty.csv", "", "has no rows"),
        ("header.csv", "video,labels\n", "has no rows"),
        ("columns.csv", "path,labels\na.mp4,dog\n", r"line 1: the header lacks column\(s\) \['video'\]"),
        ("cell.csv", "video,labels,start,end\na.mp4,dog,,\nb.mp4,cat,1,\n", r"line 3: give both `start` and `end`"),
    ],
)
def test_each_mistake_names_the_file_and_line(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(ManifestError, match=message) as error:
        read_manifest(ManifestConfig(str(path)))
    assert str(path) in str(error.value)
    assert error.value.__cause__ is None or isinstance(error.value.__cause__, ValueError)  # no datasets traceback


def test_blank_lines_and_both_formats_are_read(tmp_path: Path) -> None:
    jsonl = tmp_path / "m.jsonl"
    jsonl.write_text(f"\n{GOOD}\n\n" + '{"video": "b.mp4", "labels": [], "start": 0, "end": 1.5, "source": "k"}\n')
    assert check_manifest(jsonl) == 2
    records = read_manifest(ManifestConfig(str(jsonl)))
    assert records["labels"] == [["dog"], []] and records["end"] == [None, 1.5]
    table = tmp_path / "m.csv"
    table.write_text("video,labels,start,end\na.mp4,dog|cat,,\nb.mp4,,0,2\n")
    assert read_manifest(ManifestConfig(str(table)))["labels"] == [["dog", "cat"], []]
