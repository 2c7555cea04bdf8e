"""The one reader of line files: vocabularies (one label a line), class lists and split files."""

from __future__ import annotations

from pathlib import Path


def read_lines(path: str | Path, what: str, item: str = "label") -> list[str]:
    """The non-empty lines of the UTF-8 text file `path`, stripped (a byte-order mark is ignored).

    `what` names the file in errors ("vocabulary", "UCF101 class index") and `item` what a line holds: a missing
    file is a FileNotFoundError, a file without a line of text a ValueError, each saying which file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    lines = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{what} {path} is empty; write one {item} a line.")
    return lines
