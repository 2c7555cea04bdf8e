"""Contrastive pretraining of the organism's tiny CLIP on captioned stills of the synthetic world.

The towers are transformers' `CLIPModel` in the legacy text layout of openai/clip-vit-base-patch32 (text config
`bos/pad/eos_token_id` 0/1/2, under which CLIP pools at `argmax(input_ids)`: the end token has the largest id). The loss is CLIP's
symmetric cross-entropy over the batch's image-caption similarities, with the exact targets of `stills`: a caption
true of several stills of the batch spreads its target over them (and an image over its true captions), so partial
captions ("a star") teach bare class names without false negatives.

Why these choices (measured, docs/organism.md): shape is what a small ViT learns last. Groups of stills that differ
only in one object's shape make shape the only clue in most of every batch, and 16-pixel patches at the videos' own
64 px learn shape faster per second than 8-pixel ones of the same cost.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

from ovmlv.processing.frame_transforms import frames_to_pixel_values
from ovmlv.training.metrics import aupr

from ..tiny_towers import LEGACY_CLIP_TEXT_SPECIAL_IDS
from ..world import SyntheticConfig, sample_objects
from .schedule import warmup_cosine
from .stills import Still, caption_targets, render_stills, sample_batch


@dataclass
class ClipPretrainingConfig:
    """The tiny CLIP's size and its pretraining recipe."""

    image_size: int = 64  # the videos' own size: no resize
    patch_size: int = 16  # 4 x 4 patches: learns shape faster per second than 8 x 8 patches at width 64
    vision_width: int = 128
    vision_layers: int = 4
    text_width: int = 64
    text_layers: int = 3
    attention_heads: int = 4
    projection_dim: int = 64
    batch_size: int = 128
    group_size: int = 8  # stills per group that differ in one thing (stills.sample_batch)
    group_weights: tuple[float, ...] = (0.6, 0.1, 0.1, 0.05, 0.15)  # shape, colour, binding, scene, random groups
    single_object_share: float = 0.8  # groups grown from a still of one object
    steps: int = 8000
    lr: float = 1e-3
    warmup_steps: int = 200
    weight_decay: float = 0.05
    eval_every: int = 500
    eval_videos: int = 128
    eval_frames: int = 8


def build_clip(tokenizer: CLIPTokenizer, config: ClipPretrainingConfig) -> CLIPModel:
    """A randomly initialised CLIPModel of `config`'s size for `tokenizer` (legacy pooling, see module docstring)."""
    if tokenizer.eos_token_id != len(tokenizer) - 1:
        raise ValueError(
            f"legacy CLIP pools at argmax(input_ids): the end token must have the largest id, not {tokenizer.eos_token_id}"
        )
    clip_config = CLIPConfig(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=config.text_width,
            intermediate_size=4 * config.text_width,
            num_hidden_layers=config.text_layers,
            num_attention_heads=config.attention_heads,
            max_position_embeddings=tokenizer.model_max_length,
            **LEGACY_CLIP_TEXT_SPECIAL_IDS,
        ),
        vision_config=dict(
            hidden_size=config.vision_width,
            intermediate_size=4 * config.vision_width,
            num_hidden_layers=config.vision_layers,
            num_attention_heads=config.attention_heads,
            image_size=config.image_size,
            patch_size=config.patch_size,
        ),
        projection_dim=config.projection_dim,
    )
    return CLIPModel(clip_config)


def pixel_values(stills: list[Still], world: SyntheticConfig, image_size: int) -> torch.Tensor:
    """(N, 3, S, S) CLIP inputs of `stills`, through the processor's own frame transform."""
    return frames_to_pixel_values(render_stills(stills, world.size), image_size)


def contrastive_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """CLIP's symmetric cross-entropy, each row's (column's) target spread over its true captions (stills)."""
    per_image = -(targets / targets.sum(1, keepdim=True) * logits.log_softmax(1)).sum(1).mean()
    per_caption = -(targets / targets.sum(0, keepdim=True) * logits.log_softmax(0)).sum(0).mean()
    return (per_image + per_caption) / 2


def eval_videos(
    world: SyntheticConfig, count: int, frames: int, image_size: int, seed: int
) -> tuple[list, torch.Tensor]:
    """`count` world videos of any object kinds, seeded apart from training, and (count, frames, 3, S, S) pixels of
    `frames` evenly spaced frames each, as decoded video shows them."""
    kinds = world.object_kinds
    specs = [sample_objects(world, np.random.default_rng([seed, 2, i]), kinds, kinds) for i in range(count)]
    steps = np.linspace(0, world.num_frames - 1, frames).round().astype(int)
    stills = [Still(spec.at(int(step))) for spec in specs for step in steps]
    return specs, pixel_values(stills, world, image_size).unflatten(0, (count, frames))


@torch.no_grad()
def video_zero_shot(
    model: CLIPModel, tokenizer: CLIPTokenizer, specs: list, pixels: torch.Tensor, world: SyntheticConfig
) -> dict[str, float]:
    """Macro AUPR of bare class names on videos (frame-mean image features), per label kind of the world: shapes,
    colour-shape pairs, scenes; what the organism's CLIP targets measure, on rendered rather than encoded videos."""
    model.eval()
    features = torch.cat(
        [model.get_image_features(pixel_values=chunk).pooler_output for chunk in pixels.flatten(0, 1).split(256)]
    )
    video = F.normalize(features.unflatten(0, pixels.shape[:2]).mean(1), dim=-1)
    report = {}
    for group, labels in {"shape": list(world.shapes), "pair": world.entities, "scene": list(world.scenes)}.items():
        text = F.normalize(
            model.get_text_features(**tokenizer(labels, padding=True, return_tensors="pt")).pooler_output, dim=-1
        )
        truth = np.array([[label in spec.labels(world) for label in labels] for spec in specs])
        report[group] = round(aupr(truth, (video @ text.T).numpy()), 4)
    model.train()
    return report


def pretrain_clip(
    model: CLIPModel, tokenizer: CLIPTokenizer, world: SyntheticConfig, config: ClipPretrainingConfig, seed: int
) -> dict:
    """Train `model` in place; returns the history of the loss and of the zero-shot AUPR on `eval_videos`."""
    rng = np.random.default_rng([seed, 1])
    torch.manual_seed(seed)
    specs, eval_pixels = eval_videos(world, config.eval_videos, config.eval_frames, config.image_size, seed)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": rest, "weight_decay": 0.0}], lr=config.lr
    )

    scheduler = warmup_cosine(optimizer, config.warmup_steps, config.steps)
    history: list[dict] = []
    start = time.perf_counter()
    model.train()
    progress = tqdm(range(config.steps), desc="organism CLIP", unit="step")
    for step in progress:
        stills, captions = sample_batch(
            world, config.batch_size, config.group_size, config.group_weights, config.single_object_share, rng
        )
        targets = torch.from_numpy(caption_targets(stills, captions))
        tokens = tokenizer([c.text for c in captions], padding=True, return_tensors="pt")
        output = model(
            input_ids=tokens["input_ids"],
            attention_mask=tokens["attention_mask"],
            pixel_values=pixel_values(stills, world, config.image_size),
        )
        loss = contrastive_loss(output.logits_per_image, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        progress.set_postfix(loss=f"{loss.item():.3f}")
        if (step + 1) % config.eval_every == 0 or step + 1 == config.steps:
            entry = {"step": step + 1, "seconds": round(time.perf_counter() - start, 1), "loss": round(loss.item(), 4)}
            entry["video_aupr"] = video_zero_shot(model, tokenizer, specs, eval_pixels, world)
            history.append(entry)
            progress.write(str(entry))
    return {"history": history, "seconds": round(time.perf_counter() - start, 1)}
