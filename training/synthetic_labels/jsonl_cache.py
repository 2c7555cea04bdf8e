"""Append-only JSONL results keyed by video, so the generative stages (hours of GPU time at the paper's scale)
survive crashes and reruns.

Line 1 is a header `{"config": {...}}` naming what produced the results (model id, prompt, frames, ...): reusing a
cache made with other settings would silently mix two runs, so a mismatch raises instead. Every later line is one
record `{"video": key, ...}`, flushed and fsynced as soon as it is written: a crash loses at most the line being
written, and that torn tail is cut off on the next open. Delete a record's line to redo that video.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm


class JsonlCache:
    """Records written so far (`done`, by video key); `fill` computes the missing ones chunk by chunk."""

    def __init__(self, path: str | os.PathLike, config: dict[str, Any]) -> None:
        self.path = Path(path)
        self.config = json.loads(json.dumps(config))  # what the header will read back as (tuples become lists)
        self.done: dict[str, dict[str, Any]] = {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self._load():
            self._write([{"config": self.config}])

    def _load(self) -> bool:
        """Read the records of an earlier run; False when there is nothing to read (a new or empty file)."""
        data = self.path.read_bytes() if self.path.exists() else b""
        complete = data[: data.rfind(b"\n") + 1]  # a crash mid-write leaves a torn last line: drop it
        if len(complete) < len(data):
            with self.path.open("r+b") as file:
                file.truncate(len(complete))
        lines = complete.decode().splitlines()
        if not lines:
            return False
        header = json.loads(lines[0])
        if header.get("config") != self.config:
            raise ValueError(
                f"{self.path} was made with {header.get('config')}, not {self.config}: "
                "delete it or choose another output folder"
            )
        for line in lines[1:]:
            record = json.loads(line)
            self.done[record["video"]] = record
        return True

    def fill(
        self,
        keys: Sequence[str],
        process: Callable[[list[str]], list[dict[str, Any]]],
        chunk_size: int,
        desc: str,
        progress: bool = True,
    ) -> dict[str, dict[str, Any]]:
        """Records for `keys`: cached ones as they are, the rest from `process(chunk of keys)`, each chunk appended
        as soon as it is done so that a crash costs at most one chunk."""
        keys = list(dict.fromkeys(keys))
        todo = [key for key in keys if key not in self.done]
        with tqdm(
            total=len(keys), initial=len(keys) - len(todo), desc=desc, unit="video", disable=not progress
        ) as bar:
            for start in range(0, len(todo), chunk_size):
                chunk = todo[start : start + chunk_size]
                self.append(process(chunk))
                bar.update(len(chunk))
        return {key: self.done[key] for key in keys}

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        records = list(records)
        self._write(records)
        self.done.update((record["video"], record) for record in records)

    def _write(self, records: list[dict[str, Any]]) -> None:
        with self.path.open("a") as file:
            file.writelines(json.dumps(record) + "\n" for record in records)
            file.flush()
            os.fsync(file.fileno())
