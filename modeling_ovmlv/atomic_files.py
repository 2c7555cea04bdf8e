"""Writes that a kill cannot leave half done: build under a temporary name in the same folder, then one rename.

A file (`write_atomically`) or a whole folder (`write_folder_atomically`, or `staging_folder` + `publish_folder` when
several processes fill the folder) becomes visible under its name only once complete: readers see the old version or
the new one, never a part. Everything is flushed to disk (fsync) before the rename, so a power cut cannot publish a
name whose contents are still in the page cache.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

DISK_FULL_SIGNS = ("No space left on device", "StorageFull", "unexpected pos", "PytorchStreamWriter failed writing")


def write_atomically(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call `write(temporary_path)`, then move the finished file over `path` in one step (`os.replace`)."""
    write_files_atomically({path: write})


def write_files_atomically(writes: Mapping[str | os.PathLike, Callable[[str], None]]) -> None:
    """Write every file of `writes` (`{path: write}`, each `write(temporary_path)`) under a temporary name, flush
    them all to disk, then move each over its path, in order.

    A kill while writing, however long that takes, leaves every file as it was; only a kill in the microseconds
    between two renames can leave a mix of old and new files, which readers of files that belong together must
    detect (the label bank records the checksum of its embeddings). Temporary files live in the targets' folders (a
    rename is atomic only within one file system) and are removed if a `write` fails.
    """
    temporaries: dict[Path, str] = {}
    try:
        for path, write in writes.items():
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            temporaries[path] = _new_temporary_file(path)
            plain_mode = stat.S_IMODE(os.stat(temporaries[path]).st_mode)
            write(temporaries[path])
            os.chmod(temporaries[path], plain_mode)  # a writer that replaced the file (safetensors does) made it 0600
            _fsync_file(temporaries[path])
        for path, temporary in temporaries.items():
            os.replace(temporary, path)
    except BaseException as error:
        for temporary in temporaries.values():
            Path(temporary).unlink(missing_ok=True)
        if is_disk_full(error):
            raise disk_full_error(path) from error
        raise
    for folder in {path.parent for path in temporaries}:
        _fsync_folder(folder)


def _new_temporary_file(path: Path) -> str:
    """An empty hidden file beside `path` with the mode a plain `open(path, "w")` gives (0666 less the umask), not
    `tempfile.mkstemp`'s 0600: a published file must stay readable by whoever could read one written in place (a
    server process serving the folder, another user)."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    os.close(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    return str(temporary)


def is_disk_full(error: BaseException | None) -> bool:
    """Whether `error`, or an error it was raised from, is a full disk (or quota); torch's zip writer and
    safetensors' Rust writer say so only in words."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(sign in str(error) for sign in DISK_FULL_SIGNS):
            return True
        error = error.__cause__ or error.__context__
    return False


def disk_full_error(path: str | os.PathLike) -> OSError:
    """What a writer raises when the disk filled while it wrote `path`: the error names the file, not the writer's
    internals (torch says "unexpected pos")."""
    return OSError(errno.ENOSPC, "disk full", str(path))


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    write_atomically(path, lambda temporary: Path(temporary).write_text(text, encoding="utf-8"))


def staging_folder(path: str | os.PathLike) -> Path:
    """The hidden name `path` is built under before `publish_folder` (the same for every process, so that all can
    write into it). Names starting with "." are never a published folder."""
    path = Path(path)
    return path.with_name(f".{path.name}.partial")


def publish_folder(staged: str | os.PathLike, path: str | os.PathLike) -> None:
    """Flush every file of `staged` to disk (with the mode a plain write gives), then rename it to `path`, replacing
    a folder already there.

    Replacing takes two renames (the old folder aside, the new one in): a kill between them leaves the new folder
    under its staging name and the old one under a hidden name, never a mix of the two.
    """
    staged, path = Path(staged), Path(path)
    plain_mode = _plain_file_mode(staged)
    for folder, _, files in os.walk(staged):
        for name in files:
            os.chmod(os.path.join(folder, name), plain_mode)  # safetensors writes 0600, whatever the umask
            _fsync_file(os.path.join(folder, name))
        _fsync_folder(folder)
    if path.exists():
        old = path.with_name(f".{path.name}.replaced-{uuid.uuid4().hex[:8]}")
        os.replace(path, old)
        os.replace(staged, path)
        _fsync_folder(path.parent)
        shutil.rmtree(old)
    else:
        os.replace(staged, path)
        _fsync_folder(path.parent)


@contextmanager
def write_folder_atomically(path: str | os.PathLike) -> Iterator[Path]:
    """`with write_folder_atomically(out) as folder:` fill `folder`; on success it becomes `out` in one rename, on
    error it is removed and `out` is left as it was."""
    staged = staging_folder(path)
    shutil.rmtree(staged, ignore_errors=True)  # left over by a process killed while writing
    staged.mkdir(parents=True)
    try:
        yield staged
        publish_folder(staged, path)
    except BaseException as error:
        shutil.rmtree(staged, ignore_errors=True)
        if is_disk_full(error):
            raise disk_full_error(path) from error
        raise


def remove_folder(path: str | os.PathLike) -> None:
    """Unpublish `path` in one rename (to a hidden name), then delete it: a kill during the deletion leaves a hidden
    folder, never a half-deleted one under its name."""
    path = Path(path)
    doomed = path.with_name(f".{path.name}.removing-{uuid.uuid4().hex[:8]}")
    os.replace(path, doomed)
    _fsync_folder(path.parent)
    shutil.rmtree(doomed)


def _plain_file_mode(folder: Path) -> int:
    """The mode `open(path, "w")` gives a new file in `folder` (0666 less the umask, read without changing it)."""
    probe = _new_temporary_file(folder / "mode")
    try:
        return stat.S_IMODE(os.stat(probe).st_mode)
    finally:
        os.unlink(probe)


def _fsync_file(path: str | os.PathLike) -> None:
    with open(path, "rb") as file:
        os.fsync(file.fileno())


def _fsync_folder(path: str | os.PathLike) -> None:
    """Make a rename inside `path` durable (POSIX: fsync the folder; not possible, nor needed, on Windows)."""
    if os.name != "posix":
        return
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
