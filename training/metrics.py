"""Evaluation metrics of the paper (docs/design.md §8) for training and benchmark code: `from training.metrics import aupr`.

A re-export. The functions live in `training/ovmlv_metrics/functional.py`, next to the `evaluate` script that needs
them copied alongside it; importing them from here does not import `evaluate`.
"""

from ovmlv.training.ovmlv_metrics.functional import (
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

__all__ = [
    "aupr",
    "average_precision",
    "deployment_threshold",
    "f1_at_threshold",
    "f1_threshold_curve",
    "gap_at_k",
    "hit_at_1",
    "multilabel_report",
    "peak_f1",
    "per_class_average_precision",
    "random_ranking_precision",
    "top_k_accuracy",
]
