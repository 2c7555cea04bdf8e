"""Ranking and threshold metrics of the paper (§4; docs/design.md §8) as numpy functions (AP as scikit-learn's).

This file is the one home of the math. It sits next to the `evaluate` script because `evaluate.load` copies a
metric script together with its same-folder relative imports only; the script imports it as `.functional`, library
code through `training.metrics` (which must not pay the seconds `import evaluate` costs).

Conventions shared by every function: scores may be numpy arrays, torch tensors or nested lists; a label is positive
when `score >= threshold`; multi-label inputs are (N videos, C classes); NaN scores and non-binary labels are errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# Anything np.asarray accepts, or a torch tensor on any device.
ArrayLike = Any


def _to_numpy(x: ArrayLike) -> np.ndarray:
    """Convert without importing torch: tensors go through CPU, floats through float64 (numpy has no bfloat16)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        x = x.double() if x.is_floating_point() else x
        return x.numpy()
    return np.asarray(x)


def _scores(x: ArrayLike, ndim: int | None = None, name: str = "y_score") -> np.ndarray:
    """float64 scores: exact for float32 inputs, so thresholds found here compare exactly against the inputs."""
    s = _to_numpy(x)
    if not (np.issubdtype(s.dtype, np.number) or s.dtype == np.bool_):
        raise TypeError(f"{name} must be numeric; got dtype {s.dtype}.")
    if ndim is not None and s.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions; got shape {s.shape}.")
    s = s.astype(np.float64)
    if np.isnan(s).any():
        raise ValueError(f"{name} contains {int(np.isnan(s).sum())} NaN value(s).")
    return s


def _validated(y_true: ArrayLike, y_score: ArrayLike, ndim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(bool labels, float64 scores) of equal shape."""
    t = _to_numpy(y_true)
    s = _scores(y_score, ndim)
    if t.shape != s.shape:
        raise ValueError(f"y_true has shape {t.shape} but y_score has shape {s.shape}; they must match.")
    if t.size == 0:
        raise ValueError(f"y_true and y_score are empty (shape {t.shape}).")
    if t.dtype != np.bool_:
        if not np.issubdtype(t.dtype, np.number) or not np.isin(t, (0, 1)).all():
            found = np.unique(t)[:5] if np.issubdtype(t.dtype, np.number) else t.dtype
            raise ValueError(f"y_true must be binary (0/1 or bool); found {found}.")
    return t.astype(np.bool_), s


def _column_average_precision(t: np.ndarray, s: np.ndarray) -> np.ndarray:
    """(C,) AP of each column of (N, C) labels and scores: scikit-learn's `average_precision_score` (the sum over
    distinct thresholds of recall gained times precision there; tied scores form one threshold), all columns at
    once in numpy, NaN for a column without positives (scikit-learn would warn and say 0). scikit-learn called per
    column spent ~10 ms checking its inputs: minutes for a world of thousands of labels."""
    order = np.argsort(-s, axis=0, kind="stable")
    ranked_scores, ranked = np.take_along_axis(s, order, 0), np.take_along_axis(t, order, 0)
    threshold_ends = np.ones_like(ranked, dtype=bool)  # the last row of each run of tied scores
    threshold_ends[:-1] = ranked_scores[1:] != ranked_scores[:-1]
    true_positives = np.cumsum(ranked, axis=0, dtype=np.float64)
    at_ends = np.where(threshold_ends, true_positives, 0.0)
    before = np.zeros_like(at_ends)  # true positives at the previous threshold (they never decrease)
    before[1:] = np.maximum.accumulate(at_ends, axis=0)[:-1]
    precision = true_positives / np.arange(1, len(t) + 1)[:, None]
    positives = true_positives[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = (threshold_ends * (true_positives - before) * precision).sum(axis=0) / positives
    return np.where(positives > 0, ap, np.nan)


def random_ranking_precision(positives: int, total: int) -> float:
    """The expected AP of a uniformly random ranking of `total` items, `positives` of them positive: AUPR's chance
    level, above the share of positives when there are few items. Each positive sits at rank r (uniform), with
    (r - 1)(k - 1)/(n - 1) other positives above it on average, so E[AP] = (H_n + (k - 1)(n - H_n)/(n - 1)) / n."""
    if not 0 < positives <= total:
        raise ValueError(f"need 0 < positives <= total, got {positives} of {total}")
    if total == 1:
        return 1.0
    harmonic = float(np.sum(1.0 / np.arange(1, total + 1)))
    return (harmonic + (positives - 1) * (total - harmonic) / (total - 1)) / total


def average_precision(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """AP of one binary problem (N,), exactly sklearn's `average_precision_score`; NaN without positives."""
    t, s = _validated(y_true, y_score, ndim=1)
    return float(_column_average_precision(t[:, None], s[:, None])[0])


def per_class_average_precision(y_true: ArrayLike, y_score: ArrayLike) -> np.ndarray:
    """(C,) AP of each class of (N, C) inputs; NaN marks a class without positives (skipped by macro AUPR)."""
    return _column_average_precision(*_validated(y_true, y_score, ndim=2))


def _macro(ap: np.ndarray) -> float:
    """Mean over classes with positives (the non-NaN APs); NaN, without a warning, when there are none."""
    return float(np.nanmean(ap)) if not np.isnan(ap).all() else float("nan")


def _aupr(t: np.ndarray, s: np.ndarray, average: str) -> float:
    if average == "micro":
        return float(_column_average_precision(t.reshape(-1, 1), s.reshape(-1, 1))[0])
    if average == "macro":
        return _macro(_column_average_precision(t, s))
    if average == "samples":
        return _macro(_column_average_precision(t.T, s.T))
    raise ValueError(f"average must be 'macro', 'micro' or 'samples'; got {average!r}.")


def aupr(y_true: ArrayLike, y_score: ArrayLike, average: str = "macro") -> float:
    """Area under the precision-recall curve of (N, C) inputs (the paper's Table 1 metric).

    macro: mean AP over classes with at least one positive (an open-vocabulary test set names classes that may not
    occur; `per_class_average_precision` shows which). micro: AP of all (video, class) pairs pooled. samples: mean AP
    of each video's ranking of the classes, over videos with at least one positive (what a user reading one video's
    ranked labels sees; scikit-learn's average="samples"). NaN when no class (no video) has a positive.
    """
    return _aupr(*_validated(y_true, y_score, ndim=2), average)


def _micro_prf(t: np.ndarray, s: np.ndarray, thresholds: np.ndarray) -> dict[str, np.ndarray]:
    """Micro precision/recall/F1 of `s >= threshold` at each threshold, by binary search on the sorted scores.

    0/0 is 0, like sklearn's zero_division=0. F1 = 2TP / (predicted + actual positives) = 2TP / (2TP + FP + FN).
    """
    all_scores = np.sort(s, axis=None)
    positive_scores = np.sort(s[t], axis=None)
    predicted = all_scores.size - np.searchsorted(all_scores, thresholds, side="left")
    tp = positive_scores.size - np.searchsorted(positive_scores, thresholds, side="left")
    positives = positive_scores.size
    zeros = np.zeros(thresholds.shape)
    return {
        "thresholds": thresholds,
        "f1": np.divide(2 * tp, predicted + positives, out=zeros.copy(), where=predicted + positives > 0),
        "precision": np.divide(tp, predicted, out=zeros.copy(), where=predicted > 0),
        "recall": tp / positives if positives else zeros,
    }


def f1_threshold_curve(
    y_true: ArrayLike, y_score: ArrayLike, thresholds: ArrayLike | None = None
) -> dict[str, np.ndarray]:
    """Micro F1, precision and recall against one global threshold (paper Fig. 6).

    `thresholds` defaults to every distinct score (ascending), where the curve can change; the curve is a step
    function, constant between consecutive scores. Returns arrays keyed thresholds, f1, precision, recall.
    """
    t, s = _validated(y_true, y_score)
    thresholds = np.unique(s) if thresholds is None else _scores(thresholds, ndim=1, name="thresholds")
    return _micro_prf(t, s, thresholds)


def _prf_at(t: np.ndarray, s: np.ndarray, threshold: float) -> dict[str, float]:
    at = _micro_prf(t, s, _scores([threshold], name="threshold"))
    return {name: float(at[name][0]) for name in ("f1", "precision", "recall")}


def f1_at_threshold(y_true: ArrayLike, y_score: ArrayLike, threshold: float) -> dict[str, float]:
    """Micro F1, precision and recall of predicting `score >= threshold` (a deployed model's numbers)."""
    return _prf_at(*_validated(y_true, y_score), threshold)


def _best_threshold(datasets: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """(min F1, threshold) maximising the minimum micro F1 over datasets; the lowest such threshold on ties.

    Exact: each dataset's F1 only changes at its own scores, so the union of all scores holds a maximiser.
    """
    candidates = np.unique(np.concatenate([s.ravel() for _, s in datasets]))
    min_f1 = np.min([_micro_prf(t, s, candidates)["f1"] for t, s in datasets], axis=0)
    best = int(np.argmax(min_f1))
    return float(min_f1[best]), float(candidates[best])


def peak_f1(y_true: ArrayLike, y_score: ArrayLike) -> tuple[float, float]:
    """(F1, threshold): the best micro F1 over one global threshold, chosen by an oracle per dataset (Table 2)."""
    return _best_threshold([_validated(y_true, y_score)])


def deployment_threshold(datasets: Sequence[tuple[ArrayLike, ArrayLike]]) -> tuple[float, float]:
    """(threshold, min F1): the one threshold that maximises the minimum micro F1 over several validation sets.

    The paper's (§4.6) way to fix a threshold before meeting unseen concepts; datasets may have different classes.
    """
    if not datasets:
        raise ValueError("deployment_threshold needs at least one (y_true, y_score) dataset.")
    min_f1, threshold = _best_threshold([_validated(t, s) for t, s in datasets])
    return threshold, min_f1


def gap_at_k(y_true: ArrayLike, y_score: ArrayLike, k: int = 20) -> float:
    """YouTube-8M Global Average Precision of (N, C) inputs, as the starter code's `calculate_gap`.

    Each video keeps its k best classes; the N*k predictions are ranked together by score and
    GAP = sum over ranks i holding a positive of precision@i / (total ground-truth positives of all videos). The
    denominator is not capped at k, so a video with more than k labels cannot be fully recalled. Ties rank in
    (video, class) order where the starter code shuffles them.
    """
    t, s = _validated(y_true, y_score, ndim=2)
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}.")
    positives = int(t.sum())
    if positives == 0:
        return 0.0
    top = np.argsort(-s, axis=1, kind="stable")[:, :k]  # (N, k)
    top_scores = np.take_along_axis(s, top, axis=1).ravel()
    hits = np.take_along_axis(t, top, axis=1).ravel()[np.argsort(-top_scores, kind="stable")]
    ranks = np.flatnonzero(hits) + 1
    return float(np.sum(np.arange(1, ranks.size + 1) / ranks) / positives)


def hit_at_1(y_true: ArrayLike, y_score: ArrayLike) -> float:
    """Fraction of videos whose top-scoring class is a ground-truth label (YouTube-8M; ties go to the lower index)."""
    t, s = _validated(y_true, y_score, ndim=2)
    return float(t[np.arange(t.shape[0]), np.argmax(s, axis=1)].mean())


def top_k_accuracy(labels: ArrayLike, y_score: ArrayLike, k: int = 1) -> float:
    """Single-label accuracy: the true class is among the k best scores (zero-shot UCF101/HMDB51/K600 top-1/5).

    Ties rank like sklearn's `top_k_accuracy_score`: among equal scores the higher class index comes first. Not
    that function itself: with two classes it thresholds one score column instead of ranking the two.
    """
    s = _scores(y_score, ndim=2)
    y = _to_numpy(labels)
    if y.shape != s.shape[:1]:
        raise ValueError(f"labels must have shape ({s.shape[0]},) to match y_score {s.shape}; got {y.shape}.")
    if not np.issubdtype(y.dtype, np.integer) or ((y < 0) | (y >= s.shape[1])).any():
        raise ValueError(f"labels must be integer class indices in [0, {s.shape[1]}).")
    if k < 1:
        raise ValueError(f"k must be >= 1; got {k}.")
    true_score = s[np.arange(y.size), y][:, None]
    ahead = (s > true_score) | ((s == true_score) & (np.arange(s.shape[1]) > y[:, None]))
    return float(np.mean(ahead.sum(axis=1) < k))


def multilabel_report(y_true: ArrayLike, y_score: ArrayLike, threshold: float | None = None) -> dict[str, float]:
    """The paper's multi-label numbers for one (N, C) dataset in one pass over validation.

    Keys: aupr_macro, aupr_micro, aupr_samples, skipped_classes (classes without positives, left out of macro), peak_f1,
    peak_f1_threshold; with a deployment `threshold` also threshold, f1, precision, recall at it.
    """
    t, s = _validated(y_true, y_score, ndim=2)
    ap = _column_average_precision(t, s)
    f1, best = _best_threshold([(t, s)])
    report = {
        "aupr_macro": _macro(ap),
        "aupr_micro": _aupr(t, s, "micro"),
        "aupr_samples": _aupr(t, s, "samples"),
        "skipped_classes": int(np.isnan(ap).sum()),
        "peak_f1": f1,
        "peak_f1_threshold": best,
    }
    if threshold is not None:
        report.update(threshold=float(threshold), **_prf_at(t, s, threshold))
    return report
