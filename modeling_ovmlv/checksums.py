"""Checksum manifests: `checksums.json` lists a folder's files with their sizes and SHA-256, so that a truncated or
bit-flipped file (safetensors itself has no checksum) is reported by name instead of loaded.

Exported models and training checkpoints carry one; `OvmlvModel.from_pretrained` checks a model's when present
(set OVMLV_VERIFY_CHECKSUMS=0 to skip: hashing reads every listed file once, about a second per GB).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from .atomic_files import write_text_atomically

CHECKSUMS_NAME = "checksums.json"
VERIFY_ENV = "OVMLV_VERIFY_CHECKSUMS"  # "0" turns off checking models on load; on by default
_CHUNK_BYTES = 1 << 20


class ChecksumError(OSError):
    """Files that do not match their manifest; the message names each and says what to do."""


def verification_enabled() -> bool:
    return os.environ.get(VERIFY_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def write_checksums(folder: str | os.PathLike, exclude: Iterable[str] = ()) -> dict[str, dict]:
    """Write `folder/checksums.json` for every file under `folder` (paths relative, with "/"), except the manifest,
    the names in `exclude` and hidden files; returns the entries."""
    folder = Path(folder)
    skipped = {CHECKSUMS_NAME, *exclude}
    files = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        if path.is_file() and name not in skipped and not any(part.startswith(".") for part in Path(name).parts):
            files[name] = {"size": path.stat().st_size, "sha256": file_sha256(path)}
    manifest = {"algorithm": "sha256", "files": files}
    write_text_atomically(folder / CHECKSUMS_NAME, json.dumps(manifest, indent=1) + "\n")
    return files


def read_checksums(manifest_path: str | os.PathLike) -> dict[str, dict]:
    """The manifest's `{file: {"size", "sha256"}}`; a manifest that does not parse is itself a checksum error."""
    try:
        manifest = json.loads(Path(manifest_path).read_text(encoding="utf-8"))
        files = manifest["files"]
        if manifest.get("algorithm") != "sha256" or not isinstance(files, dict):
            raise ValueError("not a sha256 manifest")
        entries = {
            str(name): {"size": int(entry["size"]), "sha256": str(entry["sha256"])} for name, entry in files.items()
        }
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ChecksumError(f"{manifest_path} is damaged ({err}); re-download or re-export the folder.") from err
    if outside := [name for name in entries if not _is_inside_name(name)]:
        raise ChecksumError(
            f"{manifest_path} lists files outside its folder ({', '.join(map(repr, outside[:3]))}): it was not "
            "written by ovmlv. Nothing was opened; re-download or re-export the folder."
        )
    return entries


def _is_inside_name(name: str) -> bool:
    """A name as `write_checksums` writes them: relative, "/"-separated, without "..", "." or empty parts (an
    entry like "../../etc/passwd" or "/etc/passwd" would make loading open, and report on, a file elsewhere)."""
    parts = name.split("/")
    return all(part not in ("", ".", "..") and "\\" not in part and "\0" not in part for part in parts) and not (
        len(parts[0]) >= 2 and parts[0][1] == ":"  # a Windows drive, "C:"
    )


def checksum_problems(
    manifest_path: str | os.PathLike, locate: Callable[[str], str | None] | None = None, hashes: bool = True
) -> list[str]:
    """What does not match the manifest: missing files, wrong sizes, and (with `hashes`) wrong SHA-256.

    locate: a listed name -> its local path, or None when absent (default: beside the manifest; a Hub repo passes
    a function that downloads).
    """
    folder = Path(manifest_path).parent
    locate = locate or (lambda name: str(folder / name) if (folder / name).is_file() else None)
    problems = []
    for name, expected in read_checksums(manifest_path).items():
        path = locate(name)
        if path is None:
            problems.append(f"{name} is missing")
        elif (size := os.path.getsize(path)) != expected["size"]:
            problems.append(f"{name} has {size} bytes, {expected['size']} expected (truncated or replaced?)")
        elif hashes and file_sha256(path) != expected["sha256"]:
            problems.append(f"{name} has another SHA-256 than when it was written (damaged or changed)")
    return problems


def verify_checksums(
    manifest_path: str | os.PathLike, where: str, locate: Callable[[str], str | None] | None = None
) -> None:
    """Raise `ChecksumError` naming every file of `where` (a folder or repo, for the message) that does not match."""
    if problems := checksum_problems(manifest_path, locate):
        raise ChecksumError(
            f"{where} does not match its {CHECKSUMS_NAME}: {'; '.join(problems)}. Re-download or re-export it (or "
            f"delete {CHECKSUMS_NAME} if the change was intended)."
        )


def verify_model_checksums(name_or_path: str | os.PathLike, **hub_kwargs) -> None:
    """Check a saved model (local folder or Hub repo) against its `checksums.json`, when it has one and checking
    is on (`OVMLV_VERIFY_CHECKSUMS`)."""
    from transformers.utils import cached_file

    if not verification_enabled():
        return
    find = {"_raise_exceptions_for_missing_entries": False, **hub_kwargs}
    manifest = cached_file(name_or_path, CHECKSUMS_NAME, **find)
    if manifest is not None:
        verify_checksums(manifest, str(name_or_path), lambda name: cached_file(name_or_path, name, **find))
