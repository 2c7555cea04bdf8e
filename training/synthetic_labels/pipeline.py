"""The four stages end to end: a manifest in, an augmented manifest (original + generated labels) out.

Output folder (`SyntheticLabelsConfig.out`):
- captions.jsonl, concepts_{kind}.jsonl: the resumable caches of stages 1 and 2 (`JsonlCache`): rerun the same
  command after a crash, or after adding videos to the manifest, and only the missing videos are processed;
- vocabulary.json (clusters: label, kind, member concepts with video counts), vocabulary.txt (one label a line),
  clusters.md (paper Table 13 style report);
- {manifest name}: the augmented manifest, video paths rewritten relative to this folder;
- summary.json (counts, labels per video, score quantiles), synthetic_labels_config.json (the settings).
Stages 3 and 4 are recomputed on every run: they only need the CLIP text encoder and take minutes, not GPU-days.
"""

from __future__ import annotations

import gc
import json
import os
from collections.abc import Callable
from contextlib import AbstractContextManager, closing, nullcontext
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ovmlv.modeling_ovmlv.atomic_files import write_text_atomically

from .assignment import assign_labels, augment_record
from .captioning import CaptionFn, ImageCaptioner, caption_videos
from .concepts import PROMPTS, GenerateFn, TextGenerator, extract_concepts
from .embedding import ClipTextEmbedder, EmbedFn
from .jsonl_cache import JsonlCache
from .settings import CONFIG_FILE, SyntheticLabelsConfig
from .vocabulary import ClusteredVocabulary, build_vocabulary, clusters_markdown


class LazyModel:
    """A model-backed callable built on first use and freed by `close`: a resumed run whose cache is complete
    loads nothing, and the stages' models (a 7B captioner, a 13B LLM) never sit on the GPU together."""

    def __init__(self, factory: Callable[[], Callable]) -> None:
        self.factory, self.model = factory, None

    def __call__(self, *args: Any) -> Any:
        if self.model is None:
            self.model = self.factory()
        return self.model(*args)

    def close(self) -> None:
        self.model = None
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def read_manifest(path: str | os.PathLike) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def run(
    config: SyntheticLabelsConfig,
    caption_fn: CaptionFn | None = None,
    generate_fn: GenerateFn | None = None,
    embed_fn: EmbedFn | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the four stages (models from `config` unless given) and write the output folder; returns the summary."""
    manifest, out = Path(config.manifest), Path(config.out)
    augmented_path = out / manifest.name
    if augmented_path.resolve() == manifest.resolve():
        raise ValueError(f"--out {out} would overwrite the input manifest: choose another folder")
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomically(out / CONFIG_FILE, json.dumps(asdict(config), indent=1))
    records = read_manifest(manifest)
    videos = {record["video"]: manifest.parent / record["video"] for record in records}
    device = config.device or ("cuda" if torch.cuda.is_available() else "cpu")

    captions = caption_stage(config, videos, caption_fn, device, progress)
    concepts = concept_stage(config, captions, generate_fn, device, progress)
    embed_fn = embed_fn or ClipTextEmbedder(config.clip, device=device)
    vocabulary = vocabulary_stage(config, concepts, embed_fn, progress)
    assigned = assign_labels(
        captions, vocabulary.labels, embed_fn, config.label_template, config.threshold, config.top_k, progress=progress
    )
    augmented = [
        augment_record(record, assigned[record["video"]]) | {"video": _relocate(record["video"], manifest.parent, out)}
        for record in records
    ]
    write_text_atomically(augmented_path, "".join(json.dumps(record) + "\n" for record in augmented))

    summary = _summary(records, augmented, captions, concepts, vocabulary.labels, out, augmented_path)
    write_text_atomically(out / "summary.json", json.dumps(summary, indent=1))
    return summary


def caption_settings(config: SyntheticLabelsConfig) -> dict[str, Any]:
    """What the captions depend on: the captions cache, and every cache built on captions, is stale when it changes."""
    return {
        "captioner": config.captioner,
        "prompt": config.caption_prompt,
        "max_new_tokens": config.caption_max_new_tokens,
        "num_frames": config.num_frames,
    }


def caption_stage(
    config: SyntheticLabelsConfig,
    videos: dict[str, Path],
    caption_fn: CaptionFn | None,
    device: str,
    progress: bool,
) -> dict[str, list[str]]:
    """Stage 1: captions of every video's frames (captions.jsonl), the captioner freed afterwards."""
    new_captioner = partial(
        ImageCaptioner,
        config.captioner,
        prompt=config.caption_prompt,
        max_new_tokens=config.caption_max_new_tokens,
        batch_size=config.caption_batch_size,
        device=device,
        dtype=config.dtype,
    )
    with _stage_model(caption_fn, new_captioner) as caption:
        cache = JsonlCache(Path(config.out) / "captions.jsonl", caption_settings(config))
        return caption_videos(videos, caption, cache, config.num_frames, config.caption_batch_size, progress)


def concept_stage(
    config: SyntheticLabelsConfig,
    captions: dict[str, list[str]],
    generate_fn: GenerateFn | None,
    device: str,
    progress: bool,
) -> dict[str, dict[str, list[str]]]:
    """Stage 2: the LLM's concepts of each kind per video (concepts_{kind}.jsonl), the LLM freed afterwards."""
    concepts: dict[str, dict[str, list[str]]] = {}
    new_llm = partial(
        TextGenerator,
        config.llm,
        max_new_tokens=config.llm_max_new_tokens,
        chat_template=config.chat_template,
        device=device,
        dtype=config.dtype,
    )
    with _stage_model(generate_fn, new_llm) as generate:
        for kind in config.kinds:
            prompt = PROMPTS[kind]
            settings = {
                "llm": config.llm,
                "prompt": prompt.fingerprint,
                "max_new_tokens": config.llm_max_new_tokens,
                "chat_template": config.chat_template,
                "captions": caption_settings(config),  # new captions make old answers stale
            }
            cache = JsonlCache(Path(config.out) / f"concepts_{kind}.jsonl", settings)
            concepts[kind] = extract_concepts(
                captions,
                generate,
                prompt,
                cache,
                config.llm_batch_size,
                config.max_concept_words,
                f"2/4 concepts ({kind})",
                progress,
            )
    return concepts


def vocabulary_stage(
    config: SyntheticLabelsConfig, concepts: dict[str, dict[str, list[str]]], embed_fn: EmbedFn, progress: bool
) -> ClusteredVocabulary:
    """Stage 3: the concepts clustered into a vocabulary (vocabulary.json, vocabulary.txt, clusters.md)."""
    out = Path(config.out)
    vocabulary = build_vocabulary(
        concepts,
        embed_fn,
        config.num_clusters,
        config.cluster_ratio,
        config.min_merge_similarity,
        config.seed,
        config.kmeans_backend,
        progress,
    )
    vocabulary.save(out / "vocabulary.json")
    write_text_atomically(out / "vocabulary.txt", "".join(f"{label}\n" for label in vocabulary.labels))
    write_text_atomically(out / "clusters.md", clusters_markdown(vocabulary, config.report_rows, seed=config.seed))
    return vocabulary


def _stage_model(injected: Callable | None, factory: Callable[[], Callable]) -> AbstractContextManager[Callable]:
    """The injected callable as it is, or the model `factory` builds, freed when its stage ends."""
    return nullcontext(injected) if injected is not None else closing(LazyModel(factory))


def _relocate(video: str, manifest_dir: Path, out: Path) -> str:
    """The manifest's video path, relative to the output folder (the augmented manifest lives there)."""
    if Path(video).is_absolute():
        return video
    return os.path.relpath((manifest_dir / video).absolute(), out.absolute())


def _summary(
    records: list[dict[str, Any]],
    augmented: list[dict[str, Any]],
    captions: dict[str, list[str]],
    concepts: dict[str, dict[str, list[str]]],
    labels: list[str],
    out: Path,
    augmented_path: Path,
) -> dict[str, Any]:
    scores = np.array([score for record in augmented for score in record["generated_labels"].values()])
    return {
        "videos": len(records),
        "videos_without_captions": sum(not video_captions for video_captions in captions.values()),
        "distinct_concepts": {
            kind: len({concept for found in by_video.values() for concept in found})
            for kind, by_video in concepts.items()
        },
        "vocabulary_size": len(labels),
        "labels_per_video": {
            "original": float(np.mean([len(record["labels"]) for record in records])) if records else 0.0,
            "generated": float(np.mean([len(record["generated_labels"]) for record in augmented])) if records else 0.0,
        },
        "videos_without_generated_labels": sum(not record["generated_labels"] for record in augmented),
        "generated_score_quantiles": {
            str(q): round(float(np.quantile(scores, q)), 4) for q in (0.0, 0.25, 0.5, 0.75, 1.0) if scores.size
        },
        "augmented_manifest": str(augmented_path),
        "out": str(out),
    }
