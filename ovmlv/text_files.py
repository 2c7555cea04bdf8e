"""The one reader of line files: vocabularies (one label a line), class lists, split files and video lists."""

from __future__ import annotations

import unicodedata
from pathlib import Path

UTF16_MARKS = (b"\xff\xfe", b"\xfe\xff")


def clean_label(text: str) -> str:
    """`text` without the spaces and invisible format characters (zero-width space, byte-order mark, ...) around
    it: a label that is only such characters is empty, never a label made of nothing."""
    start, end = 0, len(text)
    while start < end and _invisible(text[start]):
        start += 1
    while end > start and _invisible(text[end - 1]):
        end -= 1
    return text[start:end]


def _invisible(character: str) -> bool:
    return character.isspace() or unicodedata.category(character) in ("Cf", "Zs", "Zl", "Zp")


def read_text(path: str | Path, what: str) -> str:
    """The UTF-8 text of `path` (a byte-order mark is ignored); a file in another encoding is a ValueError that
    names the file, the encoding it looks like, and asks for UTF-8."""
    path = Path(path)
    data = path.read_bytes()
    if data.startswith(UTF16_MARKS) or (len(data) > 1 and b"\x00" in data[:2]):
        raise ValueError(f"{what} {path} is UTF-16, not UTF-8: save it as UTF-8 (one item a line) and rerun.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        guess = data[error.start : error.start + 1].decode("latin-1")
        raise ValueError(
            f"{what} {path} is not UTF-8 (byte {data[error.start]:#x} at offset {error.start}, {guess!r} in Latin-1 "
            "or Windows-1252): save it as UTF-8 and rerun."
        ) from None


def read_lines(path: str | Path, what: str, item: str = "label") -> list[str]:
    """The non-empty lines of the UTF-8 text file `path`, stripped of spaces and invisible characters.

    `what` names the file in errors ("vocabulary", "UCF101 class index") and `item` what a line holds: a missing
    file is a FileNotFoundError, a file without a line of text or not in UTF-8 a ValueError, each saying which file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    lines = [line for line in map(clean_label, read_text(path, what).splitlines()) if line]
    if not lines:
        raise ValueError(f"{what} {path} is empty; write one {item} a line.")
    return lines
