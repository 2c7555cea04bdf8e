"""training/metrics.py (math in training/ovmlv_metrics/functional.py) against scikit-learn and hand-worked cases."""

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    precision_recall_curve,
    precision_score,
    recall_score,
    top_k_accuracy_score,
)

from ovmlv.training.metrics import (
    aupr,
    average_precision,
    deployment_threshold,
    f1_at_threshold,
    f1_threshold_curve,
    gap_at_k,
    hit_at_1,
    multilabel_report,
    peak_f1,
    per_class_average_precision,
    random_ranking_precision,
    top_k_accuracy,
)

METRIC_DIR = Path(__file__).resolve().parents[1] / "training" / "ovmlv_metrics"
SEEDS = range(50)


def random_case(seed: int, shape: tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Random labels and scores; every other seed rounds scores to one decimal so ties are everywhere."""
    rng = np.random.default_rng(seed)
    shape = shape or (int(rng.integers(2, 40)), int(rng.integers(1, 8)))
    y = rng.random(shape) < rng.uniform(0.1, 0.6)
    s = rng.random(shape)
    return y, (np.round(s, 1) if seed % 2 else s)


# --- average precision / AUPR ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("y", "s", "expected"),
    [
        ([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.6], (1 + 2 / 3) / 2),  # hits at ranks 1 and 3
        ([1, 0, 1], [0.5, 0.5, 0.2], 1 / 2 * 1 / 2 + 1 / 2 * 2 / 3),  # the tie enters together: precision 1/2
        ([0, 1], [0.3, 0.3], 1 / 2),
        ([0, 0, 1], [0.9, 0.8, 0.1], 1 / 3),
    ],
)
def test_average_precision_by_hand(y, s, expected):
    assert average_precision(y, s) == pytest.approx(expected, abs=1e-12)
    assert average_precision_score(y, s) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_average_precision_matches_sklearn(seed):
    y, s = random_case(seed, shape=(int(np.random.default_rng(seed).integers(2, 80)),))
    y[0] = True
    assert abs(average_precision(y, s) - average_precision_score(y, s)) < 1e-9


def test_average_precision_without_positives_is_nan():
    assert np.isnan(average_precision([0, 0, 0], [0.1, 0.5, 0.2]))


@pytest.mark.parametrize("seed", range(8))
def test_samples_aupr_is_each_videos_ranking_of_the_labels(seed):
    """average="samples": the mean AP of each row's ranking of its classes, rows without a positive skipped (as
    scikit-learn's average="samples" averages the rows it can score)."""
    y, s = random_case(seed)
    rows = np.flatnonzero(y.any(axis=1))
    expected = [average_precision_score(y[r], s[r]) for r in rows]
    assert aupr(y, s, "samples") == pytest.approx(np.mean(expected) if expected else float("nan"), nan_ok=True)


def test_aupr_by_hand_skips_classes_without_positives():
    y = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0]])
    s = np.array([[0.9, 0.2, 0.5], [0.8, 0.1, 0.4], [0.3, 0.7, 0.6]])
    # class 0: ranks 1 (hit), 2, 3 (hit) -> (1 + 2/3)/2; class 1: its positive ranks 3rd -> 1/3; class 2: skipped.
    ap = per_class_average_precision(y, s)
    np.testing.assert_allclose(ap[:2], [5 / 6, 1 / 3], atol=1e-12)
    assert np.isnan(ap[2])
    assert aupr(y, s) == pytest.approx((5 / 6 + 1 / 3) / 2, abs=1e-12)
    assert multilabel_report(y, s)["skipped_classes"] == 1
    # micro pools 9 pairs: 0.9+ 0.8- 0.7- 0.6- 0.5- 0.4- 0.3+ 0.2- 0.1+ -> (1 + 2/7 + 3/9) / 3
    assert aupr(y, s, average="micro") == pytest.approx((1 + 2 / 7 + 3 / 9) / 3, abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_aupr_matches_sklearn(seed):
    y, s = random_case(seed)
    has_positive = y.any(axis=0)
    expected = [average_precision_score(y[:, c], s[:, c]) for c in np.flatnonzero(has_positive)]
    ap = per_class_average_precision(y, s)
    np.testing.assert_allclose(ap[has_positive], expected, rtol=0, atol=1e-9)
    assert np.isnan(ap[~has_positive]).all()
    if has_positive.any():
        assert abs(aupr(y, s) - np.mean(expected)) < 1e-9
        assert abs(aupr(y, s, "micro") - average_precision_score(y, s, average="micro")) < 1e-9
    else:
        assert np.isnan(aupr(y, s))


@pytest.mark.parametrize(("positives", "total"), [(1, 1), (1, 10), (3, 10), (10, 10), (5, 40)])
def test_random_ranking_precision_is_the_mean_ap_of_random_rankings(positives, total):
    y = np.zeros(total, dtype=bool)
    y[:positives] = True
    rng = np.random.default_rng(0)
    sampled = np.mean([average_precision(y, rng.permutation(total)) for _ in range(4000)])
    assert random_ranking_precision(positives, total) == pytest.approx(sampled, abs=0.01)
    if positives < total:
        assert random_ranking_precision(positives, total) > positives / total  # few items: above the share


# --- F1 against thresholds -------------------------------------------------------------------------------------------


def test_peak_f1_by_hand():
    y = [[1, 0], [0, 1]]
    s = [[0.9, 0.8], [0.3, 0.6]]
    # threshold 0.9: 2*1/(1+2); 0.8: 2*1/(2+2); 0.6: 2*2/(3+2); 0.3: 2*2/(4+2)
    curve = f1_threshold_curve(y, s)
    np.testing.assert_allclose(curve["thresholds"], [0.3, 0.6, 0.8, 0.9])
    np.testing.assert_allclose(curve["f1"], [4 / 6, 4 / 5, 2 / 4, 2 / 3], atol=1e-12)
    np.testing.assert_allclose(curve["precision"], [2 / 4, 2 / 3, 1 / 2, 1], atol=1e-12)
    np.testing.assert_allclose(curve["recall"], [1, 1, 1 / 2, 1 / 2], atol=1e-12)
    assert peak_f1(y, s) == pytest.approx((0.8, 0.6), abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_f1_curve_and_peak_match_sklearn(seed):
    y, s = random_case(seed)
    y[0, 0] = True
    precision, recall, thresholds = precision_recall_curve(y.ravel(), s.ravel())
    curve = f1_threshold_curve(y, s)
    np.testing.assert_array_equal(curve["thresholds"], thresholds)
    np.testing.assert_allclose(curve["precision"], precision[:-1], rtol=0, atol=1e-9)
    np.testing.assert_allclose(curve["recall"], recall[:-1], rtol=0, atol=1e-9)
    p, r = precision[:-1], recall[:-1]
    f1 = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=p + r > 0)  # no hit above the threshold: F1 0
    np.testing.assert_allclose(curve["f1"], f1, rtol=0, atol=1e-9)

    best, threshold = peak_f1(y, s)
    assert abs(best - f1.max()) < 1e-9
    assert abs(f1_score(y.ravel(), s.ravel() >= threshold) - best) < 1e-9


@pytest.mark.parametrize("seed", SEEDS)
def test_f1_at_threshold_matches_sklearn(seed):
    y, s = random_case(seed)
    for threshold in (-1.0, 0.0, 0.3, 0.5, float(s.max()), 2.0):  # 2.0 predicts nothing: 0/0 precision is 0
        pred = (s >= threshold).ravel()
        got = f1_at_threshold(y, s, threshold)
        expected = {
            "f1": f1_score(y.ravel(), pred, zero_division=0),
            "precision": precision_score(y.ravel(), pred, zero_division=0),
            "recall": recall_score(y.ravel(), pred, zero_division=0),
        }
        assert got == pytest.approx(expected, abs=1e-9)


def test_f1_threshold_curve_at_given_thresholds():
    y, s = random_case(3)
    thresholds = np.linspace(0, 1, 11)
    curve = f1_threshold_curve(y, s, thresholds)
    for i, threshold in enumerate(thresholds):
        assert curve["f1"][i] == pytest.approx(f1_at_threshold(y, s, threshold)["f1"], abs=1e-12)


def test_deployment_threshold_by_hand():
    # A peaks at 0.1 (F1 6/7), B at 0.6 (F1 1); at 0.3 both score 2/3, and every other threshold is worse for one.
    a = ([1, 0, 1, 1], [0.1, 0.9, 0.3, 0.6])
    b = ([1, 0, 0, 0], [0.6, 0.1, 0.4, 0.2])
    assert peak_f1(*a) == pytest.approx((6 / 7, 0.1))
    assert peak_f1(*b) == pytest.approx((1.0, 0.6))
    threshold, min_f1 = deployment_threshold([a, b])
    assert (threshold, min_f1) == pytest.approx((0.3, 2 / 3))


@pytest.mark.parametrize("seed", range(10))
def test_deployment_threshold_is_exact(seed):
    datasets = [random_case(seed * 3 + i) for i in range(3)]
    threshold, min_f1 = deployment_threshold(datasets)
    grid = np.unique(np.concatenate([s.ravel() for _, s in datasets] + [np.linspace(-0.05, 1.05, 221)]))
    brute = np.min([f1_threshold_curve(y, s, grid)["f1"] for y, s in datasets], axis=0)
    assert abs(min_f1 - brute.max()) < 1e-12
    assert min(f1_at_threshold(y, s, threshold)["f1"] for y, s in datasets) == pytest.approx(min_f1, abs=1e-12)


# --- YouTube-8M and single-label -------------------------------------------------------------------------------------


def test_gap_and_hit_at_1_by_hand():
    y = [[1, 0, 0, 1], [0, 1, 0, 0], [1, 1, 1, 0]]  # 6 ground-truth labels in all
    s = [[0.9, 0.1, 0.2, 0.3], [0.8, 0.6, 0.0, 0.1], [0.7, 0.5, 0.4, 0.05]]
    # top-2 per video, pooled and ranked: .9+ .8- .7+ .6+ .5+ .3+ -> (1 + 2/3 + 3/4 + 4/5 + 5/6) / 6
    assert gap_at_k(y, s, k=2) == pytest.approx((1 + 2 / 3 + 3 / 4 + 4 / 5 + 5 / 6) / 6, abs=1e-12)
    # k=1 keeps .9+ .8- .7+: (1 + 2/3) / 6; the 3 labels outside everyone's top-1 still count in the denominator
    assert gap_at_k(y, s, k=1) == pytest.approx((1 + 2 / 3) / 6, abs=1e-12)
    assert hit_at_1(y, s) == pytest.approx(2 / 3)


def yt8m_gap_reference(y: np.ndarray, s: np.ndarray, k: int) -> float:
    """The YouTube-8M starter code's calculate_gap, loop for loop (no shuffle: the scores here have no ties)."""
    triplets = [(s[v, c], y[v, c]) for v in range(len(s)) for c in np.argpartition(s[v], -k)[-k:]]
    triplets.sort(key=lambda pair: pair[0], reverse=True)
    ap, hits = 0.0, 0
    for i, (_, label) in enumerate(triplets):
        if label:
            hits += 1
            ap += hits / (i + 1) / y.sum()
    return ap


@pytest.mark.parametrize("seed", range(0, 40, 2))  # even seeds: continuous scores
def test_gap_matches_youtube8m_reference(seed):
    y, s = random_case(seed, shape=(12, 30))
    for k in (1, 5, 20):
        assert abs(gap_at_k(y, s, k) - yt8m_gap_reference(y, s, k)) < 1e-9


@pytest.mark.filterwarnings("ignore:'k' .* greater than or equal to 'n_classes'")
@pytest.mark.parametrize("seed", SEEDS)
def test_top_k_accuracy_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    n_classes = int(rng.integers(3, 12))
    scores = np.round(rng.random((60, n_classes)), 1)  # ties: sklearn ranks the higher class index first
    labels = rng.integers(0, n_classes, 60)
    labels[:n_classes] = np.arange(n_classes)
    for k in (1, 2, 5):
        expected = top_k_accuracy_score(labels, scores, k=k, labels=np.arange(n_classes))
        assert abs(top_k_accuracy(labels, scores, k) - expected) < 1e-9


# --- inputs and report -----------------------------------------------------------------------------------------------


def test_accepts_tensors_and_lists():
    torch = pytest.importorskip("torch")
    y, s = random_case(4)
    expected = multilabel_report(y, s, threshold=0.5)
    assert multilabel_report(torch.from_numpy(y), torch.from_numpy(s), threshold=0.5) == expected
    assert multilabel_report(y.astype(int).tolist(), s.tolist(), threshold=0.5) == expected
    assert top_k_accuracy(torch.tensor([0, 1]), torch.tensor([[0.9, 0.1], [0.8, 0.2]])) == 0.5


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: aupr([[1, 0]], [[0.1, 0.2, 0.3]]), "shape"),
        (lambda: aupr([[1, 2]], [[0.1, 0.2]]), "binary"),
        (lambda: aupr([[1, 0]], [[0.1, float("nan")]]), "NaN"),
        (lambda: aupr([1, 0], [0.1, 0.2]), "2 dimensions"),
        (lambda: f1_at_threshold([1, 0], [0.1, 0.2], float("nan")), "threshold contains"),
        (lambda: aupr([[1, 0]], [[0.1, 0.2]], average="weighted"), "macro"),
        (lambda: peak_f1([], []), "empty"),
        (lambda: top_k_accuracy([0, 3], [[0.1, 0.2], [0.3, 0.4]]), r"\[0, 2\)"),
        (lambda: top_k_accuracy([0], [[0.1, 0.2], [0.3, 0.4]]), "shape"),
        (lambda: deployment_threshold([]), "at least one"),
    ],
)
def test_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_multilabel_report_keys():
    y, s = random_case(6)
    report = multilabel_report(y, s, threshold=0.4)
    assert report["aupr_macro"] == aupr(y, s)
    assert report["aupr_micro"] == aupr(y, s, "micro")
    assert report["aupr_samples"] == aupr(y, s, "samples")
    assert (report["peak_f1"], report["peak_f1_threshold"]) == peak_f1(y, s)
    assert {k: report[k] for k in ("f1", "precision", "recall")} == f1_at_threshold(y, s, 0.4)
    assert set(multilabel_report(y, s)) == {
        "aupr_macro",
        "aupr_micro",
        "aupr_samples",
        "skipped_classes",
        "peak_f1",
        "peak_f1_threshold",
    }


# --- the evaluate module -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def evaluate_metric():
    evaluate = pytest.importorskip("evaluate")
    return evaluate, evaluate.load(str(METRIC_DIR))


def test_evaluate_module_multilabel_matches_functions(evaluate_metric, tmp_path):
    evaluate, metric = evaluate_metric
    y, s = random_case(8, shape=(30, 6))
    s = s.astype(np.float32)  # what the module's float32 feature stores
    expected = multilabel_report(y, s, threshold=0.5)
    assert metric.compute(predictions=s, references=y.astype(int), threshold=0.5) == pytest.approx(expected, abs=1e-9)

    by_file = evaluate.load(str(METRIC_DIR / "ovmlv_metrics.py"))
    for start in range(0, 30, 8):  # streamed batches, as in an evaluation loop
        by_file.add_batch(predictions=s[start : start + 8], references=y[start : start + 8].astype(int))
    assert by_file.compute() == pytest.approx(multilabel_report(y, s), abs=1e-9)


def test_evaluate_module_single_label_top_k(evaluate_metric):
    _, metric = evaluate_metric
    rng = np.random.default_rng(9)
    scores = rng.random((40, 7)).astype(np.float32)
    labels = rng.integers(0, 7, 40)
    got = metric.compute(predictions=scores, references=labels.tolist(), k=(1, 5))
    assert got == pytest.approx({f"top_{k}_accuracy": top_k_accuracy(labels, scores, k) for k in (1, 5)})
