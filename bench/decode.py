"""Decode benchmark: our seeking PyAV decoder against `transformers.video_utils.load_video(backend="pyav")`.

Encodes 1280x720 H.264 clips at 30 fps with a keyframe every 2 s (10 s and 2 min; --quick: 10 s and 30 s) into a
temporary folder, then times sampling 8 and 32 uniform frames, best of a few repeats. Both decoders are asked for
the same frames: our timestamps are turned into frame indices for `load_video` with the rule our decoder applies
(`timestamps_to_indices`), and the frames are checked to be identical. `load_video` returns full-resolution
frames, so the ratio compares against ours at full resolution (size=None); ours resized and cropped to 224, what
training uses, is shown too.

    python bench/decode.py [--quick] [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from ovmlv.processing.video_decoding import load_video, sample_timestamps, timestamps_to_indices  # noqa: E402
from tests.video_files import write_video  # noqa: E402

FPS = 30
GOP = 2 * FPS  # a keyframe every 2 s
WIDTH, HEIGHT = 1280, 720
FRAME_COUNTS = (8, 32)


def moving_scene(width: int, height: int, seed: int = 0) -> Callable[[int], np.ndarray]:
    """Frames of a smooth random texture scrolling diagonally with a bouncing box over it: motion the encoder has
    to code every frame, without the bitrate of pure noise."""
    coarse = np.random.default_rng(seed).integers(0, 256, (height // 32, width // 32, 3), dtype=np.uint8)
    texture = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC))  # (H, W, 3)
    box = min(width, height) // 6

    def frame(i: int) -> np.ndarray:
        image = np.roll(texture, (3 * i, 5 * i), axis=(0, 1))
        x = abs((7 * i) % (2 * (width - box)) - (width - box))
        y = abs((4 * i) % (2 * (height - box)) - (height - box))
        image[y : y + box, x : x + box] = 255
        return image

    return frame


def encode_clip(path: Path, seconds: int) -> Path:
    num_frames = seconds * FPS
    scene = moving_scene(WIDTH, HEIGHT)
    with tqdm(total=num_frames, desc=f"encoding {path.name}", unit="frame", leave=False) as progress:

        def frame_fn(i: int) -> np.ndarray:
            progress.update()
            return scene(i)

        return write_video(
            path,
            num_frames=num_frames,
            fps=FPS,
            width=WIDTH,
            height=HEIGHT,
            frame_fn=frame_fn,
            gop=GOP,
            options={"preset": "ultrafast"},
        )


def ours(path: Path, num_frames: int, size: int | None) -> np.ndarray:
    return load_video(path, num_frames, size=size)[0]  # (num_frames, H, W, 3)


def transformers_load_video(path: Path, indices: np.ndarray) -> np.ndarray:
    from transformers.video_utils import load_video as hf_load_video

    return hf_load_video(str(path), backend="pyav", sample_indices_fn=lambda **_: indices)[0]


def best_times(repeats: int, decoders: dict[str, Callable[[], np.ndarray]]) -> tuple[dict[str, float], dict]:
    """Best wall time of each decoder over `repeats` rounds, and each one's last frames. Every round runs all the
    decoders one after the other, so a busy spell on a shared machine hits them alike."""
    best = dict.fromkeys(decoders, float("inf"))
    frames = {}
    for _ in range(repeats):
        for name, decode in decoders.items():
            start = time.perf_counter()
            frames[name] = decode()
            best[name] = min(best[name], time.perf_counter() - start)
    return best, frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: a 30 s clip instead of 2 min, 3 rounds")
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds per case (default 5, quick 3)")
    args = parser.parse_args()
    repeats = args.repeats or (3 if args.quick else 5)
    clips = {"10 s": 10, "30 s" if args.quick else "2 min": 30 if args.quick else 120}

    rows = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        for label, seconds in clips.items():
            path = encode_clip(Path(folder) / f"clip_{seconds}s.mp4", seconds)
            print(f"encoded {label}: {path.stat().st_size / 1e6:.1f} MB", flush=True)
            for num_frames in FRAME_COUNTS:
                indices = timestamps_to_indices(sample_timestamps(seconds, num_frames), FPS, seconds * FPS).ravel()
                best, frames = best_times(
                    repeats,
                    {
                        "ours": partial(ours, path, num_frames, None),
                        "ours@224": partial(ours, path, num_frames, 224),
                        "load_video": partial(transformers_load_video, path, indices),
                    },
                )
                same = "yes" if np.array_equal(frames["ours"], frames["load_video"]) else "NO"
                rows.append((label, num_frames, best, same))
                print(f"  {label}, {num_frames} frames done", flush=True)

    print(
        f"\n{WIDTH}x{HEIGHT} H.264 (ultrafast), {FPS} fps, keyframe every {GOP} frames; best of {repeats}; "
        f"{os.cpu_count()} CPU cores, load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    header = ("clip", "frames", "ours (s)", "ours@224 (s)", "load_video (s)", "ratio", "same frames")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for label, num_frames, best, same in rows:
        ratio = best["load_video"] / best["ours"]
        print(
            f"| {label} | {num_frames} | {best['ours']:.3f} | {best['ours@224']:.3f} | {best['load_video']:.3f} "
            f"| {ratio:.1f}x | {same} |"
        )
    print("\nratio = load_video / ours, both returning full-resolution frames")


if __name__ == "__main__":
    main()
