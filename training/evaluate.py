"""`ovmlv evaluate`: evaluate a saved model on labelled manifests (docs/design.md §8).

    ovmlv evaluate --model outputs/run/final --out outputs/eval \\
        --manifest data/k400_val.jsonl --name K400 \\
        --manifest data/tao_val.jsonl --kinds data/tao_kinds.json --name TAO --dataset-id tao --no-calibrate

Options after a `--manifest` belong to it (vocabulary, kinds, name, dataset id, split, calibration). Reads top to
bottom: arguments -> model and processor -> every manifest read and checked (before any video is decoded) -> per
set, its vocabulary embedded (labels already in the model's label bank are reused, only the others encoded) and
every video scored with the training's own `evaluate` (the saved processor's clips x frames, clip embeddings
averaged; unreadable videos skipped and counted) -> the deployment threshold over the calibrating sets -> the files of
`evaluation_files` in `--out`, and the Markdown table on stdout (messages go to stderr).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import torch
from accelerate import Accelerator
from transformers.utils import CONFIG_NAME

from ovmlv.arguments import EXIT_OK
from ovmlv.modeling_ovmlv import LabelBank, OvmlvConfig, OvmlvModel
from ovmlv.modeling_ovmlv.atomic_files import write_text_atomically
from ovmlv.modeling_ovmlv.label_bank import embed_labels
from ovmlv.modeling_ovmlv.pipeline_ovmlv import decision_threshold
from ovmlv.processing import OvmlvProcessor
from ovmlv.saved_models import load_model
from ovmlv.training.config import DEFAULT_SPLIT, EvalConfig, ManifestConfig
from ovmlv.training.evaluation import EvalSet, build_eval_set, evaluate, evaluation_report
from ovmlv.training.evaluation_files import EvaluatedSet, import_pyplot, summarise, write_outputs
from ovmlv.training.label_interpolation import (
    InterpolationCurve,
    InterpolationSet,
    check_interpolatable,
    curve_markdown,
    interpolation_curve,
)

logger = logging.getLogger(__name__)


def manifest_specs(manifests: list[dict]) -> list[tuple[ManifestConfig, str | None, str, str | None]]:
    """(ManifestConfig, dataset id, split, group) per `--manifest`; set names must be unique (they key every
    output)."""
    specs = [
        (
            ManifestConfig(
                manifest=options["manifest"],
                vocabulary=options.get("vocabulary"),
                kinds=options.get("kinds"),
                name=options.get("name"),
                calibrate=options.get("calibrate", True),
            ),
            options.get("dataset_id"),
            options.get("split", DEFAULT_SPLIT),
            options.get("group"),
        )
        for options in manifests
    ]
    names = [spec.name for spec, *_ in specs]
    if duplicates := sorted({name for name in names if names.count(name) > 1}):
        raise ValueError(f"Two manifests are named {duplicates}; give each its own --name.")
    return specs


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


def run(args: argparse.Namespace) -> int:
    """Evaluate, write the files and print the Markdown report."""
    specs = manifest_specs(args.manifests)
    if args.plot:
        import_pyplot()  # fail now, not after the inference
    model, processor = load_model(args.model)
    if args.label_interpolation:
        check_interpolatable(model)  # before any video is decoded
    threshold = decision_threshold(model.config, args.threshold)
    num_frames, num_clips = args.num_frames or processor.num_frames, args.num_clips or processor.num_clips
    config = EvalConfig(
        per_device_batch_size=args.batch_size,
        num_frames=num_frames,
        num_clips=num_clips,
        label_batch_size=args.label_batch_size,
    )
    eval_sets = [build_eval_set(spec, processor, config, args.num_workers) for spec, *_ in specs]
    accelerator = Accelerator()
    model.to(accelerator.device)

    evaluated = []
    for (spec, dataset_id, split, group), eval_set in zip(specs, eval_sets, strict=True):
        eval_set.dataloader = accelerator.prepare_data_loader(eval_set.dataloader)
        labels = eval_set.vocabulary.labels
        label_embeds, num_encoded = vocabulary_embeddings(model, processor, labels, args.label_batch_size)
        if accelerator.is_main_process:
            logger.info("%s: %d labels, %d encoded, the others already embedded", spec.name, len(labels), num_encoded)
        result = evaluate(
            model, processor, eval_set, accelerator, args.label_batch_size, label_embeds, threshold, progress=True
        )
        if accelerator.is_main_process and result.report["num_unreadable_videos"]:
            logger.warning("%s: skipped %d unreadable video(s)", spec.name, result.report["num_unreadable_videos"])
        evaluated.append(EvaluatedSet(spec, result, dataset_id, split, group))

    curve = None
    if args.label_interpolation:
        curve = interpolation_curve(
            model,
            processor,
            [
                InterpolationSet(item.spec.name, item.result.labels, item.result.targets, item.result.video_embeds,
                                 item.spec.calibrate)
                for item in evaluated
            ],
            args.label_batch_size,
        )  # fmt: skip
        if curve.chosen is not None:
            rescore_at(curve, evaluated, eval_sets, threshold)
    summary = summarise(args.model, threshold, evaluated, num_frames, num_clips)
    if curve is not None:
        summary["label_interpolation"] = curve.as_dict()
    if not accelerator.is_main_process:
        return EXIT_OK
    markdown = write_outputs(args.out, summary, evaluated, args.model_name, args.plot, args.save_scores)
    if curve is not None:
        markdown += "\n\n" + curve_markdown(curve)
    logger.info("Wrote the results to %s", args.out)
    if args.save_threshold and summary["deployment"] and Path(args.model).is_dir():
        deployment = summary["deployment"]
        ratio = None if curve is None else curve.chosen
        save_calibrated_threshold(Path(args.model), deployment["threshold"], deployment["calibrated_on"], ratio)
        if ratio is not None:
            rebuild_saved_bank(Path(args.model), processor, args.label_batch_size)
        logger.info(
            "Saved the deployment threshold %.4f (calibrated on %s) into %s",
            deployment["threshold"],
            ", ".join(deployment["calibrated_on"]),
            Path(args.model) / CONFIG_NAME,
        )
    print(markdown)
    return EXIT_OK


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
