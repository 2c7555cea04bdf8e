"""`ovmlv index`: each video's embedding as the model makes it, unreadable videos recorded, re-runs that embed only
what is new or changed, damaged shards named, killed runs that resume to the uninterrupted index, and two processes
whose union is the index."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch

from ovmlv import arguments, cli
from ovmlv.modeling_ovmlv import OvmlvModel
from ovmlv.video_library.fingerprints import file_fingerprint
from ovmlv.video_library.index_store import CorruptShardError, VideoIndex, VideoIndexError
from ovmlv.video_library.indexing import index_videos
from ovmlv.video_library.inputs import list_videos
from tests.hub_model_folder import VOCABULARY, save_trained_folder
from tests.numerics import assert_same_outputs
from tests.test_training import descendants, free_port, run_together
from tests.video_files import write_video
from tests.video_library_files import CLIPS, FRAMES, NUM_VIDEOS, build_index, shade, write_library

REPO = Path(__file__).resolve().parents[1]
SUBPROCESS_TIMEOUT_S = 300


@pytest.fixture(scope="module")
def model_folder(towers, processor, tmp_path_factory) -> Path:
    return save_trained_folder(tmp_path_factory.mktemp("model"), towers, processor, VOCABULARY)


@pytest.fixture(scope="module")
def model(model_folder):
    return OvmlvModel.from_pretrained(model_folder).eval()


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    return write_library(tmp_path_factory.mktemp("library") / "videos")


@pytest.fixture(scope="module")
def built(model_folder, library, tmp_path_factory) -> Path:
    return build_index(library, model_folder, tmp_path_factory.mktemp("built") / "library.index")


def by_video(videos: list[str], embeddings: torch.Tensor) -> dict[str, torch.Tensor]:
    assert len(set(videos)) == len(videos)
    return dict(zip(videos, embeddings, strict=True))


def test_index_holds_each_videos_embedding_as_the_model_makes_it(built, library, model, processor):
    index = VideoIndex.open(built)
    assert index.info.num_frames == FRAMES and index.info.num_clips == CLIPS
    videos, embeddings = index.embedded()
    assert sorted(videos) == sorted(str(p) for p in library.glob("v*.mp4"))
    with torch.no_grad():
        expected = model.get_video_features(
            processor(videos=videos, num_frames=FRAMES, num_clips=CLIPS)["pixel_values_videos"]
        )
    assert_same_outputs(embeddings, expected)
    assert len(index.shard_paths()) == 5  # 13 rows, 3 per shard

    rows = {row["video"]: row for row in index.read().to_pylist()}
    broken = rows[str(library / "broken.mp4")]
    assert broken["embedding"] is None and "FFmpeg cannot open it" in broken["error"]
    first = rows[str(library / "v00.mp4")]
    assert first["error"] is None and first["duration"] == pytest.approx(1.0)
    assert first["fingerprint"] == file_fingerprint(library / "v00.mp4")
    assert first["size"] == (library / "v00.mp4").stat().st_size


def test_rerun_embeds_only_new_and_changed_videos(built, library, model, processor, tmp_path):
    videos = tmp_path / "videos"
    shutil.copytree(library, videos)  # files this test may change
    index = VideoIndex.open_or_create(tmp_path / "index", VideoIndex.open(built).info)
    first = index_videos(sorted(map(str, videos.iterdir())), model, processor, index, num_workers=0, progress=False)
    assert (first.embedded, len(first.failed), first.unchanged) == (NUM_VIDEOS, 1, 0)
    before = by_video(*index.embedded())

    write_video(videos / "new.mp4", num_frames=9, fps=6, frame_fn=lambda f: shade(200))  # grown
    write_video(videos / "v01.mp4", num_frames=9, fps=6, frame_fn=lambda f: shade(90 + 7 * f))  # changed
    touched = videos / "v02.mp4"
    os.utime(touched, ns=(time.time_ns(), time.time_ns() + 10**9))  # touched: same bytes, new time
    second = index_videos(sorted(map(str, videos.iterdir())), model, processor, index, num_workers=0, progress=False)
    assert (second.embedded, second.refreshed, second.unchanged, len(second.failed)) == (2, 1, NUM_VIDEOS - 1, 0)

    after = by_video(*index.embedded())
    assert after.keys() == before.keys() | {str(videos / "new.mp4")}
    assert torch.equal(after[str(touched)], before[str(touched)])  # kept, not recomputed
    assert not torch.allclose(after[str(videos / "v01.mp4")], before[str(videos / "v01.mp4")])
    rows = {row["video"]: row for row in index.read().to_pylist()}
    assert rows[str(touched)]["mtime_ns"] == touched.stat().st_mtime_ns
    assert len(index.read()) == NUM_VIDEOS + 2  # one row per video, the latest

    third = index_videos(sorted(map(str, videos.iterdir())), model, processor, index, num_workers=0, progress=False)
    assert (third.embedded, third.unchanged, third.shards) == (0, NUM_VIDEOS + 2, [])
    retried = index_videos([str(videos / "broken.mp4")], model, processor, index, retry_failed=True, progress=False)
    assert len(retried.failed) == 1


def test_a_file_name_that_is_not_utf8_is_one_bad_row(built, library, model_folder, tmp_path, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("v00.mp4", "v01.mp4", os.fsdecode(b"bad\xff.mp4")):
        shutil.copy(library / "v00.mp4", videos / name)
    argv = ["index", str(videos), "--model", str(model_folder), "--out", str(tmp_path / "index"), "--workers", "0"]
    argv += ["--num-frames", str(FRAMES), "--num-clips", str(CLIPS)]
    assert cli.main(argv) == arguments.EXIT_PARTIAL
    assert "embedded 2 videos" in capsys.readouterr().out
    rows = {row["video"]: row for row in VideoIndex.open(tmp_path / "index").read().to_pylist()}
    assert sorted(rows) == sorted([str(videos / "bad\\xff.mp4"), str(videos / "v00.mp4"), str(videos / "v01.mp4")])
    assert "not valid UTF-8" in rows[str(videos / "bad\\xff.mp4")]["error"]
    assert cli.main(argv) == arguments.EXIT_OK  # a re-run finds all three recorded
    assert "embedded 0 videos (0.00/s), 0 unreadable (recorded), 3 unchanged" in capsys.readouterr().out


def test_two_runs_creating_one_index_agree_on_its_model(built, tmp_path):
    """The second creator waits for the first's index.json and then refuses, instead of overwriting it."""
    from ovmlv.modeling_ovmlv.file_locks import FileLock
    from ovmlv.video_library.index_store import INFO_NAME, IndexInfo

    first_info = VideoIndex.open(built).info
    second_info = replace(first_info, embedding_fingerprint="another model")
    root = tmp_path / "index"
    first = FileLock(root / INFO_NAME)
    first.acquire()  # the first run is creating the index
    outcome = []

    def second_run():
        try:
            VideoIndex.open_or_create(root, second_info)
            outcome.append("created")
        except VideoIndexError as err:
            outcome.append(str(err))

    thread = threading.Thread(target=second_run)
    thread.start()
    thread.join(0.5)
    (root / INFO_NAME).write_text(json.dumps(asdict(first_info)))
    first.release()
    thread.join(30)
    assert len(outcome) == 1 and "was made with another embedding_fingerprint" in outcome[0]
    assert IndexInfo(**json.loads((root / INFO_NAME).read_text())) == first_info


def test_a_damaged_shard_is_reported_by_name(built, tmp_path, capsys):
    root = tmp_path / "index"
    shutil.copytree(built, root)
    victim = VideoIndex.open(root).shard_paths()[2]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit in the middle of the embeddings
    victim.write_bytes(bytes(data))
    with pytest.raises(CorruptShardError, match=victim.name):
        VideoIndex.open(root).read()
    assert cli.main(["tag", str(root), "--out", str(tmp_path / "tags.jsonl")]) == arguments.EXIT_ERROR
    assert victim.name in capsys.readouterr().err and not (tmp_path / "tags.jsonl").exists()

    victim.write_bytes(bytes(data[: len(data) // 3]))  # truncated, as by a full disk
    with pytest.raises(CorruptShardError, match=f"{victim.name}.*Delete it"):
        VideoIndex.open(root).read()


def test_another_model_cannot_grow_or_tag_the_index(built, towers, processor, library, tmp_path, capsys):
    other = OvmlvModel.from_towers(clip=towers.clip, label_encoder="class_name", temporal_layers=1)
    other.save_pretrained(tmp_path / "other")
    processor.save_pretrained(tmp_path / "other")
    argv = ["index", str(library), "--model", str(tmp_path / "other"), "--out", str(built)]
    assert cli.main([*argv, "--num-frames", str(FRAMES), "--num-clips", str(CLIPS)]) == arguments.EXIT_ERROR
    assert "was made with another embedding_fingerprint" in capsys.readouterr().err
    assert cli.main(["tag", str(built), "--model", str(tmp_path / "other"), "--out", str(tmp_path / "t.jsonl")]) == 1
    assert "embeds videos differently" in capsys.readouterr().err
    with pytest.raises(VideoIndexError, match="is not a video index"):
        VideoIndex.open(tmp_path)


def index_arguments(videos: Path, model: Path, out: Path) -> list[str]:
    """`ovmlv index` with shards of 2 videos, decoding in the indexing process."""
    options = f"--num-frames {FRAMES} --num-clips {CLIPS} --shard-size 2 --workers 0".split()
    return ["index", str(videos), "--model", str(model), "--out", str(out), *options]


def subprocess_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}


def test_killed_runs_resume_to_the_uninterrupted_index(model_folder, model, processor, tmp_path):
    """SIGKILL `ovmlv index` at random points (a random delay after a random number of new shards) three times, then
    let it finish: the index holds every video once, with the embedding an uninterrupted run gave it.

    The command runs in forked processes, which start in milliseconds (this one has imported torch already). Each
    child kills itself: a moment drawn in the parent's time let a child that the machine favoured finish first."""
    library = write_library(tmp_path / "videos", count=3 * NUM_VIDEOS)
    out, rng, codes = tmp_path / "killed.index", random.Random(16), []
    for _ in range(3):
        process = start_index_command(library, model_folder, out, die=(rng.randint(1, 3), rng.uniform(0.0, 0.02)))
        process.join(SUBPROCESS_TIMEOUT_S)
        codes.append(process.exitcode)
    assert codes == [-signal.SIGKILL] * 3 and 0 < count_shards(out) < 3 * NUM_VIDEOS // 2  # interrupted mid-way
    process = start_index_command(library, model_folder, out)
    process.join(SUBPROCESS_TIMEOUT_S)
    assert process.exitcode in (arguments.EXIT_OK, arguments.EXIT_PARTIAL)

    resumed = VideoIndex.open(out)
    reference = VideoIndex.open_or_create(tmp_path / "reference", resumed.info)
    videos = [str(path) for path in sorted(library.iterdir())]
    index_videos(videos, model, processor, reference, num_workers=0, progress=False)  # uninterrupted
    written = [row["video"] for path in resumed.shard_paths() for row in resumed.read_shard(path).to_pylist()]
    assert sorted(written) == videos  # none lost, none twice
    got, expected = by_video(*resumed.embedded()), by_video(*reference.embedded())
    assert got.keys() == expected.keys() and len(got) == 3 * NUM_VIDEOS
    assert_same_outputs(torch.stack([got[v] for v in expected]), torch.stack(list(expected.values())))
    failures = {row["video"]: row["error"] for row in resumed.read().to_pylist() if row["error"]}
    assert list(failures) == [str(library / "broken.mp4")]


def start_index_command(
    videos: Path, model: Path, out: Path, die: tuple[int, float] | None = None
) -> multiprocessing.Process:
    """`ovmlv index` (shards of 2 videos, decoding in-process) in a forked process; `die=(shards, seconds)` makes
    it SIGKILL itself that many seconds after writing that many shards, wherever its work then is."""
    argv = index_arguments(videos, model, out)
    process = multiprocessing.get_context("fork").Process(target=run_cli_quietly, args=(argv, die))
    process.start()
    return process


def run_cli_quietly(argv: list[str], die: tuple[int, float] | None) -> None:
    torch.set_num_threads(1)
    if die is not None:
        kill_self_after_shards(*die)
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull), contextlib.redirect_stderr(devnull):
        code = cli.main(argv)
    os._exit(code)  # no pytest teardown in the child


def kill_self_after_shards(shards: int, delay_s: float) -> None:
    """In a forked child: SIGKILL this process `delay_s` after its `shards`-th shard is written."""
    write_shard, written = VideoIndex.write_shard, 0

    def write_and_count(index: VideoIndex, rows, rank: int) -> Path:
        nonlocal written
        path, written = write_shard(index, rows, rank), written + 1
        if written == shards:
            threading.Timer(delay_s, os.kill, (os.getpid(), signal.SIGKILL)).start()
        return path

    VideoIndex.write_shard = write_and_count


def count_shards(index: Path) -> int:
    return len(list((index / "shards").glob("[!.]*.parquet")))


def test_two_processes_split_the_library_and_their_union_is_the_index(built, library, model_folder, tmp_path):
    """`accelerate launch` two processes on loopback: each indexes every other video, into its own shards."""
    out = tmp_path / "two.index"
    command = [
        str(Path(sys.executable).parent / "accelerate"),
        "launch",
        "--config_file",
        str(REPO / "training" / "configs" / "accelerate_cpu_2proc.yaml"),
        "--main_process_ip",
        "127.0.0.1",
        "--main_process_port",
        str(free_port()),
        "-m",
        "ovmlv",
        *index_arguments(library, model_folder, out),
    ]
    process = subprocess.Popen(
        command,
        env={**subprocess_env(), "ACCELERATE_USE_CPU": "true"},
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        log, _ = process.communicate(timeout=SUBPROCESS_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        for pid in [*descendants(process.pid), process.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        pytest.fail("two-process indexing did not finish")
    assert process.returncode == 0, log[-3000:]
    assert "process 1 of 2" in log and "process 2 of 2" in log

    index, listed = VideoIndex.open(out), list_videos([library])
    by_rank = {0: [], 1: []}
    for path in index.shard_paths():
        rank = int(path.name.split("-p")[1][:3])  # the writing process, in the shard's name
        by_rank[rank] += [row["video"] for row in index.read_shard(path).to_pylist()]
    assert by_rank == {0: listed[0::2], 1: listed[1::2]}
    got, expected = by_video(*index.embedded()), by_video(*VideoIndex.open(built).embedded())
    assert got.keys() == expected.keys()
    assert_same_outputs(torch.stack([got[v] for v in expected]), torch.stack(list(expected.values())))


def test_two_machines_index_as_one_process(built, library, model_folder, tmp_path):
    """Two `accelerate launch` on this host as machines 0 and 1 of 2 (one process each, shared storage): global
    ranks 0 and 1 split the library, and the index equals the one-process index, its index.json included."""
    out, port = tmp_path / "machines.index", str(free_port())
    commands = [
        [
            *(str(Path(sys.executable).parent / "accelerate"), "launch", "--multi_gpu", "--num_machines", "2"),
            *("--num_processes", "2", "--machine_rank", str(machine), "--main_process_ip", "127.0.0.1"),
            *("--main_process_port", port, "--mixed_precision", "no", "--dynamo_backend", "no"),
            *("-m", "ovmlv", *index_arguments(library, model_folder, out)),
        ]
        for machine in (0, 1)
    ]
    logs = [tmp_path / f"machine{machine}.log" for machine in (0, 1)]
    env = {**subprocess_env(), "ACCELERATE_USE_CPU": "true"}
    for code, log in zip(run_together(commands, env, logs, SUBPROCESS_TIMEOUT_S), logs, strict=True):
        assert code == 0, log.read_text()[-3000:]
    assert "process 1 of 2" in logs[0].read_text() and "process 2 of 2" in logs[1].read_text()
    index, reference = VideoIndex.open(out), VideoIndex.open(built)
    assert index.info == reference.info
    got, expected = by_video(*index.embedded()), by_video(*reference.embedded())
    assert got.keys() == expected.keys()
    assert_same_outputs(torch.stack([got[v] for v in expected]), torch.stack(list(expected.values())))
    failures = {row["video"]: row["error"] for row in index.read().to_pylist() if row["error"]}
    assert failures == {row["video"]: row["error"] for row in reference.read().to_pylist() if row["error"]}
