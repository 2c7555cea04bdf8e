"""`ovmlv index`: decode and embed every video of a library once, resumably, in as many processes as launched.

Process r of n takes every n-th video of the listing from position r (`share_of`; as DistributedSampler splits a
data set), so the processes need no messages between them as long as they list the same videos; it plans against
the index as it finds it (a video with a row is done unless its file changed), decodes in DataLoader workers while
the model embeds the previous batch, and writes a shard every `shard_size` videos. A killed process loses only its
unwritten shard: run the same command again and it continues.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ovmlv.processing import VideoDecodeError

from .fingerprints import file_fingerprint
from .index_store import STATUS_COLUMNS, VideoIndex
from .inputs import is_url, recorded_name
from .video_duration import video_duration

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class VideoFile:
    """A video to embed, with the file's state when it was planned (None for URLs and missing files)."""

    video: str
    size: int | None = None
    mtime_ns: int | None = None
    fingerprint: str | None = None  # known when planning had to read it


@dataclass
class IndexPlan:
    """What one process does: embed `to_embed`; re-stamp `refreshed` (a file touched or copied, content unchanged:
    its embedding is kept); leave `unchanged` alone; `elsewhere` videos belong to other processes."""

    to_embed: list[VideoFile] = field(default_factory=list)
    refreshed: list[VideoFile] = field(default_factory=list)
    unchanged: int = 0
    elsewhere: int = 0


@dataclass
class IndexingReport:
    embedded: int
    failed: list[tuple[str, str]]  # (video, reason) of the videos this run could not read
    unchanged: int
    refreshed: int
    elsewhere: int
    shards: list[Path]
    seconds: float


def share_of(videos: Sequence[str], rank: int, world_size: int) -> Sequence[str]:
    """The videos process `rank` of `world_size` indexes: every `world_size`-th from position `rank`, so the shares
    differ by one video at most. Processes that list the same videos (same inputs, same files) split them
    exactly; a video added while they start may be left to the next run, or embedded twice (the latest row wins)."""
    return videos[rank::world_size]


def stat_of(video: str) -> VideoFile:
    """`video` with its file's size and modification time now (None for URLs and missing files)."""
    if is_url(video):
        return VideoFile(video)
    try:
        stat = Path(video).stat()
    except OSError:
        return VideoFile(video)  # decoding it records why it cannot be read
    return VideoFile(video, stat.st_size, stat.st_mtime_ns)


def plan_indexing(
    videos: Sequence[str], indexed: pa.Table, rank: int = 0, world_size: int = 1, retry_failed: bool = False
) -> IndexPlan:
    """Compare this process's share of `videos` with the `indexed` rows (`STATUS_COLUMNS`, one per video).

    A file whose size and modification time match its row is unchanged (rsync's quick check); otherwise its content
    fingerprint decides. URLs are embedded once. Videos that failed are tried again only with `retry_failed`, or
    when their file changed.
    """
    rows = {row["video"]: row for row in indexed.select(list(STATUS_COLUMNS)).to_pylist()}
    mine = share_of(videos, rank, world_size)
    plan = IndexPlan(elsewhere=len(videos) - len(mine))
    for video in mine:
        now, row = stat_of(video), rows.get(recorded_name(video))
        failed = row is not None and row["error"] is not None
        if row is None or (failed and retry_failed):
            plan.to_embed.append(now)
        elif is_url(video):  # embedded once: a URL gives no cheap sign of change
            plan.unchanged += 1
        elif (now.size, now.mtime_ns) == (row["size"], row["mtime_ns"]):
            plan.unchanged += 1
        elif now.size is None:  # the file is gone: record that
            plan.to_embed.append(now)
        else:
            now = replace(now, fingerprint=file_fingerprint(video))
            same = now.fingerprint == row["fingerprint"]
            (plan.refreshed if same and not failed else plan.to_embed).append(now)
    return plan


class VideoFrames(Dataset):
    """Decodes each video as the processor does (multi-clip when asked) in a DataLoader worker; an unreadable video
    becomes an item with the reason instead of pixels."""

    def __init__(self, files: Sequence[VideoFile], processor, num_frames: int, num_clips: int):
        self.files = list(files)
        self.processor = processor
        self.num_frames = num_frames
        self.num_clips = num_clips

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, Any]:
        file = self.files[index]
        if recorded_name(file.video) != file.video:
            reason = "its file name is not valid UTF-8; rename it (e.g. with convmv) to index it"
            return {"file": file, "pixels": None, "duration": None, "error": reason}
        try:
            duration = video_duration(file.video)
            pixels = self.processor.video_pixel_values(file.video, self.num_frames, self.num_clips)[0]
            if file.fingerprint is None and file.size is not None:
                file = replace(file, fingerprint=file_fingerprint(file.video))
        except (VideoDecodeError, OSError) as err:  # OSError: the file vanished while being fingerprinted
            return {"file": file, "pixels": None, "duration": None, "error": getattr(err, "reason", str(err))}
        return {"file": file, "pixels": pixels, "duration": duration, "error": None}


def collate_videos(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Pixels of the readable videos stacked ((n, [clips,] T, 3, S, S)); every item's metadata in a list."""
    pixels = [item["pixels"] for item in items if item["pixels"] is not None]
    return {"items": [{**item, "pixels": None} for item in items], "pixels": torch.stack(pixels) if pixels else None}


class ShardWriter:
    """Collects rows and writes a shard every `shard_size` rows, and the rest on `close`."""

    def __init__(self, index: VideoIndex, rank: int, shard_size: int):
        self.index, self.rank, self.shard_size = index, rank, shard_size
        self.rows: list[dict[str, Any]] = []
        self.written: list[Path] = []

    def add(self, file: VideoFile, duration: float | None, error: str | None, embedding: np.ndarray | None) -> None:
        self.rows.append(
            {
                "video": recorded_name(file.video),
                "size": file.size,
                "mtime_ns": file.mtime_ns,
                "fingerprint": file.fingerprint,
                "duration": duration,
                "error": error,
                "embedding": embedding,
            }
        )
        if len(self.rows) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        if not self.rows:
            return
        dim = self.index.info.embedding_dim
        embeddings = np.stack(
            [np.zeros(dim, np.float32) if r["embedding"] is None else r["embedding"] for r in self.rows]
        )
        columns = {name: pa.array([row[name] for row in self.rows]) for name in STATUS_COLUMNS}
        columns["embedding"] = pa.FixedSizeListArray.from_arrays(
            pa.array(embeddings.reshape(-1), pa.float32()),
            dim,
            mask=pa.array([r["embedding"] is None for r in self.rows]),
        )
        self.written.append(self.index.write_shard(pa.table(columns), self.rank))
        self.rows = []


def index_videos(
    videos: Sequence[str],
    model: torch.nn.Module,
    processor,
    index: VideoIndex,
    *,
    rank: int = 0,
    world_size: int = 1,
    batch_size: int = 8,
    num_workers: int = 2,
    shard_size: int = 512,
    device: str | torch.device = "cpu",
    retry_failed: bool = False,
    progress: bool = True,
) -> IndexingReport:
    """Embed this process's share of `videos` that the index lacks (or holds for an older file) into new shards."""
    start = time.perf_counter()
    plan = plan_indexing(videos, index.read(list(STATUS_COLUMNS)), rank, world_size, retry_failed)
    writer = ShardWriter(index, rank, shard_size)
    if plan.refreshed:
        _refresh(plan.refreshed, index, writer)
    frames = VideoFrames(plan.to_embed, processor, index.info.num_frames, index.info.num_clips)
    loader = DataLoader(
        frames,
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=collate_videos,
        pin_memory=torch.device(device).type == "cuda",  # copies to the GPU overlap the next batch's decoding
    )
    failed: list[tuple[str, str]] = []
    bar = tqdm(
        total=len(frames), desc=f"Indexing (process {rank + 1} of {world_size})", unit="video", disable=not progress
    )
    with bar, torch.inference_mode():
        for batch in loader:
            embeddings = iter(())
            if batch["pixels"] is not None:
                embeddings = iter(model.get_video_features(batch["pixels"].to(device)).float().cpu().numpy())
            for item in batch["items"]:
                if item["error"] is not None:
                    name = recorded_name(item["file"].video)
                    logger.warning("Skipping an unreadable video %s: %s", name, item["error"])
                    failed.append((name, item["error"]))
                    writer.add(item["file"], None, item["error"], None)
                else:
                    writer.add(item["file"], item["duration"], None, next(embeddings))
            bar.update(len(batch["items"]))
    writer.flush()
    return IndexingReport(
        embedded=len(plan.to_embed) - len(failed),
        failed=failed,
        unchanged=plan.unchanged,
        refreshed=len(plan.refreshed),
        elsewhere=plan.elsewhere,
        shards=writer.written,
        seconds=time.perf_counter() - start,
    )


def _refresh(files: list[VideoFile], index: VideoIndex, writer: ShardWriter) -> None:
    """Rows for files that were touched or copied without changing: their old embedding under the new file state."""
    wanted = {file.video: file for file in files}
    old = index.read().filter(pc.is_in(pc.field("video"), pa.array(list(wanted))))
    for row in old.to_pylist():
        embedding = np.asarray(row["embedding"], np.float32)
        writer.add(wanted[row["video"]], row["duration"], None, embedding)
