"""Atomic writes: a write that fails half way (as a kill would stop it) leaves the previous files or folder."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ovmlv.modeling_ovmlv.atomic_files import (
    remove_folder,
    staging_folder,
    write_files_atomically,
    write_folder_atomically,
    write_text_atomically,
)


class Killed(BaseException):
    pass


def die(temporary: str) -> None:
    Path(temporary).write_text("half")
    raise Killed


def test_files_written_together_stay_old_when_one_write_dies(tmp_path):
    write_text_atomically(tmp_path / "a.txt", "old a")
    write_text_atomically(tmp_path / "b.txt", "old b")
    with pytest.raises(Killed):
        write_files_atomically({tmp_path / "a.txt": lambda t: Path(t).write_text("new a"), tmp_path / "b.txt": die})
    assert (tmp_path / "a.txt").read_text() == "old a" and (tmp_path / "b.txt").read_text() == "old b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]  # no temporary file left


def test_a_folder_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "final"
    with write_folder_atomically(target) as folder:
        (folder / "weights").write_text("v1")
        assert not target.exists()  # nothing under the name while it is written
    assert (target / "weights").read_text() == "v1"
    with pytest.raises(Killed), write_folder_atomically(target) as folder:
        (folder / "weights").write_text("v2, half")
        raise Killed
    assert (target / "weights").read_text() == "v1" and not staging_folder(target).exists()
    with write_folder_atomically(target) as folder:  # replacing a folder that exists
        (folder / "weights").write_text("v2")
    assert [p.name for p in tmp_path.iterdir()] == ["final"] and (target / "weights").read_text() == "v2"


def test_remove_folder_leaves_no_half_deleted_folder_under_its_name(tmp_path):
    (tmp_path / "step_2").mkdir()
    (tmp_path / "step_2" / "model.safetensors").write_text("x")
    remove_folder(tmp_path / "step_2")
    assert list(tmp_path.iterdir()) == []


def test_published_files_get_the_mode_of_a_plain_write(tmp_path):
    """0666 less the umask, as `open(path, "w")` gives, not mkstemp's 0600 (a server process could not read it)."""
    previous = os.umask(0o022)
    try:
        write_text_atomically(tmp_path / "a.txt", "x")
        write_files_atomically({tmp_path / "b.bin": lambda t: Path(t).write_bytes(b"y")})
        (tmp_path / "plain.txt").write_text("z")
    finally:
        os.umask(previous)
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in tmp_path.iterdir()}
    assert modes == {"a.txt": 0o644, "b.bin": 0o644, "plain.txt": 0o644}
