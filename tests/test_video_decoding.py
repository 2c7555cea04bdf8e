"""Tests for processing/video_decoding.py on real files written by tests/video_files.py.

Frames carry their index (see `index_frame`), so each test checks which frames came back, not only shapes.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from ovmlv.processing import video_decoding
from ovmlv.processing.frame_transforms import clip_resize_and_crop
from ovmlv.processing.video_decoding import (
    VideoDecodeError,
    decode_frames,
    load_video,
    sample_timestamps,
    timestamps_to_indices,
)
from tests.video_files import (
    frame_index,
    index_frame,
    write_audio_only,
    write_no_frames,
    write_not_video,
    write_truncated,
    write_video,
    write_zero_bytes,
)

FPS, NUM_FRAMES = 30, 90  # 3 s clips
DURATION = NUM_FRAMES / FPS
# codec.container; .h264 is a raw stream: no timestamps, no seeking, no duration in any header
VIDEO_KINDS = ["h264.mp4", "mpeg4.avi", "mpeg4.mp4", "libvpx-vp9.webm", "h264.mkv", "h264.ts", "h264.h264"]


def indices_of(frames: np.ndarray) -> list[int]:
    return [frame_index(frame) for frame in frames.reshape(-1, *frames.shape[-3:])]


def expected_indices(timestamps: np.ndarray) -> list[int]:
    return timestamps_to_indices(timestamps, FPS, NUM_FRAMES).ravel().tolist()


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One 3 s clip per container/codec, keyframes every 5 frames so sampling crosses many GOPs."""
    folder = tmp_path_factory.mktemp("videos")
    return {
        name: write_video(folder / name, codec=name.split(".")[0], num_frames=NUM_FRAMES, fps=FPS, gop=5)
        for name in VIDEO_KINDS
    }


# --- sampling ---------------------------------------------------------------------------------------------------


def test_uniform_takes_segment_centres() -> None:
    times = sample_timestamps(8.0, 4)
    np.testing.assert_allclose(times, [[1.0, 3.0, 5.0, 7.0]])


def test_segment_random_draws_one_time_per_segment_reproducibly() -> None:
    times = sample_timestamps(10.0, 5, "segment_random", clips=3, rng=0)
    assert times.shape == (3, 5)
    segment = np.floor(times / 2.0)  # each 2 s segment holds exactly one time
    np.testing.assert_array_equal(segment, np.broadcast_to(np.arange(5), (3, 5)))
    np.testing.assert_array_equal(times, sample_timestamps(10.0, 5, "segment_random", clips=3, rng=0))
    np.testing.assert_array_equal(
        times, sample_timestamps(10.0, 5, "segment_random", clips=3, rng=np.random.default_rng(0))
    )
    assert not np.array_equal(times, sample_timestamps(10.0, 5, "segment_random", clips=3, rng=1))


def test_several_uniform_clips_tile_the_video() -> None:
    times = sample_timestamps(16.0, 8, "uniform", clips=4)
    assert times.shape == (4, 8)
    for clip, window_start in enumerate([0.0, 4.0, 8.0, 12.0]):
        np.testing.assert_allclose(times[clip], window_start + sample_timestamps(4.0, 8)[0])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"duration": 0.0, "num_frames": 8}, "duration"),
        ({"duration": 1.0, "num_frames": 0}, "num_frames"),
        ({"duration": 1.0, "num_frames": 8, "mode": "dense"}, "mode"),
        ({"duration": 1.0, "num_frames": 8, "mode": "multi_clip"}, "mode"),
        ({"duration": 1.0, "num_frames": 8, "clips": 0}, "clips"),
    ],
)
def test_sampling_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        sample_timestamps(**kwargs)


def test_timestamps_to_indices_rounds_to_nearest_and_clamps() -> None:
    indices = timestamps_to_indices(np.array([-1.0, 0.24, 0.25, 0.74, 9.0]), fps=2.0, num_frames=4)
    np.testing.assert_array_equal(indices, [0, 0, 1, 1, 3])  # ties (0.25 s = frame 0.5) go to the later frame


# --- decoding files ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", VIDEO_KINDS)
def test_uniform_sampling_decodes_the_right_frames(videos: dict[str, Path], name: str) -> None:
    frames = load_video(videos[name], num_frames=8, size=None)
    assert frames.shape == (1, 8, 48, 64, 3) and frames.dtype == np.uint8
    assert indices_of(frames) == expected_indices(sample_timestamps(DURATION, 8))


@pytest.mark.parametrize("name", ["h264.mp4", "mpeg4.avi", "libvpx-vp9.webm", "h264.mkv", "h264.ts"])
def test_seeking_in_any_order_returns_the_nearest_frames(videos: dict[str, Path], name: str) -> None:
    rng = np.random.default_rng(0)
    positions = rng.permutation(NUM_FRAMES)[:20] + rng.uniform(-0.4, 0.4, 20)  # away from ties between two frames
    times = np.concatenate([positions, positions[:3], [-1.0, 99.0]]) / FPS  # with repeats, before and past the end
    frames = decode_frames(videos[name], times, size=None)
    assert frames.shape == (len(times), 48, 64, 3)
    assert indices_of(frames) == expected_indices(times)


def test_sparse_targets_seek_instead_of_decoding_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_video(tmp_path / "long.mp4", num_frames=240, gop=10)
    decoded = []
    next_frame = video_decoding._StreamDecoder._next_frame

    def counting(self: video_decoding._StreamDecoder, previous: object) -> object:
        decoded.append(1)
        return next_frame(self, previous)

    monkeypatch.setattr(video_decoding._StreamDecoder, "_next_frame", counting)
    times = np.array([15.0, 115.0, 215.0]) / FPS
    assert indices_of(decode_frames(path, times, size=None)) == [15, 115, 215]
    assert len(decoded) < 60  # sequential decoding would need 216 frames


def test_uniform_clips_and_segment_random_shapes(videos: dict[str, Path]) -> None:
    clips = load_video(videos["h264.mp4"], num_frames=4, clips=4, size=None)
    assert clips.shape == (4, 4, 48, 64, 3)
    assert indices_of(clips) == expected_indices(sample_timestamps(DURATION, 4, clips=4))
    first = load_video(videos["h264.mp4"], num_frames=4, mode="segment_random", clips=2, size=None, seed=3)
    assert first.shape == (2, 4, 48, 64, 3)
    again = load_video(videos["h264.mp4"], num_frames=4, mode="segment_random", clips=2, size=None, seed=3)
    np.testing.assert_array_equal(first, again)


def test_a_segment_is_sampled_inside_its_start_and_end(videos: dict[str, Path]) -> None:
    start, end = DURATION / 4, DURATION / 2
    frames = load_video(videos["h264.mp4"], num_frames=4, clips=2, size=None, segment=(start, end))
    assert indices_of(frames) == expected_indices(start + sample_timestamps(end - start, 4, clips=2))


def test_more_frames_than_the_video_has_repeat_frames(tmp_path: Path) -> None:
    path = write_video(tmp_path / "short.mp4", num_frames=5)
    frames = load_video(path, num_frames=16, size=None)
    assert frames.shape == (1, 16, 48, 64, 3)
    assert indices_of(frames) == timestamps_to_indices(sample_timestamps(5 / FPS, 16), FPS, 5).ravel().tolist()


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (48, 64)])
def test_size_gives_clips_square_crop_of_the_same_frames(tmp_path: Path, width: int, height: int) -> None:
    path = write_video(tmp_path / "size.mp4", num_frames=3, width=width, height=height)
    full = decode_frames(path, np.arange(3) / FPS, size=None)
    assert full.shape == (3, height, width, 3) and indices_of(full) == [0, 1, 2]
    cropped = decode_frames(path, np.arange(3) / FPS, size=224)
    assert cropped.shape == (3, 224, 224, 3)
    expected = np.stack([clip_resize_and_crop(Image.fromarray(frame), 224) for frame in full])
    np.testing.assert_array_equal(cropped, expected)


# --- other sources ------------------------------------------------------------------------------------------------


def test_bytes_and_file_objects_decode_like_paths(videos: dict[str, Path]) -> None:
    path = videos["libvpx-vp9.webm"]
    expected = load_video(path, num_frames=4, size=None)
    np.testing.assert_array_equal(load_video(path.read_bytes(), num_frames=4, size=None), expected)
    np.testing.assert_array_equal(load_video(io.BytesIO(path.read_bytes()), num_frames=4, size=None), expected)
    with open(path, "rb") as file:
        np.testing.assert_array_equal(load_video(file, num_frames=4, size=None), expected)


@pytest.mark.parametrize("name", ["file:real.mp4", "pipe:0.mp4", "concat:real.mp4"])
def test_a_file_named_like_an_ffmpeg_protocol_is_read_as_that_file(tmp_path, monkeypatch, name: str) -> None:
    """FFmpeg would read "file:real.mp4" as real.mp4 and "pipe:0.mp4" as stdin: a local name is a file."""
    write_video(tmp_path / "real.mp4", num_frames=8, fps=8)  # frames 0..7
    write_video(tmp_path / name, num_frames=8, fps=8, frame_fn=lambda i: index_frame(7 - i, 64, 48))  # 7..0
    monkeypatch.chdir(tmp_path)
    assert indices_of(load_video(name, num_frames=2, size=None)) == [5, 1]
    assert indices_of(load_video(tmp_path / name, num_frames=2, size=None)) == [5, 1]


def test_file_object_without_timestamps_is_read_twice(videos: dict[str, Path]) -> None:
    file = io.BytesIO(videos["h264.h264"].read_bytes())
    frames = load_video(file, num_frames=4, size=None)  # a first pass measures the duration
    assert indices_of(frames) == expected_indices(sample_timestamps(DURATION, 4))


def test_decoded_frames_are_sampled_by_position() -> None:
    array = np.stack([index_frame(i, 64, 48) for i in range(10)])  # (T, H, W, 3)
    pil_frames = [Image.fromarray(frame) for frame in array]
    expected = timestamps_to_indices(sample_timestamps(10, 4), 1.0, 10).ravel().tolist()
    for frames in (array, pil_frames, list(array)):
        sampled = load_video(frames, num_frames=4, size=None)
        assert sampled.shape == (1, 4, 48, 64, 3)
        assert indices_of(sampled) == expected
    assert indices_of(decode_frames(array, [9.0, 0.0, 3.2], size=None)) == [9, 0, 3]
    resized = load_video(pil_frames, num_frames=2, size=24)
    assert resized.shape == (1, 2, 24, 24, 3)


def test_a_single_image_array_is_a_one_frame_video() -> None:
    frames = load_video(index_frame(7, 64, 48), num_frames=3, size=None)
    assert indices_of(frames) == [7, 7, 7]


def test_decoded_frames_must_be_uint8_rgb() -> None:
    with pytest.raises(ValueError, match="uint8"):
        load_video(np.zeros((4, 48, 64, 3), dtype=np.float32), num_frames=2)


# --- unreadable inputs --------------------------------------------------------------------------------------------

BAD_FILES = {
    "missing": lambda path: path,
    "directory": lambda path: (path.mkdir(), path)[1],
    "zero bytes": write_zero_bytes,
    "truncated mp4": lambda path: write_truncated(path, num_frames=30),
    "text": write_not_video,
    "png": lambda path: write_not_video(path, kind="png"),
    "audio only": write_audio_only,
    "no frames": lambda path: write_no_frames(path.with_suffix(".avi")),
}


@pytest.mark.parametrize("kind", BAD_FILES)
@pytest.mark.parametrize(
    "read",
    [lambda path: load_video(path, num_frames=2), lambda path: decode_frames(path, [0.5])],
    ids=["load_video", "decode_frames"],
)
def test_unreadable_files_raise_video_decode_error_naming_them(tmp_path: Path, kind: str, read: object) -> None:
    path = BAD_FILES[kind](tmp_path / "video.mp4")
    with pytest.raises(VideoDecodeError) as error:
        read(path)
    assert str(path) in str(error.value) and error.value.source == str(path)


def test_unreadable_bytes_raise_video_decode_error() -> None:
    with pytest.raises(VideoDecodeError, match="0 bytes"):
        load_video(b"", num_frames=2)
    with pytest.raises(VideoDecodeError, match="500 bytes"):
        load_video(b"hello" * 100, num_frames=2)


def test_truncated_mkv_keeps_the_frames_it_has(tmp_path: Path) -> None:
    path = write_truncated(tmp_path / "cut.mkv", keep=0.5, num_frames=60, gop=10)
    frames = decode_frames(path, [0.0, 1.9], size=None)  # the header still says 2 s
    first, last = indices_of(frames)
    assert first == 0 and 0 < last < 59


def test_video_decode_error_survives_pickling() -> None:
    error = pickle.loads(pickle.dumps(VideoDecodeError("clip.mp4", "it is empty")))
    assert (error.source, error.reason) == ("clip.mp4", "it is empty")
    assert str(error) == "Cannot decode video clip.mp4: it is empty"


# --- rotation -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("degrees", [-90, 90, 180])
def test_a_display_matrix_turns_frames_upright(tmp_path: Path, degrees: int) -> None:
    """A phone video shot upright is stored sideways with a display matrix (PyAV reads it as frame.rotation, the
    counterclockwise angle of FFmpeg's av_display_rotation_get): frames come out as a player shows them."""
    stored = [textured(i) for i in range(6)]  # (48, 64, 3): landscape as stored
    path = tmp_path / f"rotated_{degrees}.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("h264", rate=6)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.set_display_rotation(degrees)
        for frame in stored:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    with av.open(str(path)) as container:
        rotation = next(container.decode(video=0)).rotation
    assert rotation in (degrees, degrees - 360)  # the side data is there: PyAV reports 180 as -180

    frames = decode_frames(path, [0.0, 0.5], size=None)
    turns = round(rotation / 90) % 4
    expected = [np.rot90(stored[i], turns) for i in (0, 3)]
    assert frames.shape[1:3] == expected[0].shape[:2] == ((64, 48) if turns % 2 else (48, 64))
    for decoded, upright in zip(frames, expected, strict=True):
        assert np.abs(decoded.astype(int) - upright).mean() < 12  # lossy H.264 of the same picture
        assert np.abs(decoded.astype(int) - np.rot90(upright, 2)).mean() > 40  # and not the picture turned over
    cropped = decode_frames(path, [0.0], size=32)[0]  # CLIP's crop is taken from the upright frame
    assert np.abs(cropped.astype(int) - clip_resize_and_crop(Image.fromarray(expected[0]), 32)).mean() < 12


def textured(index: int) -> np.ndarray:
    """A (48, 64, 3) frame with no symmetry: a bright block in the top-left corner and a gradient, so any turn or
    flip shows."""
    frame = np.tile(np.linspace(0, 120, 64, dtype=np.uint8)[None, :, None], (48, 1, 3))
    frame[:16, :20] = 255
    frame[40:, 50:, 1] = 200 - 10 * index
    return frame
