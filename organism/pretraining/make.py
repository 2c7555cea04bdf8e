"""Make the model organism, or measure it: `ovmlv organism`.

    ovmlv organism --out organism/towers [--seed 0] [--threads 1] [--t5-only]
    ovmlv organism --measure [--towers organism/towers] [--out outputs/organism_targets]

The first regenerates everything from the seed (the tokenizers' corpora, the stills, the T5 corpus), pretrains the
tiny CLIP and then the tiny T5 (with `--t5-only`, the T5 alone, beside the CLIP already in `--out`, whose record
organism.json keeps). The CLIP learns from stills of world v1's rendering (`SyntheticConfig.version=1`: the frames
it was pretrained on before world v2; v2 only moves the movers' paths inside the frame), the T5 from world v2's
corpus; saves them as `save_pretrained` folders `--out`/clip and `--out`/t5 (each written
whole, then moved into place), measures the targets on fresh held-out videos, and writes `--out`/organism.json: the
command, the seed, a hash of the data, the recipes, the pretraining histories and the targets. The second only
measures (targets.md and targets.json in `--out`). `--toy` shrinks every size and budget to seconds: a check of the
plumbing, not an organism.
"""

from __future__ import annotations

import os

# Before torch loads: OpenMP threads that spin while another process holds a core made steps several times slower
# on a busy 2-core machine (the same CLIP step: 1.3 s passive, 5.6 s spinning).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import hashlib
import json
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ovmlv.arguments import CommandError
from ovmlv.modeling_ovmlv.atomic_files import write_folder_atomically, write_text_atomically

from ..runs import existing_towers
from ..synonyms import SYNONYMS
from ..world import SyntheticConfig
from .clip_pretraining import ClipPretrainingConfig, build_clip, eval_videos, pretrain_clip
from .corpus import category_candidates, corpus
from .stills import caption, sample_still
from .t5_pretraining import T5PretrainingConfig, build_t5, pretrain_t5
from .targets import ZERO_SHOT, measure_targets, world_concepts
from .tokenizer_training import train_clip_tokenizer, train_t5_tokenizer

CAPTIONS_FOR_TOKENIZER = 4000
HELDOUT_VIDEOS = 300
TOY_CLIP = dict(
    vision_width=16, vision_layers=4, text_width=16, text_layers=1, projection_dim=8, batch_size=8, group_size=4
) | dict(steps=2, warmup_steps=1, eval_every=2, eval_videos=4, eval_frames=2)
TOY_T5 = dict(d_model=16, d_ff=32, num_layers=1, batch_size=4, steps=2, warmup_steps=1, eval_every=2)
TOY_HELDOUT_VIDEOS = 4
TOY_METHODS = ("class_name",)  # a toy run skips the other zero-shot methods (fixed LLM prompts generate for minutes)


def clip_tokenizer_texts(world: SyntheticConfig, seed: int) -> list[str]:
    """What the CLIP tokenizer is trained on: captions of random stills, and every synonym once (so that each is
    covered by sub-words without becoming a word CLIP's text tower ever trains)."""
    rng = np.random.default_rng([seed, 0])
    captions = [caption(sample_still(world, rng), rng).text for _ in range(CAPTIONS_FOR_TOKENIZER)]
    return captions + [synonym for synonyms in SYNONYMS.values() for synonym in synonyms]


def data_hash(
    world: SyntheticConfig, clip_texts: list[str], pairs: list[tuple[str, str]], eval_pixels: torch.Tensor
) -> str:
    """sha256 of what the towers learn from and are checked on: the world, both corpora, the rendered evaluation
    videos."""
    digest = hashlib.sha256(json.dumps([asdict(world), clip_texts, pairs]).encode())
    digest.update(eval_pixels.numpy().tobytes())
    return digest.hexdigest()


def save_folder(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: Path) -> None:
    """`save_pretrained` model and tokenizer into a staging folder, then swap it in for `folder`."""
    with write_folder_atomically(folder) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)


def remake_command(out: Path, seed: int, toy: bool, threads: int, t5_only: bool) -> str:
    """The `ovmlv organism` command that makes these towers again, as organism.json records it."""
    options = [f"--out {out}", *([f"--seed {seed}"] if seed else [])]
    options += [*(["--toy"] if toy else []), *([f"--threads {threads}"] if threads != 1 else [])]
    options += ["--t5-only"] if t5_only else []
    return " ".join(["ovmlv organism", *options])


def make_organism(out: Path, *, seed: int = 0, toy: bool = False, threads: int = 1, t5_only: bool = False) -> dict:
    """Pretrain both towers (or, when `t5_only`, the T5 beside `out`'s CLIP) into `out` with `threads` torch threads
    and measure them; `toy` shrinks every size and budget. Returns what organism.json holds."""
    torch.set_num_threads(threads)
    world = SyntheticConfig(seed=seed)
    clip_world = replace(world, version=1)
    clip_config = replace(ClipPretrainingConfig(), **(TOY_CLIP if toy else {}))
    t5_config = replace(T5PretrainingConfig(), **(TOY_T5 if toy else {}))
    start = time.perf_counter()

    clip_texts = clip_tokenizer_texts(clip_world, seed)
    pairs = corpus(world)
    t5_tokenizer = train_t5_tokenizer([text for pair in pairs for text in pair])

    if t5_only:
        if not (out / "clip").is_dir() or not (out / "organism.json").is_file():
            raise CommandError(f"--t5-only needs a CLIP and its record in {out} (clip/ and organism.json)")
        clip_record = json.loads((out / "organism.json").read_text(encoding="utf-8"))["clip"]
    else:
        clip_tokenizer = train_clip_tokenizer(clip_texts)
        torch.manual_seed(seed)
        clip = build_clip(clip_tokenizer, clip_config)
        clip_log = pretrain_clip(clip, clip_tokenizer, clip_world, clip_config, seed)
        save_folder(clip, clip_tokenizer, out / "clip")
        clip_record = {"recipe": asdict(clip_config), "vocab_size": len(clip_tokenizer), **clip_log}
    torch.manual_seed(seed)
    t5 = build_t5(t5_tokenizer, t5_config)
    t5_log = pretrain_t5(t5, t5_tokenizer, pairs, world_concepts(world), category_candidates(world), t5_config, seed)
    save_folder(t5, t5_tokenizer, out / "t5")
    pretraining_seconds = round(time.perf_counter() - start, 1)

    _, eval_pixels = eval_videos(
        clip_world, clip_config.eval_videos, clip_config.eval_frames, clip_config.image_size, seed
    )
    record = {
        "command": remake_command(out, seed, toy, threads, t5_only),
        "seed": seed,
        "data_sha256": data_hash(world, clip_texts, pairs, eval_pixels),
        "threads": torch.get_num_threads(),
        "pretraining_seconds": pretraining_seconds,
        "world": asdict(world),
        "clip_world": asdict(clip_world),
        "clip": clip_record,
        "t5": {"recipe": asdict(t5_config), "vocab_size": len(t5_tokenizer), "corpus_pairs": len(pairs), **t5_log},
    }
    write_text_atomically(out / "organism.json", json.dumps(record, indent=1) + "\n")  # kept if measuring fails
    videos, methods = measure_budget(toy)
    with tempfile.TemporaryDirectory() as scratch:
        record["targets"] = measure_targets(existing_towers(out), Path(scratch), videos, seed + 1, methods)
    write_text_atomically(out / "organism.json", json.dumps(record, indent=1) + "\n")
    return record


def measure_budget(toy: bool) -> tuple[int, tuple[str, ...]]:
    """How many held-out videos, and which zero-shot methods, a (toy) measurement takes."""
    return (TOY_HELDOUT_VIDEOS, TOY_METHODS) if toy else (HELDOUT_VIDEOS, tuple(ZERO_SHOT))


def measure_organism(towers_dir: Path, out: Path, *, seed: int = 0, toy: bool = False, threads: int = 1) -> dict:
    """Measure the targets of the towers in `towers_dir` on fresh held-out videos of `seed` + 1 (a few when `toy`)
    with `threads` torch threads; writes targets.md and targets.json into `out` and returns what they hold."""
    torch.set_num_threads(threads)
    videos, methods = measure_budget(toy)
    return measure_targets(existing_towers(towers_dir), out, videos, seed + 1, methods)
