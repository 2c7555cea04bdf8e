"""What `ovmlv evaluate` writes: one summary of every set, rendered as the files people and tools read.

- `report.json`: everything (per-kind numbers, unreadable videos, the deployment threshold and each set's F1,
  precision and recall at it), the source of the files below.
- `results.json`: the model card's evaluation results (schema: hub_cards/README.md), for
  `ovmlv export --eval`; a label kind is a result of its own, its dataset config.
- `results.md`: the card's table of `results.json`, and the deployment threshold's table.
- `curves.json` (and `f1_vs_threshold.png` on request): micro F1, precision and recall against one global
  threshold per set, as the paper's Fig. 6.
- `scores/{set}.npz` on request: the raw scores, so any metric can be recomputed without the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ovmlv.hub_cards.eval_results import METRIC_NAMES, read_eval_results, results_table
from ovmlv.modeling_ovmlv.atomic_files import write_atomically, write_text_atomically

from .config import ManifestConfig
from .eval_loop import EvalResult, write_json
from .metrics import deployment_threshold, f1_at_threshold, f1_threshold_curve

CURVE_THRESHOLDS = np.linspace(0.0, 1.0, 101)  # every 0.01 of probability: the axis of the paper's Fig. 6
PLOT_NAME = "f1_vs_threshold.png"


@dataclass
class EvaluatedSet:
    """One manifest's evaluation, and how the model card names it."""

    spec: ManifestConfig
    result: EvalResult
    dataset_id: str | None  # Hub dataset id for the card's model-index
    split: str
    group: str | None = None  # sets reported together as mean ± std (e.g. the three K600 zero-shot splits)


# Metrics a group of sets reports as mean and standard deviation, when all its sets have them.
GROUP_METRICS = ("aupr_macro", "peak_f1", "top_1_accuracy", "top_5_accuracy")


def group_summaries(sets: list[EvaluatedSet]) -> dict[str, dict[str, Any]]:
    """Per group, each metric's mean and (population) standard deviation over its sets, and the sets' names."""
    groups: dict[str, list[EvaluatedSet]] = {}
    for item in sets:
        if item.group is not None:
            groups.setdefault(item.group, []).append(item)
    summaries = {}
    for group, members in groups.items():
        metrics = {}
        for metric in GROUP_METRICS:
            values = [item.result.report.get(metric) for item in members]
            if all(value is not None for value in values):
                metrics[metric] = {"mean": float(np.mean(values)), "std": float(np.std(values))}
        summaries[group] = {"sets": [item.spec.name for item in members], **metrics}
    return summaries


def summarise(
    model: str, threshold: float | None, sets: list[EvaluatedSet], num_frames: int, num_clips: int
) -> dict[str, Any]:
    """The report of every set, plus the deployment threshold: the one maximising the minimum F1 over the
    calibrating sets (paper §4.6), with every set's F1, precision and recall at it."""
    calibrating = [item for item in sets if item.spec.calibrate]
    deployment = None
    if calibrating:
        best, min_f1 = deployment_threshold([(item.result.targets, item.result.scores) for item in calibrating])
        deployment = {"threshold": best, "min_f1": min_f1, "calibrated_on": [item.spec.name for item in calibrating]}
    datasets = {
        item.spec.name: {
            **item.result.report,
            "num_labels": int(item.result.scores.shape[1]),
            "dataset_id": item.dataset_id,
            "split": item.split,
            "calibrate": item.spec.calibrate,
            "at_deployment_threshold": f1_at_threshold(
                item.result.targets, item.result.scores, deployment["threshold"]
            )
            if deployment
            else None,
        }
        for item in sets
    }
    return {
        "model": model,
        "num_frames": num_frames,
        "num_clips": num_clips,
        "threshold": threshold,
        "deployment": deployment,
        "datasets": datasets,
        "groups": group_summaries(sets),
    }


def card_results(summary: dict[str, Any], model_name: str | None) -> dict[str, Any]:
    """`results.json`: per set its overall metrics, and per label kind a result named `{set} ({kind})` whose
    config is the kind (the card's table shows names, not configs). Only the card's known metric names."""

    def entry(dataset: str, report: dict[str, Any], card: dict[str, Any], kind: str | None = None) -> dict[str, Any]:
        names = {"dataset": dataset, "dataset_id": card["dataset_id"], "config": kind, "split": card["split"]}
        metrics = {name: value for name, value in report.items() if name in METRIC_NAMES}
        return {**{key: value for key, value in names.items() if value is not None}, "metrics": metrics}

    results = []
    for name, report in summary["datasets"].items():
        results.append(entry(name, report, report))
        for kind, kind_report in report.get("per_kind", {}).items():
            results.append(entry(f"{name} ({kind})", kind_report, report, kind))
    return {"model_name": model_name, "results": results} if model_name else {"results": results}


def markdown_table(columns: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _number(value: float | None) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.3f}"


def markdown_report(summary: dict[str, Any], results_path: Path) -> str:
    """`results.md`: the card's results table, read back from `results_path` by the card's own reader (so the file
    is checked as it is written), then every set's videos and its F1/precision/recall at the deployment threshold."""
    columns, rows = results_table(read_eval_results(results_path))
    deployment = summary["deployment"]
    if deployment:
        calibration = (
            f"Deployment threshold **{deployment['threshold']:.4f}**: it maximises the minimum F1 over "
            f"{', '.join(deployment['calibrated_on'])} (paper §4.6), which is {deployment['min_f1']:.3f}."
        )
    else:
        calibration = "No set calibrates (all --no-calibrate), so there is no deployment threshold."
    set_rows = [
        [
            name,
            str(report["num_labels"]),
            str(report["num_videos"]),
            str(report["num_unreadable_videos"]),
            "yes" if report["calibrate"] else "no",
            *(_number((report["at_deployment_threshold"] or {}).get(key)) for key in ("f1", "precision", "recall")),
        ]
        for name, report in summary["datasets"].items()
    ]
    set_columns = ["Dataset", "Labels", "Videos", "Unreadable videos", "Calibrates"]
    set_columns += ["F1 at deployment", "Precision at deployment", "Recall at deployment"]
    threshold = summary["threshold"]
    at_threshold = (
        f"F1, precision and recall at threshold {threshold:.4f}."
        if threshold is not None
        else "The model's threshold is uncalibrated: F1, precision and recall are shown at the deployment threshold."
    )
    parts = [
        f"# Evaluation of {summary['model']}",
        f"{summary['num_clips']} clips x {summary['num_frames']} frames per video. {at_threshold}",
        markdown_table(columns, rows),
        calibration,
        markdown_table(set_columns, set_rows),
    ]
    if summary["groups"]:
        parts.append(group_table(summary["groups"]))
    return "\n\n".join(parts)


def group_table(groups: dict[str, dict[str, Any]]) -> str:
    """Mean ± standard deviation of each metric over each group's sets (e.g. K600 zero-shot: three splits)."""
    metrics = [metric for metric in GROUP_METRICS if any(metric in group for group in groups.values())]
    rows = [
        [name, ", ".join(group["sets"])]
        + [
            f"{_number(group[metric]['mean'])} ± {_number(group[metric]['std'])}" if metric in group else "–"
            for metric in metrics
        ]
        for name, group in groups.items()
    ]
    return markdown_table(["Group", "Sets", *(METRIC_NAMES[metric] for metric in metrics)], rows)


def threshold_curves(summary: dict[str, Any], sets: list[EvaluatedSet]) -> dict[str, Any]:
    """`curves.json`: micro F1/precision/recall of each set at every threshold of `CURVE_THRESHOLDS`."""
    datasets = {}
    for item in sets:
        curve = f1_threshold_curve(item.result.targets, item.result.scores, CURVE_THRESHOLDS)
        datasets[item.spec.name] = {key: curve[key].tolist() for key in ("f1", "precision", "recall")}
    deployment = summary["deployment"]
    return {
        "thresholds": CURVE_THRESHOLDS.tolist(),
        "threshold": summary["threshold"],
        "deployment_threshold": deployment["threshold"] if deployment else None,
        "datasets": datasets,
    }


def import_pyplot():
    """matplotlib's pyplot on the Agg backend (files only, no display); matplotlib is an optional dependency."""
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError(f"--plot needs matplotlib ({err}): pip install 'ovmlv[train]'") from err
    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def plot_f1_curves(curves: dict[str, Any], path: Path) -> None:
    """F1 against the threshold per set, with the reported and the deployment thresholds marked."""
    pyplot = import_pyplot()
    figure, axes = pyplot.subplots(figsize=(6.4, 4.2))
    for name, curve in curves["datasets"].items():
        axes.plot(curves["thresholds"], curve["f1"], label=name)
    if curves["threshold"] is not None:
        axes.axvline(curves["threshold"], color="gray", linestyle=":", label=f"threshold {curves['threshold']:.2f}")
    if curves["deployment_threshold"] is not None:
        deployment = curves["deployment_threshold"]
        axes.axvline(deployment, color="black", linestyle="--", label=f"deployment threshold {deployment:.2f}")
    axes.set(xlabel="threshold", ylabel="micro F1", xlim=(0, 1), ylim=(0, 1), title="F1 against the threshold")
    axes.legend()
    figure.tight_layout()
    write_atomically(path, lambda temporary: figure.savefig(temporary, dpi=120, format="png"))
    pyplot.close(figure)


def save_scores(directory: Path, sets: list[EvaluatedSet]) -> None:
    """`{set}.npz`: scores (N, C), targets (N, C), labels (C,) and videos (N,) of the readable videos."""
    directory.mkdir(parents=True, exist_ok=True)
    for item in sets:
        write_atomically(directory / f"{item.spec.name}.npz", partial(_write_scores, result=item.result))


def _write_scores(path: str, result: EvalResult) -> None:
    with open(path, "wb") as file:  # a file object: given a name without ".npz", numpy would add one
        np.savez_compressed(
            file,
            scores=result.scores,
            targets=result.targets,
            labels=np.array(result.labels),
            videos=np.array(result.videos),
        )


def write_outputs(
    out_dir: Path, summary: dict[str, Any], sets: list[EvaluatedSet], model_name: str | None, plot: bool, scores: bool
) -> str:
    """Write every file into `out_dir`; returns the Markdown report."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "report.json", summary)
    write_json(out_dir / "results.json", card_results(summary, model_name))
    markdown = markdown_report(summary, out_dir / "results.json")
    write_text_atomically(out_dir / "results.md", markdown + "\n")
    curves = threshold_curves(summary, sets)
    write_json(out_dir / "curves.json", curves)
    if plot:
        plot_f1_curves(curves, out_dir / PLOT_NAME)
    if scores:
        save_scores(out_dir / "scores", sets)
    return markdown
