"""Real, tiny video files written with PyAV, so decoding tests exercise FFmpeg instead of mocks.

The default frame content is the frame index in binary, as black/white vertical stripes: it survives lossy
compression and resizing, and `frame_index` reads it back, so a test can check *which* frame was decoded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
from PIL import Image

INDEX_BITS = 8  # stripes per frame: the default content tells apart up to 256 frames


def index_frame(index: int, width: int, height: int) -> np.ndarray:
    """A uint8 (height, width, 3) frame whose stripe b is white when bit b of `index` is set."""
    stripe = np.arange(width) * INDEX_BITS // width  # (W,) stripe of each column
    row = np.where((index >> stripe) & 1, 255, 0).astype(np.uint8)
    return np.broadcast_to(row[None, :, None], (height, width, 3)).copy()


def frame_index(frame: np.ndarray) -> int:
    """The index `index_frame` wrote into a decoded (H, W, 3) frame, read at the centre of each stripe."""
    width = frame.shape[1]
    centres = (np.arange(INDEX_BITS) * 2 + 1) * width // (2 * INDEX_BITS)
    bits = frame[:, centres].mean(axis=(0, 2)) > 127  # (INDEX_BITS,)
    return int(np.sum(bits << np.arange(INDEX_BITS)))


def write_video(
    path: str | Path,
    *,
    codec: str = "h264",
    num_frames: int = 30,
    fps: int = 30,
    width: int = 64,
    height: int = 48,
    frame_fn: Callable[[int], np.ndarray] | None = None,
    gop: int | None = None,
    options: dict[str, str] | None = None,
) -> Path:
    """Encode `num_frames` frames (`frame_fn(i)`, default `index_frame`) into `path`; the container follows the
    extension (.mp4, .webm, .mkv, .avi). `gop` sets the keyframe interval in frames; `options` go to the encoder
    (e.g. {"preset": "ultrafast"})."""
    if frame_fn is None:
        if num_frames > 2**INDEX_BITS:
            raise ValueError(f"index_frame encodes at most {2**INDEX_BITS} frames; pass a frame_fn")

        def frame_fn(i: int) -> np.ndarray:
            return index_frame(i, width, height)

    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if gop is not None:
            stream.codec_context.gop_size = gop
        if options:
            stream.options = options
        for i in range(num_frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame_fn(i), format="rgb24")))
        container.mux(stream.encode())  # flush the encoder's delayed frames
    return path


def write_audio_only(path: str | Path, seconds: float = 1.0, sample_rate: int = 16000) -> Path:
    """An AAC file with no video stream (e.g. .m4a, or .mp4 to look like a video)."""
    path = Path(path)
    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=sample_rate)
        samples_per_frame = 1024
        for i in range(int(seconds * sample_rate) // samples_per_frame):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, samples_per_frame), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = sample_rate, i * samples_per_frame
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def write_no_frames(path: str | Path) -> Path:
    """An AVI whose MPEG-4 video stream holds zero frames: the header opens, the stream decodes to nothing."""
    path = Path(path)
    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
    return path


def write_truncated(path: str | Path, keep: float = 0.5, **video: object) -> Path:
    """A video (`write_video` keywords) cut to its first `keep` fraction of bytes, like an interrupted download."""
    path = write_video(path, **video)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def write_zero_bytes(path: str | Path) -> Path:
    """An empty file."""
    path = Path(path)
    path.write_bytes(b"")
    return path


def write_not_video(path: str | Path, kind: str = "text") -> Path:
    """A file that is not a video whatever its extension: plain text (`kind="text"`) or a PNG image ("png")."""
    path = Path(path)
    if kind == "text":
        path.write_text("this is not a video\n" * 50)
    elif kind == "png":
        Image.new("RGB", (32, 24), "red").save(path, format="PNG")
    else:
        raise ValueError(f"kind must be 'text' or 'png', got {kind!r}")
    return path
