"""Video encoder benchmark: the temporal branch's cost against frozen CLIP and X-CLIP, per FLOP.

CLIP B/32 sizes with random weights, 8 frames of 224x224, fp32, batch 1 and 4 (--quick: batch 1, 2 rounds):
- "CLIP frames": our encoder with T = 0, frozen CLIP on every frame + mean pooling;
- "CLIP + branch": our encoder with the paper's T = 4 parallel branch;
- "CLIPVisionModel": transformers' CLIP image tower + projection on the 8 frames;
- "X-CLIP": transformers' `XCLIPModel.get_video_features`, what users pick today for zero-shot video;
- "train step (+ regulariser)": forward + backward of `OvmlvModel` with the loss, without / with the weight
  regulariser (4B labels per batch, as in the paper's batches);
- "peak matmul": one 2048^3 fp32 matmul, the machine's rate for the "% peak" column.
FLOPs are counted with `torch.utils.flop_counter.FlopCounterMode` in the warm-up pass, plus a formula for the CPU
flash-attention kernel it does not know (so attention counts everywhere); the FLOP ratio is checked against an
analytic count. Every function runs once per round, interleaved, and the best round of each is kept, so a busy
machine slows all of them alike. Wall time with the default threads is what the targets are about; a second table
repeats batch 1 on one thread timed by that thread's CPU time, which other processes on a shared machine move
less (with two threads every parallel op waits until both are scheduled: milliseconds per op on a busy machine).

    python bench/video_encoder.py [--quick] [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils import flop_counter
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection, XCLIPConfig, XCLIPModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from ovmlv.modeling_ovmlv import OvmlvConfig, OvmlvModel  # noqa: E402

FRAMES = 8
TEMPORAL_LAYERS = 4
PEAK_SIZE = 2048
REG_WEIGHT = 0.5


@flop_counter.register_flop_formula(torch.ops.aten._scaled_dot_product_flash_attention_for_cpu)
def _cpu_flash_attention_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return flop_counter.sdpa_flop_count(query_shape, key_shape, value_shape)


@flop_counter.register_flop_formula(torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward)
def _cpu_flash_attention_backward_flops(grad_out_shape, query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    return flop_counter.sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def analytic_flops(
    vision: CLIPVisionConfig, batch: int, frames: int, temporal_layers: int, pools_branch_frames: bool = False
) -> tuple[float, float]:
    """Matmul + attention FLOPs of (CLIP on every frame, what the temporal branch adds) for one forward pass.

    The branch adds its blocks and fusions; pooling its own frames (`temporal_pooling="branch_frames"`) also saves
    CLIP's last layer, whose output is then unused (the paper's pooling reads it)."""
    width, hidden, patches = (
        vision.hidden_size,
        vision.intermediate_size,
        (vision.image_size // vision.patch_size) ** 2,
    )
    tokens = patches + 1
    layer = 2 * tokens * (4 * width**2 + 2 * width * hidden) + 4 * tokens**2 * width  # per frame
    clip = frames * (2 * patches * 3 * vision.patch_size**2 * width + vision.num_hidden_layers * layer)
    block = (
        2 * frames * patches * 4 * width**2
        + 4 * patches * frames**2 * width  # temporal attention
        + frames * layer  # spatial attention + MLP on the frames
        + 2 * (4 * width**2 + 2 * width * hidden)
        + 4 * frames * (tokens + 1) * width  # the TMP token
    )
    fusions = (temporal_layers - 1) * 2 * frames * tokens * width**2 if temporal_layers else 0
    skipped = frames * layer if temporal_layers and pools_branch_frames else 0
    return batch * clip, batch * (temporal_layers * block + fusions - skipped)


def measure(
    fns: dict[str, Callable[[], object]], rounds: int, clock: Callable[[], float] = time.perf_counter
) -> tuple[dict[str, int], dict[str, float]]:
    """FLOPs of each function (counted in its warm-up pass) and its best time over interleaved rounds."""
    flops = {}
    for name, fn in fns.items():
        with flop_counter.FlopCounterMode(display=False) as counter:
            fn()
        flops[name] = counter.get_total_flops()
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            start = clock()
            fn()
            best[name] = min(best[name], clock() - start)
    return flops, best


def report(title: str, batch: int, flops: dict[str, int], times: dict[str, float]) -> dict[str, float]:
    """Print one table; returns each row's share of the peak matmul rate."""
    peak = flops["peak matmul"] / times["peak matmul"]
    print(f"\n{title}, batch {batch}\n{'':<26}{'ms':>10}{'GFLOP':>9}{'GFLOP/s':>9}{'% peak':>8}")
    shares = {}
    for name in times:
        rate = flops[name] / times[name]
        shares[name] = 100 * rate / peak
        print(f"{name:<26}{times[name] * 1e3:>10.1f}{flops[name] / 1e9:>9.1f}{rate / 1e9:>9.1f}{shares[name]:>7.1f}%")
    return shares


def ratios(batch: int, flops: dict[str, int], times: dict[str, float]) -> str:
    clip_flops, branch_flops = analytic_flops(vision_config(), batch, FRAMES, TEMPORAL_LAYERS)
    return (
        f"(CLIP + branch) / CLIP frames: time {times['CLIP + branch'] / times['CLIP frames']:.3f}, "
        f"FLOPs {flops['CLIP + branch'] / flops['CLIP frames']:.3f} (analytic {(clip_flops + branch_flops) / clip_flops:.3f}); "
        f"train step + regulariser / train step: time {times['train step + regulariser'] / times['train step']:.3f}, "
        f"FLOPs {flops['train step + regulariser'] / flops['train step']:.3f}"
    )


def vision_config() -> CLIPVisionConfig:
    return CLIPVisionConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                            image_size=224, patch_size=32, projection_dim=512)  # fmt: skip


def ovmlv_model(temporal_layers: int) -> OvmlvModel:
    config = OvmlvConfig(
        vision_config=vision_config().to_dict(),
        projection_dim=512,
        label_encoder="class_name",  # label embeddings are passed in; the text side is not timed
        temporal_layers=temporal_layers,
    )
    model = OvmlvModel(config)
    if temporal_layers:  # CLIP-initialised branch, as `from_towers` makes it
        encoder = model.video_encoder
        clip_weights = encoder.temporal_branch.clip_weights(encoder.branch_layers, persistent_reference=False)
        encoder.temporal_branch.load_state_dict(clip_weights, strict=False)
        encoder.refresh_clip_reference()
    return model


def workloads(batch: int, models: dict[str, torch.nn.Module]) -> dict[str, Callable[[], object]]:
    """The timed functions for one batch size: inference without gradient, training steps with it."""
    pixels = torch.randn(batch, FRAMES, 3, 224, 224)
    label_embeds = F.normalize(torch.randn(4 * batch, 512), dim=-1)  # the paper's batches: 4B labels
    labels = (torch.rand(batch, 4 * batch) < 0.25).long()
    trained, square = models["trained"], torch.randn(PEAK_SIZE, PEAK_SIZE)

    def train_step(reg_weight: float) -> Callable[[], None]:
        def step() -> None:
            trained.config.regulariser_config.weight_interpolation_loss_weight = reg_weight
            trained(pixel_values_videos=pixels, label_embeds=label_embeds, labels=labels).loss.backward()
            trained.zero_grad(set_to_none=True)

        return step

    inference = {
        "CLIP frames": lambda: models["frames"].get_video_features(pixels),
        "CLIP + branch": lambda: models["ours"].get_video_features(pixels),
        "CLIPVisionModel": lambda: models["clip"](pixel_values=pixels.flatten(0, 1)).image_embeds,
        "X-CLIP": lambda: models["xclip"].get_video_features(pixel_values=pixels).pooler_output,
    }
    return {
        **{name: torch.no_grad()(fn) for name, fn in inference.items()},
        "train step": train_step(0.0),
        "train step + regulariser": train_step(REG_WEIGHT),
        "peak matmul": lambda: square @ square,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="batch 1 only, 2 rounds")
    parser.add_argument("--repeats", type=int, help="timed rounds (default 3, --quick 2)")
    args = parser.parse_args()
    rounds = args.repeats or (2 if args.quick else 3)
    torch.manual_seed(0)
    models = {
        "frames": ovmlv_model(0).eval(),
        "ours": ovmlv_model(TEMPORAL_LAYERS).eval(),
        "trained": ovmlv_model(TEMPORAL_LAYERS).train(),
        "clip": CLIPVisionModelWithProjection(vision_config()).eval(),
        "xclip": XCLIPModel(XCLIPConfig(vision_config={"num_frames": FRAMES}, projection_dim=512)).eval(),
    }
    threads = torch.get_num_threads()
    print(
        f"torch {torch.__version__}, {threads} threads, load average {os.getloadavg()[0]:.1f}; CLIP B/32 sizes, "
        f"random weights, {FRAMES} frames 224x224, fp32, best of {rounds} interleaved rounds"
    )
    summary = []
    for batch in (1,) if args.quick else (1, 4):
        flops, times = measure(workloads(batch, models), rounds)
        report(f"wall time, {threads} threads", batch, flops, times)
        summary.append(f"batch {batch}, wall, {threads} threads: {ratios(batch, flops, times)}")
    torch.set_num_threads(1)
    flops, times = measure(workloads(1, models), rounds, clock=time.thread_time)
    report("CPU time, 1 thread", 1, flops, times)
    summary.append(f"batch 1, CPU time, 1 thread: {ratios(1, flops, times)}")
    torch.set_num_threads(threads)
    print(f"\nload average {os.getloadavg()[0]:.1f}\n" + "\n".join(summary))


if __name__ == "__main__":
    main()
