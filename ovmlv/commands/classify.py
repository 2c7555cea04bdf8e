"""`ovmlv classify`: score any labels against videos and show each video's best labels as a table."""

from __future__ import annotations

import argparse
import json
import sys

from ovmlv.arguments import (
    EXIT_ERROR,
    EXIT_OK,
    EXIT_PARTIAL,
    CommandError,
    add_label_arguments,
    add_model_argument,
    add_video_sampling_arguments,
    finite_float,
    given_labels,
    int_at_least,
    torch_device,
)
from ovmlv.saved_models import load_model
from ovmlv.tables import format_table

BAR_WIDTH = 20
DESCRIPTION = """Score every label against each video, each label independently (sigmoid), and show the labels at
or above the threshold, best first, as a table. A model never calibrated shows every label, ranked. Labels default
to the model's label bank. A plain CLIP checkpoint (e.g. openai/clip-vit-base-patch32) works zero-shot.

examples:
  ovmlv classify a.mp4 b.webm --model openai/clip-vit-base-patch32 --labels dog beach 'red car'
  ovmlv classify clips/*.mp4 --model outputs/hub --labels-file labels.txt --threshold 0.3 --json
  (--labels takes several values: put it after the videos)"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="video files (or URLs)")
    add_model_argument(parser)
    add_label_arguments(parser, "labels to score (default: the model's label bank)")
    parser.add_argument(
        "--threshold", type=finite_float, help="predict labels scoring at least this (default: the model's)"
    )
    parser.add_argument(
        "--top-k", type=int_at_least(0), default=10, help="labels shown per video at most, 0 for all (default: 10)"
    )
    add_video_sampling_arguments(parser)
    parser.add_argument("--device", type=torch_device, help="torch device, e.g. cuda (default: cpu)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from ovmlv.app import bank_labels
    from ovmlv.modeling_ovmlv import ZeroShotVideoClassificationPipeline
    from ovmlv.modeling_ovmlv.pipeline_ovmlv import UNCALIBRATED_WARNING, decision_threshold
    from ovmlv.processing import VideoDecodeError

    model, processor = load_model(args.model)
    classifier = ZeroShotVideoClassificationPipeline(model=model, processor=processor, device=args.device)
    classifier.warned_uncalibrated = True  # said once below, for every video
    labels = given_labels(args) or bank_labels(classifier)
    if not labels:
        raise CommandError(f"{args.model} has no label bank: pass --labels, or build one with `ovmlv vocab build`.")
    threshold = decision_threshold(model.config, args.threshold)  # what the pipeline decides with, for the header
    if threshold is None:
        print(f"ovmlv classify: {UNCALIBRATED_WARNING}", file=sys.stderr)
    results = []
    for video in tqdm(args.videos, desc="Classifying", unit="video", disable=True if len(args.videos) < 2 else None):
        try:
            kept = classifier(
                video,
                candidate_labels=labels,
                threshold=args.threshold,
                top_k=args.top_k or None,
                num_frames=args.num_frames,
                clips=args.num_clips,
            )
        except VideoDecodeError as err:
            results.append({"video": video, "error": str(err)})
            continue
        results.append({"video": video, "threshold": threshold, "labels": kept})
    print(json.dumps(results, indent=1) if args.json else "\n\n".join(map(format_result, results)))
    failed = sum("error" in result for result in results)
    if failed:
        print(f"ovmlv classify: {failed} of {len(results)} videos could not be read.", file=sys.stderr)
    return EXIT_OK if not failed else EXIT_PARTIAL if failed < len(results) else EXIT_ERROR


def format_result(result: dict) -> str:
    """One video's labels as the pipeline kept them (at or above the threshold; all, ranked, when uncalibrated),
    as a table with bars."""
    if "error" in result:
        return f"{result['video']}\n  error: {result['error']}"
    rows = [
        [item["label"], f"{item['score']:.3f}", "█" * round(item["score"] * BAR_WIDTH)] for item in result["labels"]
    ]
    if not rows:
        return f"{result['video']}\n  no label scores {result['threshold']:g} or more"
    return f"{result['video']}\n" + format_table(
        ["label", threshold_header(result["threshold"]), ""], rows, indent="  "
    )


def threshold_header(threshold: float | None) -> str:
    return "score (uncalibrated: every label, ranked)" if threshold is None else f"score ≥ {threshold:g}"
