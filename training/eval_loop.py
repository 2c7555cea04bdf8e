"""Evaluation of every validation video against its whole vocabulary (docs/design.md §8), during training and after.

Label embeddings are computed once per evaluation (model in eval mode) or taken from a saved model's label bank,
video embeddings per batch (4 x 8 frames by default, the clip embeddings averaged), and scores are gathered over
processes before the metrics: macro and micro AUPR and peak F1 with its threshold (and F1/precision/recall at a
given threshold), overall and per label kind when the manifest comes with a kinds file. Training calls
`evaluate_all`; `ovmlv evaluate` calls `evaluate` on a saved model, so both report the same numbers.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ovmlv.modeling_ovmlv.atomic_files import write_text_atomically
from ovmlv.modeling_ovmlv.label_bank import LabelBank, embed_labels
from ovmlv.processing import OvmlvProcessor

from .batching import Vocabulary, multi_hot
from .config import EvalConfig, ManifestConfig
from .data import VideoClips, collate_clips, manifest_vocabulary, read_label_kinds, read_manifest
from .metrics import multilabel_report, top_k_accuracy

SINGLE_LABEL_TOP_K = (1, 5)


@dataclass
class EvalSet:
    name: str
    dataloader: DataLoader
    vocabulary: Vocabulary
    kinds: dict[str, str] | None  # label -> kind, for per-kind metrics
    calibrate: bool  # its scores take part in choosing the exported threshold


@dataclass
class EvalResult:
    targets: np.ndarray  # (N, C) bool, readable videos only
    scores: np.ndarray  # (N, C) probabilities
    report: dict[str, Any]
    labels: list[str]  # the vocabulary, one label per column
    videos: list[str]  # the readable videos, one per row
    video_embeds: torch.Tensor | None = None  # (N, D), readable videos only: to score other label embeddings


def build_eval_set(spec: ManifestConfig, processor: OvmlvProcessor, config: EvalConfig, num_workers: int) -> EvalSet:
    records = read_manifest(spec)
    if not any(records["labels"]):
        raise ValueError(
            f"Manifest {spec.manifest} has no labels: every row's `labels` is empty, so there is nothing to evaluate."
        )
    clips = VideoClips(records, processor, config.num_frames, config.num_clips, sampling="uniform", replace_bad=False)
    dataloader = DataLoader(
        clips, batch_size=config.per_device_batch_size, num_workers=num_workers, collate_fn=collate_clips
    )
    kinds = read_label_kinds(spec.kinds) if spec.kinds else None
    return EvalSet(spec.name, dataloader, Vocabulary(manifest_vocabulary(spec, records)), kinds, spec.calibrate)


@torch.no_grad()
def evaluate(
    model: torch.nn.Module,
    processor: OvmlvProcessor,
    eval_set: EvalSet,
    accelerator: Accelerator,
    label_embeds: torch.Tensor,
    threshold: float | None = None,
    progress: bool = False,
) -> EvalResult:
    """Scores of every readable validation video for every vocabulary label, and their report (on every process).

    label_embeds: (C, D) embeddings of the vocabulary in its order, encoded by the caller once for all its sets
    (`embed_vocabularies` in training, the saved label bank plus the rest in `ovmlv evaluate`). threshold: also
    report F1/precision/recall at it.
    """
    model = accelerator.unwrap_model(model)
    was_training = model.training
    model.eval()
    label_embeds = label_embeds.to(accelerator.device)
    all_scores, all_targets, all_valid, all_embeds = [], [], [], []
    batches = tqdm(
        eval_set.dataloader,
        desc=f"Evaluating {eval_set.name}",
        unit="batch",
        disable=not progress or not accelerator.is_local_main_process,
    )
    for batch in batches:
        with accelerator.autocast():
            video_embeds = model.get_video_features(batch["pixel_values_videos"])  # (B, D)
            scores = model.logits(video_embeds, label_embeds).sigmoid().float()  # (B, C)
        targets = multi_hot(batch["labels"], eval_set.vocabulary.index).to(accelerator.device)
        scores, targets, valid, video_embeds = accelerator.gather_for_metrics(
            (scores, targets, batch["valid"], video_embeds.float())
        )
        all_embeds.append(video_embeds.cpu())
        all_scores.append(scores.cpu())
        all_targets.append(targets.cpu())
        all_valid.append(valid.cpu())
    model.train(was_training)
    valid = torch.cat(all_valid).numpy()
    if not valid.any():
        raise ValueError(
            f"None of the {valid.size} videos of {eval_set.name} could be read; check its manifest's paths."
        )
    scores = torch.cat(all_scores).numpy()[valid]
    targets = torch.cat(all_targets).numpy()[valid].astype(bool)
    report = evaluation_report(targets, scores, eval_set.vocabulary, eval_set.kinds, threshold)
    report["num_unreadable_videos"] = int((~valid).sum())
    videos = [video for video, ok in zip(eval_set.dataloader.dataset.records["video"], valid, strict=True) if ok]
    video_embeds = torch.cat(all_embeds)[torch.from_numpy(valid)]
    return EvalResult(targets, scores, report, eval_set.vocabulary.labels, videos, video_embeds)


@dataclass
class EvalRound:
    """One evaluation of every validation set at a training step."""

    results: dict[str, EvalResult]
    label_bank: LabelBank  # every distinct label of the sets, as this round encoded it: the bank to export


def evaluate_all(
    model: torch.nn.Module,
    processor: OvmlvProcessor,
    eval_sets: list[EvalSet],
    accelerator: Accelerator,
    config: EvalConfig,
    step: int,
    output_dir: Path,
) -> EvalRound:
    """Evaluate every set at `step`: log the metrics to the trackers, write `eval_step_{step}.json`.

    Each distinct label is encoded once for all the sets (`embed_vocabularies`). Runs in a forked RNG: evaluation
    (data loader iterators included) must not shift the training RNG stream, or a resumed run, which does not
    repeat the evaluation, would train differently from an uninterrupted one.
    """
    with torch.random.fork_rng(devices=[]):
        bank = embed_vocabularies(model, processor, eval_sets, accelerator, config.label_batch_size)
        results = {
            eval_set.name: evaluate(
                model, processor, eval_set, accelerator, bank.embeddings_for(eval_set.vocabulary.labels)
            )
            for eval_set in eval_sets
        }
    reports = {name: result.report for name, result in results.items()}
    accelerator.log(loggable_metrics(reports), step=step)
    if accelerator.is_main_process:
        write_json(output_dir / f"eval_step_{step}.json", {"step": step, "datasets": reports})
    return EvalRound(results, bank)


@torch.no_grad()
def embed_vocabularies(
    model: torch.nn.Module,
    processor: OvmlvProcessor,
    eval_sets: list[EvalSet],
    accelerator: Accelerator,
    label_batch_size: int,
) -> LabelBank:
    """Every distinct label of the sets' vocabularies encoded once, in eval mode. Validation sets share most of
    their labels (world v2's three list 7,584 labels, 3,906 distinct), and the LLM label encoder's T5 and its greedy
    decoding per label are most of an evaluation's cost."""
    model = accelerator.unwrap_model(model)
    was_training = model.training
    model.eval()
    labels = list(dict.fromkeys(label for eval_set in eval_sets for label in eval_set.vocabulary.labels))
    fingerprint = getattr(model, "label_encoder_fingerprint", None)
    bank = LabelBank(labels, embed_labels(labels, model, processor, label_batch_size), fingerprint)
    model.train(was_training)
    return bank


def evaluation_report(
    targets: np.ndarray,
    scores: np.ndarray,
    vocabulary: Vocabulary,
    kinds: dict[str, str] | None,
    threshold: float | None = None,
) -> dict[str, Any]:
    """multilabel_report overall, plus one per label kind (its columns only) when kinds are known. A single-label
    set (every video exactly one label: UCF101, HMDB51, the K600 zero-shot splits) also gets top-1 and top-5
    accuracy, the numbers those benchmarks report."""
    report: dict[str, Any] = {"num_videos": int(targets.shape[0]), **multilabel_report(targets, scores, threshold)}
    if targets.shape[0] and (targets.sum(axis=1) == 1).all():
        classes = targets.argmax(axis=1)
        report.update({f"top_{k}_accuracy": top_k_accuracy(classes, scores, k) for k in SINGLE_LABEL_TOP_K})
    if kinds:
        columns: dict[str, list[int]] = {}
        for i, label in enumerate(vocabulary.labels):
            if label in kinds:
                columns.setdefault(kinds[label], []).append(i)
        report["per_kind"] = {
            kind: multilabel_report(targets[:, cols], scores[:, cols], threshold)
            for kind, cols in sorted(columns.items())
        }
    return report


def loggable_metrics(reports: dict[str, dict[str, Any]], prefix: str = "eval") -> dict[str, float]:
    """Flat `eval/{dataset}/{metric}` (and `.../{kind}/{metric}`) scalars for the trackers; NaN left out."""
    flat: dict[str, float] = {}

    def add(path: str, report: dict[str, Any]) -> None:
        for key, value in report.items():
            if isinstance(value, dict):
                add(f"{path}/{key}", value)
            elif isinstance(value, (int, float)) and math.isfinite(value):
                flat[f"{path}/{key}"] = float(value)

    for name, report in reports.items():
        add(f"{prefix}/{name}", report)
    return flat


def write_json(path: Path, payload: dict) -> None:
    """JSON with NaN (e.g. a class without positives) written as null, so any JSON reader takes it."""

    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, list):
            return [clean(item) for item in value]
        return value

    write_text_atomically(path, json.dumps(clean(payload), indent=1))
