"""Synthetic labels (paper supp. I): more, and more varied, training labels for videos, made by foundation models.

1. `captioning`: a multimodal LLM captions frames sampled from each video;
2. `concepts`: an LLM lists the actions (and objects) in each video's captions, with the paper's few-shot prompt;
3. `vocabulary`: CLIP text embeddings + k-means merge near-duplicate concepts into a vocabulary;
4. `assignment`: vocabulary labels are matched to each video's captions with CLIP ("a video of {label}") and
   written, marked as generated, into an augmented manifest.

`pipeline.run` chains them; `ovmlv synth-labels` is its command line. Every stage takes its model
as a plain callable (`CaptionFn`, `GenerateFn`, `EmbedFn`), with a transformers implementation as the default.
"""

from .assignment import assign_labels, augment_record, select_labels
from .captioning import CaptionFn, ImageCaptioner, caption_videos
from .concepts import PROMPTS, ConceptPrompt, GenerateFn, TextGenerator, extract_concepts, parse_concepts
from .embedding import ClipTextEmbedder, EmbedFn
from .jsonl_cache import JsonlCache
from .pipeline import SyntheticLabelsConfig, run
from .vocabulary import Cluster, ClusteredVocabulary, build_vocabulary, cluster_concepts, clusters_markdown

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
