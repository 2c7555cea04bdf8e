"""Fingerprints: whether a video file changed since it was indexed, and whether two models embed videos alike."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch

SAMPLE_BYTES = 64 * 1024  # bytes read at the start, middle and end of a file
# Fields of OvmlvConfig.temporal_config that change a video's embedding beside the weights (shapes are in the weights).
VIDEO_CONFIG_FIELDS = ("temporal_layers", "temporal_mode", "temporal_pooling", "temporal_positions")
# Fields of the vision config (CLIP's or SigLIP's) that change the computation without showing in the weights' shapes.
VISION_CONFIG_FIELDS = ("num_attention_heads", "hidden_act", "layer_norm_eps", "image_size", "patch_size")
# Fields of the processor that change which pixels reach the model.
FRAME_FIELDS = ("image_size", "image_mean", "image_std", "do_center_crop")


def file_fingerprint(path: str | os.PathLike) -> str:
    """sha256 of a file's size and three samples of `SAMPLE_BYTES` (start, middle, end), in hex.

    Reading a whole library to hash it would cost as much as decoding it; re-encoding, trimming or replacing a video
    changes its size or container header, which the samples cover. A file copied or touched keeps its fingerprint,
    so its embedding is kept.
    """
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as file:
        for offset in sorted({0, max(0, size // 2 - SAMPLE_BYTES // 2), max(0, size - SAMPLE_BYTES)}):
            file.seek(offset)
            digest.update(file.read(SAMPLE_BYTES))
    return digest.hexdigest()


def embedding_fingerprint(model: torch.nn.Module, processor, num_frames: int, num_clips: int) -> str:
    """sha256 of everything that decides a video's embedding: the video encoder's weights, the config fields and
    frame preprocessing it depends on, and the frames sampled. Two models with the same fingerprint embed every
    video alike, so an index made by one can be tagged with the other (a retrained label encoder keeps it)."""
    config = model.config
    settings = {
        **{f"vision_config.{field}": getattr(config.vision_config, field) for field in VISION_CONFIG_FIELDS},
        **{field: getattr(config.temporal_config, field) for field in VIDEO_CONFIG_FIELDS},
        **{field: getattr(processor, field) for field in FRAME_FIELDS},
        "num_frames": num_frames,
        "num_clips": num_clips,
    }
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for name, tensor in sorted(model.video_encoder.state_dict().items()):
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()
