"""Synthetic labels (paper supp. I): more, and more varied, training labels for videos, made by foundation models.

1. `captioning`: a multimodal LLM captions frames sampled from each video;
2. `concepts`: an LLM lists the actions (and objects) in each video's captions, with the paper's few-shot prompt;
3. `vocabulary`: CLIP text embeddings + k-means merge near-duplicate concepts into a vocabulary;
4. `assignment`: vocabulary labels are matched to each video's captions with CLIP ("a video of {label}") and
   written, marked as generated, into an augmented manifest.

`pipeline.run` chains them; `ovmlv synth-labels` is its command line; `settings` holds its configuration. Every stage takes its model
as a plain callable (`CaptionFn`, `GenerateFn`, `EmbedFn`), with a transformers implementation as the default.
"""

import importlib

_EXPORTS = {  # name: the submodule that defines it, imported on first use (torch only when a stage needs it)
    "assign_labels": "assignment",
    "augment_record": "assignment",
    "select_labels": "assignment",
    "CaptionFn": "captioning",
    "ImageCaptioner": "captioning",
    "caption_videos": "captioning",
    "PROMPTS": "concepts",
    "ConceptPrompt": "concepts",
    "GenerateFn": "concepts",
    "TextGenerator": "concepts",
    "extract_concepts": "concepts",
    "parse_concepts": "concepts",
    "ClipTextEmbedder": "embedding",
    "EmbedFn": "embedding",
    "JsonlCache": "jsonl_cache",
    "SyntheticLabelsConfig": "settings",
    "run": "pipeline",
    "Cluster": "vocabulary",
    "ClusteredVocabulary": "vocabulary",
    "build_vocabulary": "vocabulary",
    "cluster_concepts": "vocabulary",
    "clusters_markdown": "vocabulary",
}


def __getattr__(name: str):
    """`from ovmlv.training.synthetic_labels import X` loads X's submodule only then: the settings and
    `ovmlv synth-labels --help` stay light."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


__all__ = [
    "PROMPTS",
    "CaptionFn",
    "ClipTextEmbedder",
    "Cluster",
    "ConceptPrompt",
    "EmbedFn",
    "GenerateFn",
    "ImageCaptioner",
    "JsonlCache",
    "SyntheticLabelsConfig",
    "TextGenerator",
    "ClusteredVocabulary",
    "assign_labels",
    "augment_record",
    "build_vocabulary",
    "caption_videos",
    "cluster_concepts",
    "clusters_markdown",
    "extract_concepts",
    "parse_concepts",
    "run",
    "select_labels",
]
