"""One writer at a time: a second writer of the same path waits for the first, or (not waiting) fails naming it."""

from __future__ import annotations

import os
import threading

import pytest

from ovmlv.modeling_ovmlv.file_locks import FileLock, LockedError, lock_path, locked


def test_a_second_writer_that_must_not_wait_names_the_holder(tmp_path):
    target = tmp_path / "run"
    with locked(target):
        with pytest.raises(LockedError, match=rf"{target} is being written by process {os.getpid()} on "):
            FileLock(target).acquire(wait=False)
    assert lock_path(target) == tmp_path / ".run.lock" and not target.exists()  # the lock sits beside the target
    second = FileLock(target)
    second.acquire(wait=False)  # released: free again
    second.release()


def test_a_second_writer_waits_for_the_first(tmp_path):
    order = []
    first = FileLock(tmp_path / "bank")
    first.acquire()

    def second_writer():
        with locked(tmp_path / "bank"):
            order.append("second")

    thread = threading.Thread(target=second_writer)
    thread.start()
    thread.join(0.5)
    assert thread.is_alive() and order == []  # blocked while the first holds the lock
    order.append("first")
    first.release()
    thread.join(10)
    assert order == ["first", "second"]
