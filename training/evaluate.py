"""`ovmlv evaluate`: evaluate a saved model on labelled manifests (docs/design.md §8).

    ovmlv evaluate --model outputs/run/final --out outputs/eval \\
        --manifest data/k400_val.jsonl --name K400 \\
        --manifest data/tao_val.jsonl --kinds data/tao_kinds.json --name TAO --dataset-id tao --no-calibrate

`evaluate_saved_model` is the typed entry point: the command turns its options into `EvalManifest`s and
`EvaluateOptions` and calls it, and so does any library caller (the organism's runs), never the command line.
Reads top to bottom: model and processor -> every manifest read and checked (before any video is decoded) -> per
set, its vocabulary embedded (labels already in the model's label bank are reused, only the others encoded) and
every video scored with the training's own `evaluate` (the saved processor's clips x frames, clip embeddings
averaged; unreadable videos skipped and counted) -> the deployment threshold over the calibrating sets -> the files of
`eval_reports` in `out`, and the Markdown report returned (messages go to the log).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from transformers.utils import CONFIG_NAME

from ovmlv.modeling_ovmlv import LabelBank, OvmlvConfig, OvmlvModel
from ovmlv.modeling_ovmlv.atomic_files import write_text_atomically
from ovmlv.modeling_ovmlv.label_bank import embed_labels
from ovmlv.modeling_ovmlv.pipeline_ovmlv import decision_threshold
from ovmlv.processing import OvmlvProcessor
from ovmlv.saved_models import load_model
from ovmlv.training.config import DEFAULT_SPLIT, EvalConfig, ManifestConfig
from ovmlv.training.eval_loop import EvalSet, build_eval_set, evaluate, evaluation_report
from ovmlv.training.eval_reports import EvaluatedSet, import_pyplot, summarise, write_outputs
from ovmlv.training.label_interpolation import (
    InterpolationCurve,
    InterpolationSet,
    check_interpolatable,
    curve_markdown,
    interpolation_curve,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvalManifest:
    """One labelled set to evaluate, with what the model card says of it."""

    spec: ManifestConfig  # manifest, vocabulary, kinds, name, calibrate
    dataset_id: str | None = None  # the Hub dataset id of the card's model-index
    split: str = DEFAULT_SPLIT  # the split shown on the card
    group: str | None = None  # reported with the group's other sets as mean ± std (e.g. K600's 3 splits)


@dataclass(frozen=True)
class EvaluateOptions:
    """How to evaluate. Frames and clips default to the saved processor's, as the model was trained and evaluated."""

    threshold: float | None = None  # report F1/precision/recall at it; None: the model's
    num_frames: int | None = None
    num_clips: int | None = None
    batch_size: int = EvalConfig.per_device_batch_size  # videos per batch
    label_batch_size: int = EvalConfig.label_batch_size  # labels per label-encoder call
    num_workers: int = 0  # DataLoader processes decoding videos
    label_interpolation: bool = False  # also score toward frozen class names, and choose the ratio on calibrating sets
    save_threshold: bool = True  # write the deployment threshold into a local model folder's config.json
    model_name: str | None = None  # the model card's name for these results; None: the repo name
    plot: bool = False  # also draw the F1-threshold curves (matplotlib)
    save_scores: bool = False  # also write every set's scores to `out`/scores/{name}.npz


@dataclass(frozen=True)
class SavedModelEvaluation:
    summary: dict[str, Any]  # what report.json holds: every set's report and the deployment threshold
    markdown: str  # the report as results.md holds it (and the label interpolation curve, when asked for)


def check_set_names(manifests: list[EvalManifest]) -> None:
    """Set names must be unique: they key every output."""
    names = [item.spec.name for item in manifests]
    if duplicates := sorted({name for name in names if names.count(name) > 1}):
        raise ValueError(f"Two manifests are named {duplicates}; give each its own --name.")


def vocabulary_embeddings(
    model: OvmlvModel, processor: OvmlvProcessor, labels: list[str], batch_size: int
) -> tuple[torch.Tensor, int]:
    """(C, D) embeddings of `labels` and how many had to be encoded: the label bank's rows are reused.

    The bank grows in memory with what is encoded (never saved), so sets sharing labels encode them once.
    """

    def encode(missing: list[str]) -> torch.Tensor:
        return embed_labels(missing, model, processor, batch_size, progress=True)

    if model.label_bank is None:
        model.label_bank = LabelBank(labels, encode(labels))
        return model.label_bank.embeddings, len(labels)
    num_missing = sum(label not in model.label_bank for label in labels)
    return model.label_bank.embeddings_for(labels, encode), num_missing


def evaluate_saved_model(
    model_id: str, out: Path, manifests: list[EvalManifest], options: EvaluateOptions = EvaluateOptions()
) -> SavedModelEvaluation | None:
    """Evaluate the saved model `model_id` (a folder or a Hub id) on every set, write the files into `out` and, when
    asked and the model is a local folder, its deployment threshold into it. None on processes other than the main
    one, which write nothing."""
    check_set_names(manifests)
    if options.plot:
        import_pyplot()  # fail now, not after the inference
    model, processor = load_model(model_id)
    if options.label_interpolation:
        check_interpolatable(model)  # before any video is decoded
    threshold = decision_threshold(model.config, options.threshold)
    num_frames = options.num_frames or processor.num_frames
    num_clips = options.num_clips or processor.num_clips
    config = EvalConfig(
        per_device_batch_size=options.batch_size,
        num_frames=num_frames,
        num_clips=num_clips,
        label_batch_size=options.label_batch_size,
    )
    eval_sets = [build_eval_set(item.spec, processor, config, options.num_workers) for item in manifests]
    accelerator = Accelerator()
    model.to(accelerator.device)

    evaluated = []
    for item, eval_set in zip(manifests, eval_sets, strict=True):
        eval_set.dataloader = accelerator.prepare_data_loader(eval_set.dataloader)
        labels, name = eval_set.vocabulary.labels, item.spec.name
        label_embeds, num_encoded = vocabulary_embeddings(model, processor, labels, options.label_batch_size)
        if accelerator.is_main_process:
            logger.info("%s: %d labels, %d encoded, the others already embedded", name, len(labels), num_encoded)
        result = evaluate(model, processor, eval_set, accelerator, label_embeds, threshold, progress=True)
        if accelerator.is_main_process and result.report["num_unreadable_videos"]:
            logger.warning("%s: skipped %d unreadable video(s)", name, result.report["num_unreadable_videos"])
        evaluated.append(EvaluatedSet(item.spec, result, item.dataset_id, item.split, item.group))

    curve = None
    if options.label_interpolation:
        curve = interpolation_curve(
            model,
            processor,
            [
                InterpolationSet(item.spec.name, item.result.labels, item.result.targets, item.result.video_embeds,
                                 item.spec.calibrate)
                for item in evaluated
            ],
            options.label_batch_size,
        )  # fmt: skip
        if curve.chosen is not None:
            rescore_at(curve, evaluated, eval_sets, threshold)
    summary = summarise(model_id, threshold, evaluated, num_frames, num_clips)
    if curve is not None:
        summary["label_interpolation"] = curve.as_dict()
    if not accelerator.is_main_process:
        return None
    markdown = write_outputs(out, summary, evaluated, options.model_name, options.plot, options.save_scores)
    if curve is not None:
        markdown += "\n\n" + curve_markdown(curve)
    logger.info("Wrote the results to %s", out)
    if options.save_threshold and summary["deployment"] and Path(model_id).is_dir():
        save_deployment(Path(model_id), summary["deployment"], curve, processor, options.label_batch_size)
    return SavedModelEvaluation(summary, markdown)


def save_deployment(
    folder: Path, deployment: dict[str, Any], curve: InterpolationCurve | None, processor: OvmlvProcessor, batch: int
) -> None:
    """The deployment threshold (and the label interpolation ratio chosen with it) written into a model folder,
    its label bank rebuilt at that ratio."""
    ratio = None if curve is None else curve.chosen
    save_calibrated_threshold(folder, deployment["threshold"], deployment["calibrated_on"], ratio)
    if ratio is not None:
        rebuild_saved_bank(folder, processor, batch)
    logger.info(
        "Saved the deployment threshold %.4f (calibrated on %s) into %s",
        deployment["threshold"],
        ", ".join(deployment["calibrated_on"]),
        folder / CONFIG_NAME,
    )


def rescore_at(
    curve: InterpolationCurve, evaluated: list[EvaluatedSet], eval_sets: list[EvalSet], threshold: float | None
) -> None:
    """Every set's scores and report replaced by those at the curve's chosen ratio."""
    index = curve.ratios.index(curve.chosen)
    for item, eval_set in zip(evaluated, eval_sets, strict=True):
        result = item.result
        result.scores = curve.scores[item.spec.name][index]
        unreadable = result.report["num_unreadable_videos"]
        result.report = evaluation_report(
            result.targets, result.scores, eval_set.vocabulary, eval_set.kinds, threshold
        )
        result.report["num_unreadable_videos"] = unreadable


def save_calibrated_threshold(
    folder: Path, threshold: float, calibrated_on: list[str], label_interpolation: float | None = None
) -> None:
    """Write the threshold the pipeline should use (and the label interpolation ratio chosen with it, when one was)
    into the model folder's config.json (atomically)."""
    config = OvmlvConfig.from_pretrained(folder)
    config.deployment_config.threshold, config.deployment_config.threshold_calibrated_on = threshold, calibrated_on
    if label_interpolation is not None:
        config.deployment_config.label_interpolation = label_interpolation
    write_text_atomically(folder / CONFIG_NAME, config.to_json_string())


def rebuild_saved_bank(folder: Path, processor: OvmlvProcessor, batch_size: int) -> None:
    """The label bank beside a model re-encoded at the label interpolation ratio just saved in its config (its
    embeddings depend on it); nothing when the folder has no bank. The model is loaded afresh: the one evaluated holds a bank grown
    with the evaluation's labels in memory."""
    saved = OvmlvModel.from_pretrained(folder).eval()
    if saved.label_bank is None:
        return
    bank = LabelBank.build(saved, processor, saved.label_bank.labels, batch_size, progress=False)
    bank.save(folder)
