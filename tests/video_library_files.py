"""A small video library and its index, shared by the index, tagging and search tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ovmlv import arguments, cli
from tests.video_files import write_not_video, write_video

NUM_VIDEOS = 12
FRAMES, CLIPS = 2, 2  # multi-clip, as evaluation embeds


def shade(value: int) -> np.ndarray:
    """A uniform grey 64x48 frame: every video of the library looks different to the model."""
    return np.full((48, 64, 3), value % 256, np.uint8)


def write_library(folder: Path, count: int = NUM_VIDEOS) -> Path:
    """`count` small H.264 clips of different lengths and content (v00.mp4, ...), and one file that is not a video."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        write_video(folder / f"v{i:02d}.mp4", num_frames=6 + i, fps=6, frame_fn=lambda f, i=i: shade(16 * i + 3 * f))
    write_not_video(folder / "broken.mp4")
    return folder


def build_index(videos: Path, model: Path, out: Path, exit_code: int = arguments.EXIT_PARTIAL) -> Path:
    """`ovmlv index` through the command line: 3 videos a shard, one decoding worker. The first time, broken.mp4
    makes it exit with EXIT_PARTIAL."""
    argv = ["index", str(videos), "--model", str(model), "--out", str(out), "--num-frames", str(FRAMES), "--num-clips"]
    assert cli.main([*argv, str(CLIPS), "--shard-size", "3", "--workers", "1"]) == exit_code
    return out
