"""Training-step benchmark: seconds per step and peak memory, tiny and real sizes, with and without gradient
checkpointing.

Sizes (random weights, towers built from configs in code, fp32, the method's defaults otherwise: LLM-prompted label
encoder with N=4 prefixes and K*L=25 decoding steps, 4-block parallel temporal branch with its weight regulariser):
- tiny: the towers of `organism/tiny_towers.py` (CLIP width 32, 32 px, T5 d_model 32), 16 videos x 8 frames:
  what `training/configs/synthetic_tiny.yaml` trains in the demo.
- real: CLIP ViT-B/32 (224 px; vocab 49408) + a flan-t5-base-sized T5 (d_model 768, 12+12 layers; vocab 32128),
  2 videos x 8 frames. The tiny tokenizers make the label ids; only the embedding rows they hit are read.
A step is what `training/train.py` does per micro-batch: the P_B ∪ N_B label batch (4B classes), tokenisation, the
forward pass with the weighted BCE, backward, gradient clipping, an AdamW step on the recipe's parameter groups.
Each configuration runs in a process of its own, so its peak memory is its own: on CPU the peak resident set
(ru_maxrss) and its growth over the built model; on GPU `torch.cuda.max_memory_allocated`.

    python bench/train_step.py [--sizes tiny real] [--steps 3] [--threads N] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from transformers import CLIPTokenizer, T5Tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from ovmlv.modeling_ovmlv import OvmlvConfig, OvmlvModel  # noqa: E402
from ovmlv.organism.tiny_towers import TOKENIZERS_DIR  # noqa: E402
from ovmlv.processing import OvmlvProcessor  # noqa: E402
from ovmlv.training.batching import Vocabulary, negative_label_rng, sample_label_batch  # noqa: E402
from ovmlv.training.optimization import parameter_groups  # noqa: E402

FRAMES = 8
CLASSES_PER_VIDEO = 4
LABELS_PER_VIDEO = 3
# 144 labels the tiny tokenizers know: enough for the 4B = 64 classes of a tiny batch.
VOCABULARY = Vocabulary(
    [
        f"{colour} {shape} {motion}"
        for colour in ("red", "green", "blue", "yellow", "purple", "orange")
        for shape in ("circle", "square", "triangle", "star", "cross", "diamond")
        for motion in ("moving", "rotating", "growing", "bouncing")
    ]
)
SIZES = {
    "tiny": dict(
        batch=16,
        image_size=32,
        text=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4),
        vision=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=4, num_attention_heads=4, patch_size=8),
        llm=dict(d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4),
        projection_dim=16,
    ),
    "real": dict(
        batch=2,
        image_size=224,
        text=dict(
            vocab_size=49408, hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8
        ),
        vision=dict(
            hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, patch_size=32
        ),
        llm=dict(
            vocab_size=32128,
            d_model=768,
            d_kv=64,
            d_ff=3072,
            num_layers=12,
            num_decoder_layers=12,
            num_heads=12,
            feed_forward_proj="gated-gelu",
            tie_word_embeddings=False,
        ),
        projection_dim=512,
    ),
}


def build(size: str) -> tuple[OvmlvModel, OvmlvProcessor, int]:
    """A randomly initialised model of `size` with the tiny tokenizers' special ids, its processor, its batch."""
    spec = SIZES[size]
    clip_tokenizer = CLIPTokenizer.from_pretrained(TOKENIZERS_DIR / "clip")
    t5_tokenizer = T5Tokenizer.from_pretrained(TOKENIZERS_DIR / "t5")
    specials = dict(
        bos_token_id=clip_tokenizer.bos_token_id,
        eos_token_id=clip_tokenizer.eos_token_id,
        pad_token_id=clip_tokenizer.pad_token_id,
    )
    config = OvmlvConfig(
        text_config={"vocab_size": len(clip_tokenizer), "max_position_embeddings": 77, **spec["text"], **specials},
        vision_config={"image_size": spec["image_size"], **spec["vision"]},
        llm_config={
            "vocab_size": len(t5_tokenizer),
            "pad_token_id": t5_tokenizer.pad_token_id,
            "eos_token_id": t5_tokenizer.eos_token_id,
            "decoder_start_token_id": t5_tokenizer.pad_token_id,
            **spec["llm"],
        },
        projection_dim=spec["projection_dim"],
    )
    processor = OvmlvProcessor(tokenizer=clip_tokenizer, llm_tokenizer=t5_tokenizer, image_size=spec["image_size"])
    return OvmlvModel(config), processor, spec["batch"]


def peak_memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def measure(size: str, checkpointing: bool, steps: int) -> dict:
    """Median seconds per training step (after one warm-up step) and peak memory, in this process."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, processor, batch = build(size)
    model.to(device).train()
    if checkpointing:
        model.activation_checkpointing_enable()
    optimizer = torch.optim.AdamW(parameter_groups(model, 1e-7, 0.0), lr=1e-5)
    model_memory = peak_memory_gib(device)
    pixels = torch.randn(batch, FRAMES, 3, processor.image_size, processor.image_size, device=device)
    positives = [
        [VOCABULARY.labels[(LABELS_PER_VIDEO * b + i) % len(VOCABULARY)] for i in range(LABELS_PER_VIDEO)]
        for b in range(batch)
    ]
    times = []
    for step in range(steps + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        label_batch = sample_label_batch(positives, VOCABULARY, CLASSES_PER_VIDEO, negative_label_rng(0, 0, step))
        inputs = {name: tensor.to(device) for name, tensor in processor.label_inputs(label_batch.labels).items()}
        loss = model(pixel_values_videos=pixels, labels=label_batch.targets.to(device), **inputs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optimizer.step()
        optimizer.zero_grad()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    peak = peak_memory_gib(device)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "size": size,
        "gradient_checkpointing": checkpointing,
        "batch": batch,
        "classes": CLASSES_PER_VIDEO * batch,
        "seconds_per_step": statistics.median(times[1:]),
        "peak_memory_gib": peak,
        "memory_over_model_gib": peak - model_memory,
        "parameters_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "trainable_m": trainable / 1e6,
        "device": str(device),
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=["tiny", "real"])
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up step")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--one", nargs=2, metavar=("SIZE", "CHECKPOINTING"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.one:  # a child process: one configuration, one JSON line
        size, checkpointing = args.one
        print(json.dumps(measure(size, checkpointing == "1", args.steps)))
        return

    results = []
    for size in args.sizes:
        for checkpointing in ("0", "1"):
            command = [sys.executable, __file__, "--one", size, checkpointing, "--steps", str(args.steps)]
            command += ["--threads", str(args.threads)] if args.threads else []
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            results.append(json.loads(output.strip().splitlines()[-1]))
            row = results[-1]
            print(
                f"{row['size']:>5}  checkpointing={'on ' if row['gradient_checkpointing'] else 'off'}  "
                f"batch {row['batch']:>2} ({row['classes']} classes)  {row['seconds_per_step']:7.3f} s/step  "
                f"peak {row['peak_memory_gib']:6.2f} GiB (+{row['memory_over_model_gib']:.2f} over the model)  "
                f"params {row['parameters_m']:.1f}M, trainable {row['trainable_m']:.2f}M  [{row['device']}, "
                f"{row['threads']} threads]",
                flush=True,
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
