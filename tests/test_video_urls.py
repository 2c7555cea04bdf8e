"""Video URLs against local servers that misbehave: every download ends within its limits, with an error naming the
URL, and memory stays flat however much a server sends (`processing/video_decoding.py`, `DownloadLimits`)."""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path

import huggingface_hub
import pytest

from ovmlv.processing.video_decoding import DownloadLimits, VideoDecodeError, load_video
from tests.http_servers import declaring, dripping, endless, http_server, never_answering, serving
from tests.video_files import frame_index, write_video

FAST = {"connect_timeout_s": "2", "read_timeout_s": "0.5", "total_timeout_s": "1.5", "max_megabytes": "4"}
pytestmark = pytest.mark.timeout(60)  # before the limits, the first two tests hung here forever


@pytest.fixture(autouse=True)
def short_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Limits of a second or two instead of minutes, and the Hub client allowed to reach 127.0.0.1."""
    for field, value in FAST.items():
        monkeypatch.setenv(DownloadLimits.ENVIRONMENT[field], value)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


def timed_failure(url: str) -> tuple[VideoDecodeError, float]:
    start = time.monotonic()
    with pytest.raises(VideoDecodeError) as error:
        load_video(url, num_frames=2)
    assert error.value.source == url
    return error.value, time.monotonic() - start


def test_a_served_video_decodes_like_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_video(tmp_path / "clip.mp4", num_frames=20, fps=10)
    sessions = []
    real_session = huggingface_hub.get_session
    monkeypatch.setattr(huggingface_hub, "get_session", lambda: sessions.append(1) or real_session())
    with http_server(serving(path.read_bytes())) as base:
        frames = load_video(f"{base}/clip.mp4", num_frames=4, size=None)
    assert sessions == [1]  # through huggingface_hub's client: its proxy and user-agent settings
    assert [frame_index(frame) for frame in frames[0]] == [frame_index(f) for f in load_video(path, 4, size=None)[0]]


def test_a_server_that_never_answers_times_out() -> None:
    with http_server(never_answering) as base:
        error, seconds = timed_failure(f"{base}/clip.mp4")
    assert seconds < 5  # the read timeout is 0.5 s; the reason names it, the bound leaves a busy machine room
    assert "download failed" in error.reason and "read 0.5 s" in error.reason


def test_an_endless_stream_stops_at_the_size_limit_in_flat_memory() -> None:
    with http_server(endless) as base:
        tracemalloc.start()
        try:
            error, seconds = timed_failure(f"{base}/endless.mp4")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert "larger than 4 MB" in error.reason and "OVMLV_DOWNLOAD_MAX_MB" in error.reason
    assert peak < 2 * 2**20  # the body goes to a temporary file, chunk by chunk: 4 MB were read, < 2 MB held
    assert seconds < 5


def test_a_dripping_server_meets_the_deadline() -> None:
    with http_server(dripping(0.1)) as base:  # each byte comes well within the read timeout
        error, seconds = timed_failure(f"{base}/slow.mp4")
    assert "longer than 1.5 s" in error.reason and 1.5 <= seconds < 5


def test_a_declared_oversize_is_refused_before_downloading() -> None:
    with http_server(declaring(10 * 2**30)) as base:
        error, seconds = timed_failure(f"{base}/huge.mp4")
    assert "larger than 4 MB" in error.reason and seconds < 2  # refused on the headers: nothing downloaded


def test_an_http_error_names_the_url() -> None:
    with http_server(serving(b"not here", status="404 Not Found")) as base:
        error, _ = timed_failure(f"{base}/missing.mp4")
    assert "404" in error.reason


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert DownloadLimits.from_environment() == DownloadLimits(2.0, 0.5, 1.5, 4.0)
    monkeypatch.setenv("OVMLV_DOWNLOAD_MAX_MB", "lots")
    with pytest.raises(ValueError, match="OVMLV_DOWNLOAD_MAX_MB='lots': give a positive number"):
        DownloadLimits.from_environment()


def test_classify_ends_with_a_sentence_for_a_hanging_url(tmp_path: Path, towers, processor, capsys) -> None:
    from ovmlv.arguments import EXIT_ERROR
    from ovmlv.cli import main
    from tests.hub_model_folder import save_trained_folder

    folder = save_trained_folder(tmp_path / "model", towers, processor)
    with http_server(never_answering) as base:
        start = time.monotonic()
        code = main(["classify", f"{base}/clip.mp4", "--model", str(folder), "--labels", "dog", "--json"])
        seconds = time.monotonic() - start
    [result] = json.loads(capsys.readouterr().out)
    assert code == EXIT_ERROR and seconds < 10
    assert result["video"] == f"{base}/clip.mp4" and "download failed" in result["error"]


def test_training_skips_a_hanging_url(tmp_path: Path, processor) -> None:
    from ovmlv.training.config import ManifestConfig
    from ovmlv.training.data import VideoClips, read_manifest

    write_video(tmp_path / "good.mp4", num_frames=8, fps=8)
    with http_server(never_answering) as base:
        rows = [{"video": f"{base}/hangs.mp4", "labels": ["a"]}, {"video": "good.mp4", "labels": ["b"]}]
        (tmp_path / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
        clips = VideoClips(read_manifest(ManifestConfig(str(tmp_path / "train.jsonl"))), processor, num_frames=2)
        start = time.monotonic()
        sample = clips[0]
        seconds = time.monotonic() - start
    assert sample["labels"] == ["b"] and sample["skipped"] == [f"{base}/hangs.mp4"] and seconds < 5
