"""A video index on disk: Parquet shards that are written whole or not at all, and their union read back.

    INDEX/index.json          what made the embeddings (model, embedding fingerprint, frames, clips, size)
    INDEX/shards/*.parquet    one row per video: video, size, mtime_ns, fingerprint, duration, error, embedding

Every process writes its own shards; the index is their union. A shard is built in memory, named after the sha256
of its bytes and moved into place with one rename (`write_atomically`), so a killed run leaves whole shards only,
and a damaged shard (a flipped bit anywhere, a truncated copy) is found by its name not matching its content. Shards
are only ever added, under names no other writer can take (a random token per writer, and the content's digest), so
any number of processes and runs may write into one index at once without a lock: only the creation of index.json
takes one (`open_or_create`).
Shard names start with their UTC write time: when a video appears in several shards (it changed and was embedded
again), the latest row is the video's. Rows with an `error` record a video that could not be read, and why.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from ovmlv.modeling_ovmlv.atomic_files import write_atomically, write_text_atomically
from ovmlv.modeling_ovmlv.file_locks import locked

FORMAT_VERSION = 1
INFO_NAME = "index.json"
SHARDS_DIR = "shards"
SHARD_SUFFIX = ".parquet"
DIGEST_CHARS = 16  # hex characters of the content's sha256 kept in a shard's name
FINGERPRINT_KEY = b"ovmlv.embedding_fingerprint"
# The columns that say whether a video needs embedding (everything but the embedding itself).
STATUS_COLUMNS = ("video", "size", "mtime_ns", "fingerprint", "duration", "error")


class VideoIndexError(ValueError):
    """An index that cannot be used as asked: not an index, made by another model, or damaged."""


class CorruptShardError(VideoIndexError):
    """A shard whose bytes do not match its name, or that Parquet cannot read; `path` names it."""

    def __init__(self, path: Path, reason: str):
        super().__init__(
            f"Damaged index shard {path}: {reason}. Delete it and run `ovmlv index` again: the videos it held are "
            "embedded anew."
        )
        self.path = path


@dataclass(frozen=True)
class IndexInfo:
    """What made an index's embeddings; an index only grows with embeddings made the same way.

    model: the model named when the index was made (Hub id or folder), the default for `ovmlv tag` / `search`.
    embedding_fingerprint: `fingerprints.embedding_fingerprint` of that model and frame sampling.
    """

    model: str
    embedding_fingerprint: str
    embedding_dim: int
    num_frames: int
    num_clips: int
    format: int = FORMAT_VERSION


def read_index_info(path: Path) -> IndexInfo:
    """index.json, with exactly IndexInfo's keys (`format` may be absent); anything else names the file."""
    fix = f"restore it, or delete the index folder {path.parent} and build it again with `ovmlv index`"
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise VideoIndexError(f"{path} is not JSON ({err}): {fix}.") from None
    if not isinstance(values, dict):
        raise VideoIndexError(f"{path} holds a JSON {type(values).__name__}, not an object: {fix}.")
    names = {field.name for field in fields(IndexInfo)}
    problems = [f"lacks {key!r}" for key in sorted(names - {"format"} - set(values))]
    problems += [f"has an unknown key {key!r}" for key in sorted(set(values) - names)]
    if problems:
        raise VideoIndexError(f"{path} {', '.join(problems)}: {fix}.")
    return IndexInfo(**values)


def shard_schema(info: IndexInfo) -> pa.Schema:
    return pa.schema(
        [
            ("video", pa.string()),
            ("size", pa.int64()),  # bytes; null for URLs
            ("mtime_ns", pa.int64()),  # modification time; null for URLs
            ("fingerprint", pa.string()),  # `fingerprints.file_fingerprint`; null for URLs
            ("duration", pa.float64()),  # seconds; null when unreadable, and for URLs
            ("error", pa.string()),  # why the video could not be read; null when embedded
            ("embedding", pa.list_(pa.float32(), info.embedding_dim)),  # unit norm; null when unreadable
        ],
        metadata={FINGERPRINT_KEY: info.embedding_fingerprint.encode()},
    )


class VideoIndex:
    """The index folder `root`; `read` gives the union of its shards, one row per video (the latest)."""

    def __init__(self, root: str | os.PathLike, info: IndexInfo):
        self.root = Path(root)
        self.info = info
        self.schema = shard_schema(info)
        self._writer_token = secrets.token_hex(4)  # tells apart shards of processes writing at the same time
        self._written = 0

    @classmethod
    def open(cls, root: str | os.PathLike) -> VideoIndex:
        path = Path(root) / INFO_NAME
        if not path.is_file():
            raise VideoIndexError(
                f"{root} is not a video index (no {INFO_NAME}): build one with `ovmlv index VIDEOS --model MODEL "
                f"--out {root}`."
            )
        info = read_index_info(path)
        if info.format != FORMAT_VERSION:
            raise VideoIndexError(f"{root} has index format {info.format}; this ovmlv reads format {FORMAT_VERSION}.")
        return cls(root, info)

    @classmethod
    def open_or_create(cls, root: str | os.PathLike, info: IndexInfo) -> VideoIndex:
        """The index at `root`, created if absent; an existing one must have been made the same way as `info`.

        Several runs and processes may call this at once: the first to take the lock writes index.json, the others
        then read it, so two runs with different models cannot both believe they made the index.
        """
        with locked(Path(root) / INFO_NAME):
            if not (Path(root) / INFO_NAME).is_file():
                write_text_atomically(Path(root) / INFO_NAME, json.dumps(asdict(info), indent=1))
        index = cls.open(root)
        for field in ("embedding_fingerprint", "embedding_dim", "num_frames", "num_clips"):
            if getattr(index.info, field) != getattr(info, field):
                raise VideoIndexError(
                    f"{root} was made with another {field} ({getattr(index.info, field)}, model {index.info.model}) "
                    f"than asked now ({getattr(info, field)}, model {info.model}): its embeddings would not be "
                    "comparable. Index into another folder, or use the model and --num-frames/--num-clips it was made with."
                )
        return index

    def shard_paths(self) -> list[Path]:
        """Finished shards, oldest first (temporary files of writes in progress or killed start with a dot)."""
        folder = self.root / SHARDS_DIR
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.suffix == SHARD_SUFFIX and not p.name.startswith("."))

    def read_shard(self, path: Path, columns: list[str] | None = None) -> pa.Table:
        """One shard, checked against its name's digest and this index's schema."""
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest()[:DIGEST_CHARS] != path.stem.rsplit("-", 1)[-1]:
            raise CorruptShardError(path, "its content does not match the digest in its name")
        try:
            table = pq.ParquetFile(pa.BufferReader(data)).read(columns=columns)  # 3x faster than read_table
        except (pa.ArrowException, OSError) as err:
            raise CorruptShardError(path, f"Parquet cannot read it ({err})") from err
        if table.schema.metadata.get(FINGERPRINT_KEY) != self.schema.metadata[FINGERPRINT_KEY]:
            raise VideoIndexError(
                f"Index shard {path} holds embeddings of another model than {self.root / INFO_NAME} says; move it "
                "out of the index."
            )
        expected = self.schema if columns is None else pa.schema([self.schema.field(c) for c in columns])
        if not table.schema.equals(expected):
            raise CorruptShardError(path, f"its columns are {table.schema.names}, not {expected.names}")
        return table

    def read(self, columns: list[str] | None = None) -> pa.Table:
        """Every video's latest row, in the order the rows were written."""
        wanted = None if columns is None else list(dict.fromkeys(["video", *columns]))
        tables = [self.read_shard(path, wanted) for path in self.shard_paths()]
        if not tables:
            return self.schema.empty_table() if wanted is None else self.schema.empty_table().select(wanted)
        table = pa.concat_tables(tables)
        if pc.count_distinct(table["video"]).as_py() < table.num_rows:  # re-embedded videos: keep the latest
            latest = {video: row for row, video in enumerate(table["video"].to_pylist())}
            table = table.take(sorted(latest.values()))
        return table if columns is None else table.select(columns)

    def embedded(self) -> tuple[list[str], torch.Tensor]:
        """The videos that have an embedding and their (N, D) float32 embeddings, in the same order."""
        table = self.read(["video", "error", "embedding"])
        if table["error"].null_count < table.num_rows:  # some videos could not be read
            table = table.filter(pc.is_null(table["error"]))
        chunks = [chunk.flatten().to_numpy() for chunk in table["embedding"].chunks]  # views of Arrow's buffers
        flat = np.concatenate(chunks) if chunks else np.empty(0, np.float32)  # one copy, writable, for torch
        return table["video"].to_pylist(), torch.from_numpy(flat.reshape(-1, self.info.embedding_dim))

    def write_shard(self, rows: pa.Table, rank: int) -> Path:
        """Write `rows` (this index's schema) as one new shard, whole or not at all; returns its path."""
        buffer = io.BytesIO()
        # Embeddings stored plain (neither dictionary-encoded nor compressed: random floats only grow): 3x faster
        # to read back than Parquet's defaults, and a third smaller.
        compression = {name: "none" if name == "embedding" else "snappy" for name in self.schema.names}
        pq.write_table(rows.cast(self.schema), buffer, compression=compression, use_dictionary=["error"])
        data = buffer.getvalue()
        now = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        digest = hashlib.sha256(data).hexdigest()[:DIGEST_CHARS]
        name = f"{now}-p{rank:03d}-{self._writer_token}-{self._written:06d}-{digest}{SHARD_SUFFIX}"
        path = self.root / SHARDS_DIR / name
        write_atomically(path, lambda temporary: Path(temporary).write_bytes(data))
        self._written += 1
        return path
