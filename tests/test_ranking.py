"""rank_rows: torch.topk and a threshold on the score matrix give what sorting every label in Python gave."""

from __future__ import annotations

import pytest
import torch

from ovmlv.modeling_ovmlv.label_bank import LabelBank, rank_labels
from ovmlv.modeling_ovmlv.ranking import rank_rows


def python_ranking(scores: torch.Tensor, top_k: int | None, threshold: float | None) -> list[list[int]]:
    """The reference: sort every column of each row in Python, then cut (the old pipeline path)."""
    ranked = []
    for row in scores.tolist():
        order = sorted(range(len(row)), key=lambda i: -row[i])
        if threshold is not None:
            order = [i for i in order if row[i] >= threshold]
        ranked.append(order if top_k is None else order[:top_k])
    return ranked


@pytest.mark.parametrize("top_k, threshold", [(None, None), (3, None), (None, 0.7), (4, 0.5), (50, 0.2), (1, 1.1)])
def test_rank_rows_matches_sorting_in_python(top_k, threshold):
    scores = torch.rand(6, 40, generator=torch.Generator().manual_seed(1))  # distinct values: one right order
    ranked = rank_rows(scores, top_k, threshold)
    expected = python_ranking(scores, top_k, threshold)
    offsets = ranked.offsets.tolist()
    assert offsets[0] == 0 and len(ranked) == 6
    for row, columns in enumerate(expected):
        start, end = offsets[row], offsets[row + 1]
        assert ranked.columns[start:end].tolist() == columns
        assert torch.equal(ranked.scores[start:end], scores[row, columns])


def test_rows_keep_different_counts_under_a_threshold():
    scores = torch.tensor([[0.9, 0.1, 0.8], [0.2, 0.3, 0.1], [0.95, 0.96, 0.97]])
    ranked = rank_rows(scores, top_k=2, threshold=0.5)
    assert ranked.offsets.tolist() == [0, 2, 2, 4]
    assert ranked.columns.tolist() == [0, 2, 2, 1]
    assert ranked.labelled(["a", "b", "c"]) == [
        [{"label": "a", "score": pytest.approx(0.9)}, {"label": "c", "score": pytest.approx(0.8)}],
        [],
        [{"label": "c", "score": pytest.approx(0.97)}, {"label": "b", "score": pytest.approx(0.96)}],
    ]


def test_rank_labels_and_bank_query_use_it():
    labels = [f"label {i}" for i in range(1000)]
    scores = torch.rand(1000, generator=torch.Generator().manual_seed(2))
    top = rank_labels(labels, scores, top_k=5, threshold=None)
    best = scores.argsort(descending=True)[:5].tolist()
    assert [item["label"] for item in top] == [labels[i] for i in best]
    assert [item["score"] for item in top] == pytest.approx(scores[best].tolist())
    assert len(rank_labels(labels, scores, top_k=None, threshold=0.99)) == int((scores >= 0.99).sum())

    bank = LabelBank(labels, torch.nn.functional.normalize(torch.randn(1000, 8), dim=-1))
    videos = bank.embeddings[[7, 42]]  # videos that look exactly like two labels
    first, second = bank.query(videos, lambda v, t: v @ t.T, top_k=3)
    assert first[0]["label"] == "label 7" and second[0]["label"] == "label 42" and len(first) == 3
    assert bank.embeddings_for(labels).data_ptr() == bank.embeddings.data_ptr()  # the whole bank: a view, no copy


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="top_k must be at least 1"):
        rank_rows(torch.rand(2, 3), top_k=0)
    with pytest.raises(ValueError, match=r"\(rows, columns\)"):
        rank_rows(torch.rand(3))
