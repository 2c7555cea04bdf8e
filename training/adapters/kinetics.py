"""Kinetics-400/600/700 (Kay et al., 2017; Carreira et al., 2018): 10-second YouTube clips, one action each.

Format (the official CSVs, e.g. kinetics-600_val.csv): label,youtube_id,time_start,time_end,split, plus is_cc in
Kinetics-400's. The first test CSVs held `label` out; use the labelled release. The official downloader
(ActivityNet's Crawler/Kinetics/download.py) saves trimmed clips as `<label>/<youtube_id>_<start:06d>_<end:06d>.mp4`,
the CVDF archives (github.com/cvdfoundation/kinetics-dataset) as `<youtube_id>_<start:06d>_<end:06d>.mp4`, the
default pattern; fields: label, youtube_id, time_start, time_end, split. With --full-videos the files are whole
YouTube videos and each row carries the CSV's time_start/time_end. The vocabulary is the CSVs' labels, sorted.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from .manifest import Adapted, AnnotationError, Clip, number, read_csv

VIDEO_PATTERN = "{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"
COLUMNS = ("label", "youtube_id", "time_start", "time_end")


def read(paths: Sequence[str | Path], split: str | None = None, full_videos: bool = False) -> Adapted:
    """Clips of the CSVs' rows (those of `split` only, when given: the `split` column's train/val/test)."""
    clips = []
    for path in paths:
        for line, row in enumerate(read_csv(path, "Kinetics CSV", COLUMNS), start=2):
            if split and row.get("split") != split:
                continue
            where = f"Kinetics CSV {path}, line {line}"
            start, end = number(row["time_start"], where), number(row["time_end"], where)
            fields = {"label": row["label"], "youtube_id": row["youtube_id"], "time_start": start, "time_end": end}
            clip = Clip({**fields, "split": row.get("split")}, [row["label"]])
            if full_videos:
                clip.start, clip.end = start, end
            clips.append(clip)
    if not clips:
        raise AnnotationError(
            f"Kinetics CSV(s) {[str(p) for p in paths]} have no rows" + (f" of split {split!r}." if split else ".")
        )
    return Adapted(clips, sorted({clip.labels[0] for clip in clips}))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--annotations", required=True, nargs="+", help="official CSV(s), e.g. kinetics-400/val.csv")
    parser.add_argument("--split", choices=["train", "val", "test"], help="keep only rows of this `split` value")
    parser.add_argument(
        "--full-videos", action="store_true", help="files are whole YouTube videos: write time_start/time_end"
    )
    parser.set_defaults(adapt=lambda args: read(args.annotations, args.split, args.full_videos))
