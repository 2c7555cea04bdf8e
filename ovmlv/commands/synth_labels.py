"""`ovmlv synth-labels`: synthetic labels for a video manifest (paper supp. I): captions, LLM concepts, CLIP
de-duplication, assignment.

    ovmlv synth-labels --manifest train.jsonl --captioner MODEL --llm MODEL --out DIR [...]

runs the four stages with one progress bar each. The flags are the fields of `SyntheticLabelsConfig`, read by the
rules of the training config, so the two cannot drift apart.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from ovmlv.arguments import EXIT_OK
from ovmlv.training.config import add_field_arguments, from_arguments
from ovmlv.training.synthetic_labels.concepts import PROMPTS
from ovmlv.training.synthetic_labels.settings import CONFIG_FILE, KMEANS_BACKENDS, SyntheticLabelsConfig

_HELP = {
    "manifest": "input JSONL manifest: {'video': path relative to its folder, 'labels': [...]} per line",
    "out": "output folder: caches, vocabulary, clusters.md, the augmented manifest (same file name), summary.json",
    "captioner": "image-text-to-text model id or folder, e.g. llava-hf/llava-1.5-7b-hf",
    "llm": "seq2seq or causal LM id or folder, e.g. meta-llama/Llama-2-13b-chat-hf or google/flan-t5-xl",
    "clip": "CLIP model for de-duplication and label assignment",
    "num_frames": "frames captioned per video",
    "caption_prompt": "instruction for chat captioners; text prefix for plain ones ('' or 'a picture of')",
    "caption_batch_size": "frames per captioner batch",
    "kinds": "concept kinds to extract, each with its own few-shot prompt",
    "llm_batch_size": "videos per LLM batch",
    "chat_template": "wrap the prompt in the LLM's chat template when it has one",
    "max_concept_words": "drop extracted items longer than this (sentences, not labels)",
    "num_clusters": "k-means clusters per kind (default: --cluster-ratio x distinct concepts)",
    "cluster_ratio": "k per kind as a fraction of its distinct concepts, when --num-clusters is not given",
    "min_merge_similarity": "split k-means clusters so every concept has this cosine similarity to its label",
    "kmeans_backend": "auto: faiss when installed, else scikit-learn",
    "report_rows": "rows per table of clusters.md",
    "label_template": "CLIP prompt for a label, matched against the captions",
    "threshold": "assign labels whose best caption similarity reaches this ('none': top-k only)",
    "top_k": "assign at most this many labels per video ('none': threshold only)",
    "device": "default: cuda when available, else cpu",
    "dtype": "captioner and LLM weights dtype: auto (as saved), bfloat16, float16, float32",
}
_CHOICES = {"kinds": list(PROMPTS), "kmeans_backend": list(KMEANS_BACKENDS)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_field_arguments(parser, SyntheticLabelsConfig, _HELP, _CHOICES)


def run(args: argparse.Namespace) -> int:
    from ovmlv.training.synthetic_labels.pipeline import run as run_pipeline

    config = from_arguments(SyntheticLabelsConfig, args)
    out = Path(config.out).absolute()
    created = next((folder for folder in (*reversed(out.parents), out) if not folder.exists()), None)
    try:
        summary = run_pipeline(config)
    except BaseException:
        if created is not None and not holds_results(out):  # failed before any video was done: leave no folder
            shutil.rmtree(created, ignore_errors=True)  # the first one this run made, and everything under it
        raise
    print(json.dumps(summary, indent=1))
    return EXIT_OK


def holds_results(out: Path) -> bool:
    """Whether `out` holds work worth resuming: a cache with a record past its header line, or an output file."""
    if not out.is_dir():
        return False
    for path in out.iterdir():
        if path.suffix == ".jsonl":
            with path.open("rb") as file:
                if file.readline() and file.readline():  # the header, then a record
                    return True
        elif path.name != CONFIG_FILE:
            return True
    return False
