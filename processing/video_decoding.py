"""Video IO: where to sample frames in a video, and decoding only those frames with PyAV.

`sample_timestamps` says where (uniform, segment-random for training, multi-clip for evaluation), in seconds;
`decode_frames` returns the frames nearest given times; `load_video` does both. Sources can be paths, URLs, bytes,
file objects or frames that are already decoded. Anything unreadable raises `VideoDecodeError` (a ValueError), never a
bare FFmpeg error, so a data loader or a batch call can skip a broken file and name it. Frames come out as displayed:
a display matrix (a phone video shot upright) is applied.

URLs are downloaded into a temporary file (memory stays flat whatever the size) within `DownloadLimits`: a connect
and a read timeout, a deadline for the whole download and a maximum size, each an environment variable.

Copied flat into Hub model folders with its sibling `frame_transforms.py`, so it imports only them, the standard
library, numpy, PyAV and PIL (and huggingface_hub, lazily, for URLs).
"""

from __future__ import annotations

import io
import math
import os
import tempfile
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, fields
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np
from av.container import InputContainer
from av.video.reformatter import VideoReformatter
from PIL import Image

from .frame_transforms import clip_resize_and_crop

# "uniform" for inference and evaluation, "segment_random" for training (see `sample_timestamps`).
SAMPLING_MODES = ("uniform", "segment_random")
DECODED_FRAMES = "<decoded frames>"  # how errors name frames passed in already decoded

DecodedFrames = np.ndarray | Image.Image | Sequence[Image.Image] | Sequence[np.ndarray]
VideoSource = str | os.PathLike | bytes | BinaryIO | DecodedFrames


class VideoDecodeError(ValueError):
    """A video that cannot be read: `source` names it, `reason` says what is wrong and what to do about it.

    A ValueError (a bad input value), so code that reports bad inputs without importing this module catches it."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"Cannot decode video {source}: {reason}")
        self.source = source
        self.reason = reason

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # picklable, so it crosses process boundaries intact
        return type(self), (self.source, self.reason)


@dataclass(frozen=True)
class DownloadLimits:
    """How long a video URL may take and how large it may be. Each field has an environment variable (the
    `ENVIRONMENT` names) read at every download, so a Space, a training job or a DataLoader worker can set them."""

    connect_timeout_s: float = 10.0  # to open the connection
    read_timeout_s: float = 30.0  # the longest wait for the server's next bytes (a server that never answers)
    total_timeout_s: float = 600.0  # the whole download (a server that drips bytes forever)
    max_megabytes: float = 2048.0  # the largest video accepted (a server that streams without end)

    ENVIRONMENT = {
        "connect_timeout_s": "OVMLV_DOWNLOAD_CONNECT_TIMEOUT_S",
        "read_timeout_s": "OVMLV_DOWNLOAD_READ_TIMEOUT_S",
        "total_timeout_s": "OVMLV_DOWNLOAD_TIMEOUT_S",
        "max_megabytes": "OVMLV_DOWNLOAD_MAX_MB",
    }

    @classmethod
    def from_environment(cls) -> DownloadLimits:
        values = {}
        for field in fields(cls):
            variable = cls.ENVIRONMENT[field.name]
            if (text := os.environ.get(variable)) is None:
                continue
            try:
                values[field.name] = float(text)
            except ValueError:
                values[field.name] = math.nan
            if not values[field.name] > 0:
                raise ValueError(f"{variable}={text!r}: give a positive number (default {field.default}).")
        return cls(**values)


def sample_timestamps(
    duration: float,
    num_frames: int,
    mode: str = "uniform",
    clips: int = 1,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Times in seconds, shape (clips, num_frames), at which to take frames from a video of `duration` seconds.

    - `uniform` (inference, evaluation): the video cut into `clips` equal consecutive windows (one window: the whole
      video), frames at the centres of `num_frames` equal segments of each; the paper averages 4 clips x 8 frames.
    - `segment_random` (training): `num_frames` equal segments of the whole video, one random time in each
      (TSN-style), so every epoch sees other frames while still covering the whole video; each of the `clips` rows
      is a fresh draw from `rng`.

    For a frame count and frame rate instead of a duration, pass `frame_count / fps`.
    """
    if duration <= 0 or num_frames < 1:
        raise ValueError(f"need duration > 0 and num_frames >= 1, got duration={duration}, num_frames={num_frames}")
    if mode not in SAMPLING_MODES:
        raise ValueError(f"mode must be one of {SAMPLING_MODES}, got {mode!r}")
    if clips < 1:
        raise ValueError(f"clips must be >= 1, got {clips}")

    if mode == "segment_random":
        windows = np.zeros(clips)  # every clip spans the whole video
        offsets = np.random.default_rng(rng).random((clips, num_frames))
        segment = duration / num_frames
    else:
        windows = np.arange(clips)
        offsets = np.full((clips, num_frames), 0.5)
        segment = duration / (clips * num_frames)
    return (windows[:, None] * num_frames + np.arange(num_frames) + offsets) * segment  # (clips, num_frames)


def timestamps_to_indices(timestamps: np.ndarray, fps: float, num_frames: int) -> np.ndarray:
    """Index of the frame nearest each time (frame i shows at i / fps; ties go to the later frame), clamped to
    the video. The same rule `decode_frames` applies to timestamps read from the stream."""
    indices = np.floor(np.asarray(timestamps, dtype=np.float64) * fps + 0.5).astype(np.int64)
    return np.clip(indices, 0, num_frames - 1)


def decode_frames(source: VideoSource, timestamps: np.ndarray, *, size: int | None = None) -> np.ndarray:
    """uint8 RGB frames (n, H, W, 3), one per timestamp (seconds from the first frame; any shape, order and
    repeats; n = timestamps.size): the frame nearest each time, resized and centre-cropped to (size, size) as
    CLIP's image processor does (`clip_resize_and_crop`; None keeps the decoded size). Times past the end give the
    last frame.

    Already decoded frames (a list of PIL images or uint8 arrays, or a (T, H, W, 3) / (H, W, 3) array) have no
    clock: for them a timestamp is a frame position, frame i showing at time i.
    """
    times = np.asarray(timestamps, dtype=np.float64).ravel()
    if times.size == 0:
        raise ValueError("need at least one timestamp")
    with _open_video(source) as video:
        return video.frames_at(times, size)


def load_video(
    source: VideoSource,
    num_frames: int,
    mode: str = "uniform",
    clips: int = 1,
    size: int | None = None,
    seed: np.random.Generator | int | None = None,
    segment: tuple[float, float] | None = None,
) -> np.ndarray:
    """uint8 RGB frames (clips, num_frames, H, W, 3) sampled from `source` as `sample_timestamps` describes for
    `mode`; `seed` makes `segment_random` reproducible; `size` as in `decode_frames`. `segment` = (start, end) in
    seconds samples inside that part of the video only (a YouTube-8M segment, a Kinetics clip of a longer video),
    without measuring the whole video. Decoded frames are sampled by position (see `decode_frames`). The frame count
    and size have no default here: the processor owns them (`processing_ovmlv.DEFAULT_NUM_FRAMES`)."""
    with _open_video(source) as video:
        start, end = segment if segment is not None else (0.0, video.duration())
        times = start + sample_timestamps(end - start, num_frames, mode, clips, rng=seed)  # (clips, num_frames)
        frames = video.frames_at(times.ravel(), size)  # (clips * num_frames, H, W, 3)
    return frames.reshape(*times.shape, *frames.shape[1:])


class _DecodedVideo:
    """Frames that are already decoded, behind the same interface as `_StreamDecoder`, timed by position."""

    def __init__(self, frames: DecodedFrames) -> None:
        if isinstance(frames, np.ndarray) and frames.ndim == 3:
            frames = frames[None]  # a single (H, W, 3) image
        if len(frames) == 0:
            raise VideoDecodeError(DECODED_FRAMES, "it has no frames; pass at least one")
        self.frames = frames

    def duration(self) -> float:
        return float(len(self.frames))

    def frames_at(self, times: np.ndarray, size: int | None) -> np.ndarray:
        indices = timestamps_to_indices(times, fps=1.0, num_frames=len(self.frames))
        resized = {i: self._rgb(self.frames[i], size) for i in set(indices.tolist())}
        return np.stack([resized[i] for i in indices.tolist()])

    @staticmethod
    def _rgb(frame: Image.Image | np.ndarray, size: int | None) -> np.ndarray:
        if isinstance(frame, np.ndarray):
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[-1] != 3:
                raise VideoDecodeError(
                    DECODED_FRAMES, f"frames must be uint8 (H, W, 3) RGB, got {frame.dtype} {frame.shape}"
                )
            frame = Image.fromarray(frame)
        if not isinstance(frame, Image.Image):
            raise VideoDecodeError(
                DECODED_FRAMES, f"a frame is a {type(frame).__name__}; frames are PIL images or uint8 (H, W, 3) arrays"
            )
        frame = frame.convert("RGB")
        return np.asarray(frame) if size is None else clip_resize_and_crop(frame, size)


class _StreamDecoder:
    """The video stream of an opened container, decoding the frames nearest given times and as few others as it can.

    Decoding runs forward from the current position; it seeks instead when the next target lies more than one keyframe
    interval after the last keyframe decoded: the next keyframe then comes before the target (and after the current
    position, or it would have been decoded), so the seek lands past here and skips decoding instead of repeating
    it. The interval is learned while decoding: the longest distance between keyframes decoded in a row, or between
    a target and the keyframe a seek landed on. Files whose timestamps or seeking misbehave (raw streams, truncated
    files) fall back to one sequential pass from the start.
    """

    def __init__(self, name: str, open_container: Callable[[], InputContainer]) -> None:
        self.name = name
        self._open_container = open_container
        self.container = open_container()
        try:
            self.stream = self._video_stream()
        except VideoDecodeError:
            self.container.close()
            raise
        self.time_base = float(self.stream.time_base)
        self.start_pts = self.stream.start_time or 0
        rate = self.stream.guessed_rate or self.stream.average_rate
        self.frame_period = 1 / float(rate) if rate else 1.0  # frames without a rate are timed by position
        self.seekable = True
        self.seek_target = -math.inf  # the last seek's target (seconds) and the pts it aimed at
        self.seek_pts = self.start_pts
        self.keyframe_interval: float | None = None  # seconds; unknown until two keyframes are decoded in a row
        self.last_keyframe: float | None = None  # time of the last keyframe in the current unbroken run of frames
        self.reformatter = VideoReformatter()
        self._frames: Iterator[av.VideoFrame] = iter(())  # set by every seek or restart

    def close(self) -> None:
        self.container.close()

    def _video_stream(self) -> av.video.stream.VideoStream:
        format_name = self.container.format.name
        if format_name == "image2" or format_name.endswith("pipe"):
            raise VideoDecodeError(
                self.name, f"it is a still image ({format_name}), not a video; pass a video, or the image as frames"
            )
        # Cover art in audio files shows up as a one-picture video stream: it is not the video.
        streams = [s for s in self.container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
        if not streams:
            raise VideoDecodeError(self.name, "it has no video stream (audio only?); pass a file with a video track")
        streams[0].thread_type = "AUTO"
        return streams[0]

    def duration(self) -> float:
        """Seconds of video: from the stream header, else the container header, else a pass over the packets."""
        if self.stream.duration:
            return self.stream.duration * self.time_base
        if self.container.duration:
            return self.container.duration / av.time_base
        return self._measure_duration()

    def _measure_duration(self) -> float:
        """Demux (without decoding) a second copy of the file, so this decoder's position stays put; a damaged
        tail ends the count, as it ends decoding."""
        packet_count, end_pts = 0, None
        with self._open_container() as container, suppress(av.FFmpegError):
            for packet in container.demux(container.streams[self.stream.index]):
                if packet.size == 0:  # the empty packet that marks the end
                    continue
                packet_count += 1
                if packet.pts is not None:
                    end = packet.pts + (packet.duration or 0)
                    end_pts = end if end_pts is None else max(end_pts, end)
        if packet_count == 0:
            raise VideoDecodeError(self.name, "its video stream has no frames; re-export or re-download the file")
        if end_pts is None:  # raw streams carry no timestamps: count frames instead
            return packet_count * self.frame_period
        return (end_pts - self.start_pts) * self.time_base

    def frames_at(self, times: np.ndarray, size: int | None) -> np.ndarray:
        order = np.argsort(times, kind="stable")
        frames: np.ndarray | None = None  # filled in place: one copy of the output, however large
        nearest = self._nearest_frames(times[order].tolist(), size)
        for index, frame in zip(order.tolist(), nearest, strict=True):
            if frames is None:
                frames = np.empty((len(times), *frame.shape), dtype=np.uint8)
            frames[index] = frame
        return frames

    def _nearest_frames(self, targets: list[float], size: int | None) -> Iterator[np.ndarray]:
        """RGB arrays of the frames nearest each of the sorted `targets`, in order."""
        pending = deque(targets)
        previous: tuple[float, av.VideoFrame] | None = None  # the last frame decoded, with its time
        landed = self._seek(pending[0])  # after opening, the decoder holds nothing: this seek costs nothing
        converted: tuple[av.VideoFrame | None, np.ndarray] = (None, np.empty(0))  # reused for repeated frames
        while pending:
            decoded = self._next_frame(previous)
            if landed and (decoded is None or decoded[1].pts is None or decoded[1].pts > self.seek_pts):
                # The seek found nothing, no timestamp, or overshot its target: decode from the start instead.
                self._restart_sequential()
                previous, landed = None, False
                continue
            if decoded is None:
                break
            time, frame = decoded
            self._learn_keyframes(time, frame, pending[0] if landed else None)
            while pending and pending[0] <= time:
                target = pending.popleft()
                nearest = previous[1] if previous and target - previous[0] < time - target else frame
                if nearest is not converted[0]:
                    converted = (nearest, self._rgb(nearest, size))
                yield converted[1]
            previous, landed = (time, frame), False
            if pending and self._worth_seeking(pending[0], time):
                landed = self._seek(pending[0])
                previous = None
        if pending:
            if previous is None:
                raise VideoDecodeError(self.name, "no video frame could be decoded; re-export or re-download the file")
            last = self._rgb(previous[1], size)
            yield from (last for _ in pending)  # past the end: the last frame

    def _learn_keyframes(self, time: float, frame: av.VideoFrame, seek_target: float | None) -> None:
        """Update the keyframe interval from a decoded frame; `seek_target` is set for the first frame after a seek,
        which lands on the last keyframe before the target."""
        if seek_target is not None and self.keyframe_interval is not None:
            self.keyframe_interval = max(self.keyframe_interval, seek_target - time)
        if frame.key_frame:
            if self.last_keyframe is not None:
                self.keyframe_interval = max(self.keyframe_interval or 0.0, time - self.last_keyframe)
            self.last_keyframe = time

    def _worth_seeking(self, target: float, position: float) -> bool:
        """Whether a keyframe surely lies after `position` and before `target` (see the class docstring)."""
        if not self.seekable or self.keyframe_interval is None or target <= self.seek_target:
            return False  # each seek aims past the last one, so a demuxer that lands early cannot make us loop
        since = position if self.last_keyframe is None else self.last_keyframe
        return target - since > self.keyframe_interval

    def _seek(self, target: float) -> bool:
        """Jump to the last keyframe at or before the latest time a frame nearest `target` can show at; False when
        the file cannot seek (it then restarts from the beginning)."""
        self.seek_target, self.last_keyframe = target, None
        self.seek_pts = self.start_pts + int((max(target, 0.0) + self.frame_period / 2) / self.time_base)
        try:
            self.container.seek(self.seek_pts, stream=self.stream)
        except av.FFmpegError:  # e.g. raw streams: decode everything in one pass
            self._restart_sequential()
            return False
        self._frames = self.container.decode(self.stream)
        return True

    def _restart_sequential(self) -> None:
        """Reopen the file and decode from its start without seeking: slow, but right whatever the file does."""
        self.container.close()
        self.container = self._open_container()
        self.stream = self._video_stream()
        self.seekable, self.last_keyframe = False, None
        self._frames = self.container.decode(self.stream)

    def _next_frame(self, previous: tuple[float, av.VideoFrame] | None) -> tuple[float | None, av.VideoFrame] | None:
        """The next frame with its time in seconds from the first frame (None when the time is unknowable), or None
        at the end. A decoding error ends the video early: truncated files keep the frames they have."""
        try:
            frame = next(self._frames)
        except StopIteration:
            return None
        except av.FFmpegError as err:
            if previous is not None:
                warnings.warn(
                    f"{self.name}: decoding stopped after {previous[0]:.2f}s ({err}); later frames repeat the last one",
                    stacklevel=2,
                )
            return None
        if frame.pts is not None:
            return (frame.pts - self.start_pts) * self.time_base, frame
        if previous is not None:
            return previous[0] + self.frame_period, frame
        return (None if self.seekable else 0.0), frame

    def _rgb(self, frame: av.VideoFrame, size: int | None) -> np.ndarray:
        """The frame as RGB at full resolution (the one colour conversion), turned upright, then CLIP's resize and
        crop in PIL: FFmpeg's scalers would be faster but differ from CLIP's bicubic filter by up to 0.9 in
        normalised units."""
        rgb = upright(self.reformatter.reformat(frame, format="rgb24").to_ndarray(), frame.rotation)
        return rgb if size is None else clip_resize_and_crop(Image.fromarray(rgb), size)


@contextmanager
def _downloaded(url: str) -> Iterator[BinaryIO]:
    """The body of `url` in a temporary file (deleted on exit), fetched through huggingface_hub's HTTP client (its
    proxy and user-agent settings) within `DownloadLimits`; any failure is a VideoDecodeError naming the URL."""
    from huggingface_hub import get_session

    limits = DownloadLimits.from_environment()
    max_bytes = int(limits.max_megabytes * 2**20)
    too_large = f"it is larger than {limits.max_megabytes:g} MB ({DownloadLimits.ENVIRONMENT['max_megabytes']})"
    deadline = time.monotonic() + limits.total_timeout_s
    # (connect, read, write, pool) seconds: a tuple, which every httpx generation reads as its Timeout
    timeout = (limits.connect_timeout_s, limits.read_timeout_s, limits.read_timeout_s, limits.connect_timeout_s)
    with tempfile.TemporaryFile() as file:
        try:
            with get_session().stream("GET", url, follow_redirects=True, timeout=timeout) as response:
                response.raise_for_status()
                if int(response.headers.get("content-length") or 0) > max_bytes:
                    raise VideoDecodeError(url, f"{too_large}; download it yourself and pass the file")
                for chunk in response.iter_bytes():
                    file.write(chunk)
                    if file.tell() > max_bytes:
                        raise VideoDecodeError(url, f"{too_large}; download it yourself and pass the file")
                    if time.monotonic() > deadline:
                        raise VideoDecodeError(
                            url,
                            f"the download took longer than {limits.total_timeout_s:g} s "
                            f"({DownloadLimits.ENVIRONMENT['total_timeout_s']}); download it yourself and pass the file",
                        )
        except VideoDecodeError:
            raise
        except Exception as err:  # timeouts, HTTP errors, offline mode: the client library varies with versions
            reason = str(err) or type(err).__name__
            raise VideoDecodeError(
                url,
                f"download failed ({reason}; timeouts: connect {limits.connect_timeout_s:g} s, read "
                f"{limits.read_timeout_s:g} s); check the URL and the network connection",
            ) from err
        file.seek(0)
        yield file


def upright(rgb: np.ndarray, rotation: float) -> np.ndarray:
    """`rgb` (H, W, 3) as displayed: turned counterclockwise by `rotation` degrees, the angle of the stream's display
    matrix as FFmpeg reports it (`av_display_rotation_get`; a phone video shot upright says -90). Angles are rounded
    to quarter turns, the only ones cameras write."""
    turns = round(rotation / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


def _opener(
    source: str | os.PathLike | bytes | BinaryIO, name: str | None = None
) -> tuple[str, Callable[[], InputContainer]]:
    """A name for `source` (for error messages) and a function that opens it afresh, after checks that give clearer
    errors than FFmpeg's."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = source
        name = f"<{len(data)} bytes in memory>"
        if len(data) == 0:
            raise VideoDecodeError(name, "it is empty (0 bytes); pass the contents of a video file")
        return name, lambda: _open_container(io.BytesIO(data), name)
    if isinstance(source, str | os.PathLike):
        if not os.fspath(source):
            raise VideoDecodeError("''", "the path is empty; pass the path of a video file")
        path = Path(source)
        name = str(path)
        if not path.exists():
            raise VideoDecodeError(name, "file not found; check the path")
        if path.is_dir():
            raise VideoDecodeError(name, "it is a directory; pass the path of a video file")
        if path.stat().st_size == 0:
            raise VideoDecodeError(name, "the file is empty (0 bytes); re-export or re-download it")
        # FFmpeg reads "proto:rest" as a protocol ("file:x.mp4" opens x.mp4, "pipe:0.mp4" reads stdin): a local
        # file goes by its absolute path under the file protocol, named explicitly.
        local = f"file:{path.absolute()}"
        return name, lambda: _open_container(local, name)
    if hasattr(source, "read"):
        file, name = source, name or str(getattr(source, "name", "<file object>"))
        start = file.tell()

        def reopen() -> InputContainer:
            file.seek(start)
            return _open_container(file, name)

        return name, reopen
    raise VideoDecodeError(
        f"<{type(source).__name__}>",
        f"cannot read a video from a {type(source).__name__}; pass a path, URL, bytes, a file object or frames",
    )


def _open_container(file: str | BinaryIO, name: str) -> InputContainer:
    try:
        return av.open(file, metadata_errors="ignore")
    except (av.FFmpegError, OSError) as err:
        raise VideoDecodeError(
            name,
            f"FFmpeg cannot open it ({getattr(err, 'strerror', None) or err}): it is not a video, or it is damaged "
            "or truncated (an MP4 cut short loses its index); re-export or re-download it",
        ) from err


@contextmanager
def _open_video(source: VideoSource) -> Iterator[_DecodedVideo | _StreamDecoder]:
    """The video behind `source`, decoded frames or a stream decoder; FFmpeg errors leave as VideoDecodeError."""
    if isinstance(source, Image.Image):
        source = [source]  # a still is a one-frame video
    if isinstance(source, np.ndarray | list | tuple):
        yield _DecodedVideo(source)
        return
    with ExitStack() as cleanup:
        name = None
        if isinstance(source, str) and source.startswith(("http://", "https://")):
            name, source = source, cleanup.enter_context(_downloaded(source))
        name, open_container = _opener(source, name)
        try:
            decoder = _StreamDecoder(name, open_container)
        except av.FFmpegError as err:
            raise VideoDecodeError(name, f"FFmpeg cannot read its streams ({err}); re-export the file") from err
        cleanup.callback(decoder.close)
        try:
            yield decoder
        except av.FFmpegError as err:
            raise VideoDecodeError(name, f"FFmpeg failed while decoding it ({err}); re-export the file") from err
