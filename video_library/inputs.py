"""Which videos a library holds: files, folders, lists of paths and manifests, turned into one list of sources."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ovmlv.text_files import clean_label, read_text

# Extensions taken from folders; a file named directly is taken whatever its extension.
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".wmv", ".flv", ".3gp", ".ogv"}
)
LIST_SUFFIXES = frozenset({".txt"})  # one video path or URL a line, relative to the list's folder
MANIFEST_SUFFIXES = frozenset({".jsonl", ".json", ".csv", ".tsv"})  # the training manifests (`training.data`)


def is_url(source: str) -> bool:
    return "://" in source


def recorded_name(video: str) -> str:
    """`video` as the index records it. A file name that is not valid UTF-8 reaches Python with its stray bytes as
    lone surrogates, which Parquet (UTF-8 only) cannot store: those bytes are written as `\\xNN`."""
    try:
        video.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(video).decode("utf-8", "backslashreplace")
    return video


def list_videos(sources: Iterable[str | os.PathLike]) -> list[str]:
    """Absolute video paths (or URLs), each once, in the order given: a folder adds its video files (recursively,
    by extension, sorted), a `.txt` file the paths it lists, a manifest its `video` column; any other file is a
    video. Paths are kept as the user's file system names them (symlinks are not resolved), so on several machines
    the library must be mounted at the same place."""
    found: list[str] = []
    for source in map(str, sources):
        path = Path(source)
        if is_url(source):
            found.append(source)
        elif path.is_dir():
            found += sorted(
                os.path.abspath(p) for p in path.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()
            )
        elif path.suffix.lower() in LIST_SUFFIXES:
            found += _read_list(path)
        elif path.suffix.lower() in MANIFEST_SUFFIXES:
            found += _read_manifest(path)
        else:
            found.append(os.path.abspath(path))  # a missing file is recorded as unreadable, not a usage error
    return list(dict.fromkeys(found))


def _read_list(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"Video list not found: {path}")
    lines = [clean_label(line) for line in read_text(path, "Video list").splitlines()]
    return [line if is_url(line) else os.path.abspath(path.parent / line) for line in lines if line]


def _read_manifest(path: Path) -> list[str]:
    """The `video` column of a manifest, read by `training.data.read_manifest` (the one manifest reader)."""
    try:
        from ovmlv.training.config import ManifestConfig
        from ovmlv.training.data import read_manifest
    except ImportError as err:
        raise ValueError(
            f"Reading the manifest {path} needs the training tools (`pip install 'ovmlv[train]'`, {err}); or list "
            "the videos in a .txt file, one path a line."
        ) from err
    records = read_manifest(ManifestConfig(manifest=str(path)))
    segments = [i for i, start in enumerate(records["start"]) if start is not None]
    if segments:
        raise ValueError(
            f"Manifest {path} has segments (start/end) in rows {segments[:5]}: an index embeds whole videos. List "
            "the source videos instead (a .txt file, one path a line)."
        )
    return list(records["video"])
