"""Session fixtures: tiny random towers built once, offline, and loaded through the public front doors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ovmlv.organism.tiny_towers import TinyTowers, build_tiny_towers
from tests.process_state import reset_accelerate_state, torch_threads


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models are all op overhead: on a busy 2-core machine two threads make them many times slower."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="session")
def towers(tmp_path_factory) -> TinyTowers:
    return build_tiny_towers(tmp_path_factory.mktemp("towers"), seed=0)


@pytest.fixture(scope="session")
def siglip_towers(tmp_path_factory, towers):
    """`siglip_towers(variant)`: TinyTowers of a tiny SigLIP ("siglip") or SigLIP 2 ("siglip2") and the tiny T5,
    each built once a session, on first use."""
    from ovmlv.organism.tiny_siglip import build_tiny_siglip

    built: dict[str, TinyTowers] = {}

    def get(variant: str = "siglip") -> TinyTowers:
        if variant not in built:
            folder = build_tiny_siglip(tmp_path_factory.mktemp(variant) / variant, variant)
            built[variant] = TinyTowers(clip=folder, llm=towers.llm)
        return built[variant]

    return get


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


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic world for the training tests: 8 train, 4 val and 4 held-out videos of 32 px, 1 s at 4 fps, with
    the small world's vocabulary."""
    from ovmlv.organism.world import SMALL_WORLD, SyntheticConfig, generate_dataset

    out = tmp_path_factory.mktemp("synthetic")
    config = SyntheticConfig(num_train=8, num_val=4, num_heldout=4, size=32, fps=4, seconds=1.0, **SMALL_WORLD)
    generate_dataset(out, config)
    return out


@pytest.fixture
def fresh_accelerate_state():
    """Each in-process run builds its own Accelerator; Accelerate keeps process-wide state between them. Modules
    that train in-process use it on every test (`pytestmark`)."""
    yield
    reset_accelerate_state()
