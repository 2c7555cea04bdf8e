"""The paper's batch construction (§3.3): which labels a batch of videos is scored against, and the targets.

For B videos with positive label sets P(v): P_B = the union of the P(v); N_B = 4B - |P_B| further classes drawn
without replacement from the rest of the training vocabulary (none when |P_B| >= 4B). Every video is scored against
every label of P_B ∪ N_B, each label appearing once, so the label encoder runs once per unique class; a label of
P_B that is not among a video's positives is one of its negatives.

A batch holds at most 4B classes: when |P_B| > 4B, 4B of P_B are drawn uniformly without replacement (and N_B is
empty). The paper's videos carry a few labels each, so P_B stays under 4B there; the synthetic world v2 gives a video
about 60 true labels from a vocabulary of 2,000, and scoring all of P_B (some 600 classes for B = 16) would make the
label encoder's pass ten times the cost of a step. Every drawn label keeps exact targets for every video.

In a multi-process run each process builds its own label batch from its own B videos (the paper's "12 videos per
GPU", 4B classes per GPU). The draw of N_B is seeded from (seed, process, micro-batch index) rather than carried
in a generator, so a resumed run draws exactly what an uninterrupted one would, with no state to checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


class Vocabulary:
    """Label strings in a fixed order with their positions: the training vocabulary N_B is drawn from."""

    def __init__(self, labels: Sequence[str]):
        self.labels = list(dict.fromkeys(labels))
        self.index = {label: i for i, label in enumerate(self.labels)}

    def __len__(self) -> int:
        return len(self.labels)

    def __contains__(self, label: str) -> bool:
        return label in self.index


@dataclass
class LabelBatch:
    """labels: P_B then N_B, each once (the label encoder's input); targets: (B, len(labels)) multi-hot floats."""

    labels: list[str]
    targets: torch.Tensor
    num_positive_classes: int


def multi_hot(positives: Sequence[Sequence[str]], index: dict[str, int]) -> torch.Tensor:
    """(B, len(index)) float targets: 1 where label `index[l]` is among video b's positives."""
    targets = torch.zeros(len(positives), len(index))
    for row, labels in enumerate(positives):
        targets[row, [index[label] for label in labels]] = 1.0
    return targets


def negative_label_rng(seed: int, process_index: int, micro_step: int) -> np.random.Generator:
    """The generator N_B is drawn from for one micro-batch: a function of where training is, not of its history."""
    return np.random.default_rng((seed, process_index, micro_step))


def sample_label_batch(
    positives: Sequence[Sequence[str]],
    vocabulary: Vocabulary,
    classes_per_video: int,
    rng: np.random.Generator,
) -> LabelBatch:
    """P_B ∪ N_B for the videos whose positive labels are `positives` (one list per video), and their targets; at
    most `classes_per_video` x B classes (P_B subsampled when larger)."""
    positive_classes = list(dict.fromkeys(label for labels in positives for label in labels))
    budget = classes_per_video * len(positives)
    if len(positive_classes) > budget:
        kept = np.sort(rng.choice(len(positive_classes), size=budget, replace=False))
        positive_classes = [positive_classes[i] for i in kept]
    num_negative = max(0, budget - len(positive_classes))
    taken = [vocabulary.index[label] for label in positive_classes if label in vocabulary]
    candidates = np.setdiff1d(np.arange(len(vocabulary)), taken)  # the rest of the vocabulary
    drawn = rng.choice(candidates, size=min(num_negative, candidates.size), replace=False)
    labels = positive_classes + [vocabulary.labels[i] for i in drawn]
    index = {label: i for i, label in enumerate(labels)}
    targets = multi_hot([[label for label in video if label in index] for video in positives], index)
    return LabelBatch(labels=labels, targets=targets, num_positive_classes=len(positive_classes))
