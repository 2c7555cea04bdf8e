"""Stage 4 (paper supp. I): label assignment, matching vocabulary labels back to videos through their captions.

A video is represented by its captions; a label is wrapped in the CLIP template "a video of {label}" (the paper's
choice, to bring labels closer to caption style). A label's score for a video is its best cosine similarity to any
of the video's captions: one frame showing an action is evidence enough. A label is assigned when its score reaches
`threshold`, at most `top_k` per video, best first (either may be None, not both). Neither number is in the paper;
the defaults give about as many new labels per video as the paper's Table 14 reports (+3.5 to +3.8), but the
threshold depends on the text encoder: look at the score quantiles the pipeline summary reports and tune it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from tqdm import tqdm

from .embedding import EmbedFn
from .settings import DEFAULT_LABEL_TEMPLATE


def select_labels(
    similarities: np.ndarray, labels: Sequence[str], threshold: float | None, top_k: int | None
) -> dict[str, float]:
    """Label -> score for the labels one video gets, from its (num_captions, num_labels) cosine similarities."""
    if similarities.size == 0:
        return {}
    scores = similarities.max(axis=0)  # (L,)
    order = np.argsort(-scores, kind="stable")
    if threshold is not None:
        order = order[scores[order] >= threshold]
    return {labels[i]: round(float(scores[i]), 4) for i in order[:top_k]}


def assign_labels(
    captions: Mapping[str, Sequence[str]],
    labels: Sequence[str],
    embed_fn: EmbedFn,
    template: str = DEFAULT_LABEL_TEMPLATE,
    threshold: float | None = 0.8,
    top_k: int | None = 5,
    videos_per_batch: int = 256,
    progress: bool = True,
) -> dict[str, dict[str, float]]:
    """For every video (key -> captions), the labels assigned to it with their scores, best first."""
    if threshold is None and top_k is None:
        raise ValueError("give a threshold, a top_k or both: otherwise every label would be assigned to every video")
    label_embeds = embed_fn([template.format(label=label) for label in labels])  # (L, D)
    keys = list(captions)
    assigned: dict[str, dict[str, float]] = {}
    with tqdm(total=len(keys), desc="4/4 labels", unit="video", disable=not progress) as bar:
        for start in range(0, len(keys), videos_per_batch):
            chunk = keys[start : start + videos_per_batch]
            texts = [caption for key in chunk for caption in captions[key]]
            similarities = embed_fn(texts) @ label_embeds.T if texts else np.zeros((0, len(labels)))  # (N, L)
            offset = 0
            for key in chunk:
                rows = similarities[offset : offset + len(captions[key])]
                assigned[key] = select_labels(rows, labels, threshold, top_k)
                offset += len(captions[key])
            bar.update(len(chunk))
    return assigned


def augment_record(record: dict[str, Any], generated: Mapping[str, float]) -> dict[str, Any]:
    """A manifest record with generated labels appended to `labels` and marked, with their scores, in
    `generated_labels` ({label: score}); a label the record already has (any case) stays an original label."""
    original = {label.lower() for label in record["labels"]}
    new = {label: score for label, score in generated.items() if label.lower() not in original}
    return {**record, "labels": [*record["labels"], *new], "generated_labels": new}
