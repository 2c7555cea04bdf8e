"""Kills during checkpointing. A process killed with SIGKILL leaves the disk as its writes left it (the page cache
is the disk to everyone else), so a copy of the output folder taken at a point of checkpointing is exactly what a
kill at that point leaves. One uninterrupted run is copied before and while writing every file of every checkpoint,
before and after publishing and pruning; resuming from each copy must pick the newest complete checkpoint and end
with the uninterrupted run's weights. One real SIGKILL in a subprocess checks that the copies tell the truth."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import accelerate.utils.other
import pytest
import torch
from safetensors.torch import load_file

from ovmlv.training import checkpointing, train
from ovmlv.training.checkpointing import CHECKPOINTS_DIR, CheckpointError, latest_checkpoint, load_checkpoint
from tests.numerics import assert_trained_alike
from tests.process_state import reset_accelerate_state
from tests.test_training import tiny_config

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")

REPO = Path(__file__).resolve().parents[1]
# 4 steps, a checkpoint every 2 of which only the newest is kept, one evaluation at the end.
RUN = ["--max_steps", "4", "--checkpoint_every", "2", "--keep_checkpoints", "1", "--eval.every_steps", "0"]
# The accelerate state files of one process, in the order `save_state` writes them (no sampler.bin: the seedable
# sampler's order depends on (seed, epoch) only).
STATE_FILES = ["model.safetensors", "optimizer.bin", "scheduler.bin", "random_states_0.pkl"]


def checkpoint_kill_points(step: str) -> list[str]:
    """Where a kill can land while `step` is checkpointed, in order: before each file and with it half written,
    around the checksum manifest and around the rename that publishes the checkpoint."""
    files = [f"{when} {step} {name}" for name in STATE_FILES for when in ("before", "while writing")]
    return files + [
        f"{when} {action} {step}" for action in ("checksums", "publishing") for when in ("before", "after")
    ]


# Every kill point of the run with the steps a resume from it has left to do: none of step 2 published -> all 4;
# step 2 published -> 2; step 4 published (then step 2 pruned) -> none, only the export.
KILL_POINTS = (
    [(point, 4) for point in checkpoint_kill_points("step_2")[:-1]]
    + [("after publishing step_2", 2)]
    + [(point, 2) for point in checkpoint_kill_points("step_4")[:-1]]
    + [("after publishing step_4", 0), ("before pruning step_2", 0), ("after pruning step_2", 0)]
)


class KillPoints:
    """Copies of `output_dir` as a kill at each point would leave it; `cut` halves the file being written."""

    def __init__(self, output_dir: Path, root: Path) -> None:
        self.output_dir, self.root = output_dir, root
        self.copies: dict[str, Path] = {}

    def take(self, label: str, cut: Path | None = None) -> None:
        copy = shutil.copytree(self.output_dir, self.root / f"{len(self.copies):02d}")
        if cut is not None:
            part = copy / cut.relative_to(self.output_dir)
            part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])
        self.copies[label] = copy

    def around_file_writes(self, write):
        """`write(obj, path)` (torch.save, safetensors' save_file) with a copy before it and one with it half done."""

        def wrapper(obj, path, *args, **kwargs):
            path = Path(path) if isinstance(path, str | os.PathLike) else None
            inside = path is not None and CHECKPOINTS_DIR in path.parts
            if inside:
                self.take(f"before {checkpoint_name(path)} {path.name}")
            result = write(obj, path or obj, *args, **kwargs) if path is None else write(obj, path, *args, **kwargs)
            if inside:
                self.take(f"while writing {checkpoint_name(path)} {path.name}", cut=path)
            return result

        return wrapper

    def around(self, function, action: str):
        """A checkpointing step (checksums, publishing, pruning) with a copy before and after it."""

        def wrapper(path, *args, **kwargs):
            self.take(f"before {action} {checkpoint_name(Path(path))}")
            result = function(path, *args, **kwargs)
            self.take(f"after {action} {checkpoint_name(Path(path))}")
            return result

        return wrapper


def checkpoint_name(path: Path) -> str:
    """`step_N` for anything inside a checkpoint, its staging folder or the folder itself."""
    folder = next(part for part in reversed(path.parts) if "step_" in part)
    return "step_" + folder.split("step_")[1].split(".")[0]


def final_weights(output_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(output_dir / "final" / "model.safetensors")


@pytest.fixture(scope="module")
def kill_points(tmp_path_factory, towers, synthetic) -> tuple[Path, KillPoints]:
    """The run's config and the copies of its output folder at every point of checkpointing."""
    root = tmp_path_factory.mktemp("kill_points")
    output_dir = root / "run"
    config = tiny_config(root / "run.yaml", towers, synthetic, output_dir)
    points = KillPoints(output_dir, root / "copies")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch, "save", points.around_file_writes(torch.save))
        patch.setattr(
            accelerate.utils.other, "safe_save_file", points.around_file_writes(accelerate.utils.other.safe_save_file)
        )
        for name, action in (
            ("write_checksums", "checksums"),
            ("publish_folder", "publishing"),
            ("remove_folder", "pruning"),
        ):
            if hasattr(checkpointing, name):  # a checkpointing step of today's code
                patch.setattr(checkpointing, name, points.around(getattr(checkpointing, name), action))
        train.main(["--config", str(config), *RUN])
    reset_accelerate_state()
    return config, points


def resume(config: Path, copy: Path, tmp_path: Path) -> Path:
    output_dir = shutil.copytree(copy, tmp_path / "resumed")
    train.main(["--config", str(config), *RUN, "--output_dir", str(output_dir), "--resume"])
    return output_dir


def test_every_kill_point_is_copied_and_resumes_from_the_newest_complete_checkpoint(kill_points):
    _, points = kill_points
    assert list(points.copies) == [point for point, _ in KILL_POINTS]  # every file, in the order written
    for point, steps_left in KILL_POINTS:
        found = latest_checkpoint(points.copies[point])
        assert (found.name if found else None) == {4: None, 2: "step_2", 0: "step_4"}[steps_left], point
    assert sorted(p.name for p in (points.output_dir / CHECKPOINTS_DIR).iterdir()) == ["step_4"]


@pytest.mark.parametrize("kill_point, steps_left", KILL_POINTS)
def test_a_kill_while_checkpointing_resumes_to_the_same_weights(kill_points, tmp_path, kill_point, steps_left):
    config, points = kill_points
    resumed = resume(config, points.copies[kill_point], tmp_path)
    assert_trained_alike(final_weights(resumed), final_weights(points.output_dir))
    summary = json.loads((resumed / "train_summary.json").read_text())
    assert summary["processes"][0]["steps_this_run"] == steps_left


SIGKILL_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path

    import torch

    from ovmlv.training import train

    save = torch.save

    def save_or_die(obj, path, *args, **kwargs):
        if Path(path).name == "random_states_0.pkl" and "step_2" in str(path):
            os.kill(os.getpid(), signal.SIGKILL)  # step 2's weights, optimizer and scheduler written, not its RNG
        return save(obj, path, *args, **kwargs)

    torch.save = save_or_die
    train.main(sys.argv[1:])
    """
)


def test_a_real_sigkill_resumes_to_the_same_weights(kill_points, tmp_path):
    config, points = kill_points
    output_dir = tmp_path / "killed"
    killed = subprocess.run(
        [sys.executable, "-c", SIGKILL_SCRIPT, "--config", str(config), *RUN, "--output_dir", str(output_dir)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert latest_checkpoint(output_dir) is None  # step 2 was never published: start again, not from half of it
    summary = train.main(["--config", str(config), *RUN, "--output_dir", str(output_dir), "--resume"])
    assert_trained_alike(final_weights(output_dir), final_weights(points.output_dir))
    assert summary["processes"][0]["steps_this_run"] == 4


def test_rng_states_that_cannot_be_restored_are_an_error(kill_points, tmp_path, monkeypatch):
    """Accelerate only logs "Could not load random states" at INFO and goes on: the run would draw other negatives."""
    config, points = kill_points
    output_dir = shutil.copytree(points.copies["before publishing step_4"], tmp_path / "run")

    def refuse(state):
        raise ValueError("a state from another Python")

    monkeypatch.setattr(random, "setstate", refuse)
    with pytest.raises(CheckpointError, match="random_states_0.pkl were not restored"):
        train.main(["--config", str(config), *RUN, "--output_dir", str(output_dir), "--resume"])


def test_a_checkpoint_of_another_process_count_is_not_resumed(kill_points, tmp_path, caplog):
    _, points = kill_points
    step_4 = shutil.copytree(points.output_dir / CHECKPOINTS_DIR / "step_4", tmp_path / CHECKPOINTS_DIR / "step_4")
    manifest = json.loads((step_4 / "checksums.json").read_text())
    shutil.copy(step_4 / "random_states_0.pkl", step_4 / "random_states_1.pkl")  # as a run of 2 processes writes
    manifest["files"]["random_states_1.pkl"] = manifest["files"]["random_states_0.pkl"]
    (step_4 / "checksums.json").write_text(json.dumps(manifest))
    with caplog.at_level("WARNING"):
        assert latest_checkpoint(tmp_path, num_processes=1) is None
    assert "holds the RNG states of 2 process(es), this run has 1" in caplog.text
    accelerator = type("OneProcess", (), {"num_processes": 1})()
    with pytest.raises(CheckpointError, match="Cannot resume exactly from"):
        load_checkpoint(accelerator, None, step_4)
    assert latest_checkpoint(tmp_path, num_processes=2) == step_4
