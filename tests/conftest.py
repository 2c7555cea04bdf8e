"""Session fixtures: tiny random towers built once, offline, and loaded through the public front doors."""

from __future__ import annotations

import pytest
import torch

from ovmlv.training.tiny_towers import TinyTowers, build_tiny_towers
from tests.process_state import torch_threads


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models are all op overhead: on a busy 2-core machine two threads make them many times slower."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def towers(tmp_path_factory) -> TinyTowers:
    return build_tiny_towers(tmp_path_factory.mktemp("towers"), seed=0)


@pytest.fixture(scope="session")
def processor(towers):
    from ovmlv.processing import OvmlvProcessor

    return OvmlvProcessor.from_towers(clip=towers.clip, llm=towers.llm)


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def video_path(tmp_path_factory):
    """A 1 s, 64x48 H.264 clip."""
    from tests.video_files import write_video

    return write_video(tmp_path_factory.mktemp("videos") / "clip.mp4", num_frames=24, fps=24)
