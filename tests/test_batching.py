"""Batch construction of paper §3.3: P_B ∪ N_B with 4B classes, each once, and the multi-hot targets."""

from collections import Counter

import numpy as np
import pytest
import torch

from ovmlv.training.batching import Vocabulary, multi_hot, negative_label_rng, sample_label_batch

VOCABULARY = Vocabulary([f"label {i}" for i in range(50)])


def test_positives_first_then_negatives_up_to_4b_classes() -> None:
    positives = [["label 0", "label 1"], ["label 1", "label 7"], ["label 3"]]  # B = 3, |P_B| = 4
    batch = sample_label_batch(positives, VOCABULARY, classes_per_video=4, rng=np.random.default_rng(0))
    assert batch.labels[:4] == ["label 0", "label 1", "label 7", "label 3"]
    assert batch.num_positive_classes == 4
    assert len(batch.labels) == 12 == len(set(batch.labels))  # 4B classes, each once: encoded once
    assert set(batch.labels[4:]) <= set(VOCABULARY.labels) - {"label 0", "label 1", "label 7", "label 3"}
    expected = torch.zeros(3, 12)
    expected[0, [0, 1]] = expected[1, [1, 2]] = expected[2, 3] = 1
    assert torch.equal(batch.targets, expected)  # a positive of another video is a negative here


def test_no_negatives_when_positives_fill_the_batch() -> None:
    positives = [[f"label {i}" for i in range(4)], [f"label {i}" for i in range(4, 8)]]  # |P_B| = 8 = 4B
    batch = sample_label_batch(positives, VOCABULARY, classes_per_video=4, rng=np.random.default_rng(0))
    assert batch.labels == [f"label {i}" for i in range(8)]
    assert batch.targets.sum() == 8


def test_more_positives_than_4b_are_subsampled_with_exact_targets() -> None:
    """Videos with many true labels: 4B of P_B drawn uniformly, each scored against every video."""
    positives = [[f"label {i}" for i in range(0, 30)], [f"label {i}" for i in range(20, 45)]]  # |P_B| = 45 > 8
    drawn = Counter()
    for step in range(400):
        batch = sample_label_batch(positives, VOCABULARY, classes_per_video=4, rng=negative_label_rng(0, 0, step))
        assert len(batch.labels) == len(set(batch.labels)) == batch.num_positive_classes == 8
        expected = torch.tensor([[float(label in videos) for label in batch.labels] for videos in positives])
        assert torch.equal(batch.targets, expected)
        drawn.update(batch.labels)
    assert set(drawn) == {f"label {i}" for i in range(45)}
    assert min(drawn.values()) > 0.5 * 400 * 8 / 45  # about 71 draws each


def test_small_vocabulary_gives_all_remaining_classes() -> None:
    vocabulary = Vocabulary(["a", "b", "c", "d", "e"])
    batch = sample_label_batch([["a"], ["b"]], vocabulary, classes_per_video=4, rng=np.random.default_rng(0))
    assert sorted(batch.labels) == ["a", "b", "c", "d", "e"]


def test_negatives_depend_on_seed_process_and_step_only() -> None:
    def draw(seed: int, rank: int, step: int) -> list[str]:
        rng = negative_label_rng(seed, rank, step)
        return sample_label_batch([["label 0"]] * 4, VOCABULARY, 4, rng).labels

    assert draw(0, 0, 5) == draw(0, 0, 5)  # a resumed run draws what the first run drew
    assert draw(0, 0, 5) != draw(0, 1, 5)  # each process its own N_B
    assert draw(0, 0, 5) != draw(0, 0, 6)
    assert draw(0, 0, 5) != draw(1, 0, 5)


def test_negatives_cover_the_vocabulary_uniformly() -> None:
    counts = np.zeros(len(VOCABULARY))
    for step in range(2000):
        batch = sample_label_batch([["label 0"]], VOCABULARY, 4, negative_label_rng(0, 0, step))
        counts[[VOCABULARY.index[label] for label in batch.labels[1:]]] += 1
    assert counts[0] == 0
    assert counts[1:].min() > 0.6 * counts[1:].mean()  # 3 of 49 per draw: about 122 each, sd 11


def test_multi_hot_rejects_unknown_labels() -> None:
    with pytest.raises(KeyError):
        multi_hot([["nope"]], VOCABULARY.index)
