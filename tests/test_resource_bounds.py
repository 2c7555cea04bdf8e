"""Sizes a command line, a config.json or a processor_config.json asks for are bounded, and checked in one line
before any work: --num-frames 100000 would decode for minutes into gigabytes, projection_dim 1e12 allocate terabytes."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from ovmlv.arguments import EXIT_ERROR, EXIT_USAGE
from ovmlv.cli import main
from ovmlv.processing.processing_ovmlv import VIDEO_COUNT_LIMITS
from tests.hub_model_folder import VOCABULARY, save_trained_folder


@pytest.fixture(scope="module")
def folder(towers, processor, tmp_path_factory) -> Path:
    return save_trained_folder(tmp_path_factory.mktemp("model"), towers, processor, VOCABULARY)


@pytest.mark.parametrize("flag, limit", [("--num-frames", "num_frames"), ("--num-clips", "num_clips")])
def test_video_counts_on_the_command_line_are_bounded(capsys, folder, video_path, flag, limit):
    start = time.perf_counter()
    with pytest.raises(SystemExit) as exit_info:
        main(["classify", str(video_path), "--model", str(folder), flag, "100000"])
    assert exit_info.value.code == EXIT_USAGE and time.perf_counter() - start < 5
    maximum = VIDEO_COUNT_LIMITS[limit]
    assert f"{flag}: must be from 1 to {maximum}, got 100000" in capsys.readouterr().err
    assert main(["classify", str(video_path), "--model", str(folder), flag, str(maximum), "--labels", "dog"]) == 0


@pytest.mark.parametrize(
    "file, field, value, message",
    [
        ("config.json", "projection_dim", 1e12, "OvmlvConfig.projection_dim must be a whole number from 1 to 16384"),
        (
            "config.json",
            "temporal_config.temporal_positions",
            1e30,
            "temporal_config.temporal_positions must be a whole",
        ),
        ("config.json", "vision_config.image_size", 200000, "vision_config.image_size must be a whole number from 1"),
        ("processor_config.json", "num_frames", 10**9, "OvmlvProcessor.num_frames must be a whole number from 1 to"),
        ("processor_config.json", "image_size", 200000, "OvmlvProcessor.image_size must be a whole number from 1"),
    ],
)
def test_sizes_in_saved_configs_are_bounded(capsys, folder, tmp_path, video_path, file, field, value, message):
    copy = shutil.copytree(folder, tmp_path / "model")
    saved = json.loads((copy / file).read_text())
    section, _, key = field.rpartition(".")
    (saved[section] if section else saved)[key] = value
    (copy / file).write_text(json.dumps(saved))
    start = time.perf_counter()
    assert main(["classify", str(video_path), "--model", str(copy), "--labels", "dog"]) == EXIT_ERROR
    assert time.perf_counter() - start < 10
    assert message in capsys.readouterr().err.splitlines()[-1]
