"""Evaluation results as the model card takes them: the schema of `results.json` (which `ovmlv evaluate` writes
and `ovmlv export --eval` reads; hub_cards/README.md describes it), its reader and the card's results table.

A leaf module: evaluation and export both import it, it imports neither.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

METRIC_NAMES = {
    "aupr_macro": "AUPR (macro)",
    "aupr_micro": "AUPR (micro)",
    "aupr_samples": "AUPR (per video)",
    "peak_f1": "Peak F1",
    "peak_f1_threshold": "Peak-F1 threshold",
    "threshold": "Threshold",
    "f1": "F1 at threshold",
    "precision": "Precision at threshold",
    "recall": "Recall at threshold",
    "top_1_accuracy": "Top-1 accuracy",
    "top_5_accuracy": "Top-5 accuracy",
    "num_videos": "Videos",
    "skipped_classes": "Classes without positives",
}
NOT_SCORES = {"num_videos", "skipped_classes", "peak_f1_threshold", "threshold"}
AT_THRESHOLD = {"f1", "precision", "recall"}


class EvalResultsError(ValueError):
    """A results file that does not follow the schema; the message names the file and the entry."""


@dataclass(frozen=True)
class DatasetResult:
    dataset: str
    split: str
    metrics: dict[str, float]  # finite values only
    dataset_id: str | None = None
    config: str | None = None


@dataclass(frozen=True)
class EvalReport:
    results: list[DatasetResult] = field(default_factory=list)
    model_name: str | None = None


def read_eval_results(path: str | Path) -> EvalReport:
    """Parse and check an evaluation results file (schema in this module's docstring)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise EvalResultsError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise EvalResultsError(f'{path} must be a JSON object with a "results" list (see hub_cards/README.md).')
    if not isinstance(data.get("model_name", ""), str):
        raise EvalResultsError(f'{path}: "model_name" must be a string.')
    results = [_dataset_result(entry, f"{path}: results[{i}]") for i, entry in enumerate(data["results"])]
    return EvalReport(results=results, model_name=data.get("model_name"))


def _dataset_result(entry: Any, where: str) -> DatasetResult:
    if not isinstance(entry, dict) or not isinstance(entry.get("dataset"), str) or not entry["dataset"]:
        raise EvalResultsError(f'{where} needs a "dataset" name.')
    metrics = entry.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        raise EvalResultsError(f'{where} needs a "metrics" object, e.g. {{"aupr_macro": 0.63}}.')
    for key in ("split", "dataset_id", "config"):
        if key in entry and not isinstance(entry[key], str):
            raise EvalResultsError(f"{where}: {key!r} must be a string, got {entry[key]!r}.")
    for name, value in metrics.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise EvalResultsError(f"{where}: metric {name!r} must be a number or null, got {value!r}.")
    return DatasetResult(
        dataset=entry["dataset"],
        split=entry.get("split", "test"),
        metrics={name: value for name, value in metrics.items() if value is not None and math.isfinite(value)},
        dataset_id=entry.get("dataset_id"),
        config=entry.get("config"),
    )


def results_table(report: EvalReport) -> tuple[list[str], list[list[str]]]:
    """(column titles, rows) of the card's results table: known metrics in a fixed order, then the others."""
    seen = dict.fromkeys(name for result in report.results for name in result.metrics)
    names = [name for name in METRIC_NAMES if name in seen] + [name for name in seen if name not in METRIC_NAMES]
    rows = [
        [result.dataset, result.split]
        + [_format_number(result.metrics[name]) if name in result.metrics else "–" for name in names]
        for result in report.results
    ]
    return ["Dataset", "Split"] + [METRIC_NAMES.get(name, name) for name in names], rows


def _format_number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:.3f}"
