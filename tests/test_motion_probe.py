"""bench/motion_probe.py's first-order order readout: it reads frame order and nothing else."""

import torch

from ovmlv.modeling_ovmlv import OvmlvModel
from tests.bench_scripts import load_bench
from tests.process_state import torch_threads


def test_time_weighted_tokens_flip_sign_with_the_frames_and_vanish_on_a_still_video(towers) -> None:
    """r = sum_n (n - (N-1)/2) LN(patch_n): played backwards it is -r (every content term cancels), a video of one
    repeated frame gives 0, and there is one row of P*D (per patch) and of D (patch mean) per video."""
    bench = load_bench("motion_probe")
    model = OvmlvModel.from_towers(towers.clip, label_encoder="class_name", temporal_layers=2).eval()
    video = torch.randn(2, 6, 3, 32, 32)
    with torch_threads(1):
        per_patch, mean = bench.time_weighted_tokens(model, video)
        backwards, backwards_mean = bench.time_weighted_tokens(model, video.flip(1))
        still, _ = bench.time_weighted_tokens(model, video[:, :1].expand_as(video))
    patches = (32 // model.config.vision_config.patch_size) ** 2
    width = model.config.vision_config.hidden_size
    assert per_patch.shape == (2, patches * width) and mean.shape == (2, width)
    assert per_patch.abs().max() > 1e-2  # the frames differ: order shows
    torch.testing.assert_close(backwards, -per_patch, atol=1e-5, rtol=0)
    torch.testing.assert_close(backwards_mean, -mean, atol=1e-5, rtol=0)
    assert still.abs().max() < 1e-5
