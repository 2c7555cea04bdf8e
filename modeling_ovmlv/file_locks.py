"""One writer at a time: an advisory lock (`fcntl.flock`) on a hidden file beside what is written.

`path`'s lock is `.{name}.lock` in its parent folder, never inside `path`, so that replacing or deleting `path` (an
`--overwrite`) leaves the lock in place. The lock file is never deleted (deleting it would let a second writer lock
a new file while the first still holds the old one); it holds a line naming the current holder, so that a writer
that must not wait can say who is writing. The operating system releases the lock when its holder exits, however
it exits: a killed writer never leaves a stale lock. Writers that only read-modify-write for a moment (a label
bank) wait; writers that run for hours (training) fail at once (`wait=False`). Where `fcntl` is missing
(Windows) writes are not locked.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None


class LockedError(OSError):
    """Another process holds the lock; the message names it and the path."""


def lock_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.parent / f".{path.name}.lock"


class FileLock:
    """The writer lock of `path`; `acquire(wait)` then `release()`, or `with locked(path):`."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._descriptor: int | None = None

    def acquire(self, wait: bool = True) -> None:
        """Lock `path`: block until its holder is done (`wait`), or raise `LockedError` naming the holder."""
        if fcntl is None or self._descriptor is not None:
            return
        file = lock_path(self.path)
        file.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(file, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            holder = os.pread(descriptor, 4096, 0).decode("utf-8", "replace").strip() or "another process"
            os.close(descriptor)
            raise LockedError(
                f"{self.path} is being written by {holder}; wait for it to finish (or stop it), then run again."
            ) from None
        except BaseException:
            os.close(descriptor)
            raise
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{holder_description()}\n".encode(), 0)
        self._descriptor = descriptor

    def release(self) -> None:
        if self._descriptor is not None:
            os.close(self._descriptor)  # closing the only descriptor releases the flock
            self._descriptor = None

    def __del__(self) -> None:  # a holder dropped without release (an exception unwinding a long function)
        self.release()


@contextmanager
def locked(path: str | os.PathLike, wait: bool = True) -> Iterator[None]:
    """`with locked(path):` be the only writer of `path` inside the block (see `FileLock.acquire`)."""
    lock = FileLock(path)
    lock.acquire(wait)
    try:
        yield
    finally:
        lock.release()


def holder_description() -> str:
    """Who writes, for the message of the writer that must not wait: process id, host and command."""
    command = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:200] if sys.argv and sys.argv[0] else "python"
    return f"process {os.getpid()} on {socket.gethostname()} ({command})"
