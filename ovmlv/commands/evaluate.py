"""`ovmlv evaluate`: a saved model on labelled video manifests (`ovmlv.training.evaluate.evaluate_saved_model`).
Options after a `--manifest` belong to it."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ovmlv.arguments import EXIT_OK, add_video_sampling_arguments, finite_float, int_at_least
from ovmlv.training.config import DEFAULT_SPLIT, DataConfig, EvalConfig, ManifestConfig


class StartManifest(argparse.Action):
    """`--manifest M` opens a new manifest; the per-manifest options that follow are stored on it."""

    def __call__(self, parser, namespace, values, option_string=None):
        namespace.manifests = [*(namespace.manifests or []), {"manifest": values}]


class ManifestOption(argparse.Action):
    """A per-manifest option: belongs to the last `--manifest` given, at most once each."""

    def __call__(self, parser, namespace, values, option_string=None):
        if not namespace.manifests:
            parser.error(f"{option_string} must follow the --manifest it belongs to.")
        current = namespace.manifests[-1]
        if self.dest in current:
            parser.error(f"{option_string} is given twice for --manifest {current['manifest']}.")
        current[self.dest] = self.const if self.nargs == 0 else values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Evaluate a saved ovmlv model on labelled video manifests: AUPR, peak F1, F1 at a threshold, the deployment "
        "threshold (max-min F1 over the calibrating sets) and F1-threshold curves. Options after a --manifest apply "
        "to that manifest."
    )
    defaults = EvalConfig()
    parser.add_argument(
        "--model", required=True, help="a model folder saved by training (with its processor), or a Hub id"
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="folder for the result files")
    parser.add_argument(
        "--manifest",
        dest="manifests",
        action=StartManifest,
        required=True,
        metavar="M",
        help="a manifest (JSONL or CSV: video, labels, optional start/end); repeatable",
    )
    per_manifest = parser.add_argument_group("per manifest (after its --manifest)")
    for flag, metavar, help_text in [
        ("--vocabulary", "FILE", "vocabulary, one label a line (default: the labels the manifest uses)"),
        ("--kinds", "FILE", "JSON {label: kind}: also report each label kind"),
        ("--name", "NAME", "the set's name in the results (default: the manifest's file stem)"),
        ("--dataset-id", "HUB_ID", "Hub dataset id for the model card's model-index"),
        ("--split", "SPLIT", f"the split shown on the model card (default: {DEFAULT_SPLIT})"),
        ("--group", "NAME", "report this set with the others of the group as mean ± std (e.g. K600's 3 splits)"),
    ]:
        per_manifest.add_argument(
            flag, action=ManifestOption, default=argparse.SUPPRESS, metavar=metavar, help=help_text
        )
    per_manifest.add_argument(
        "--no-calibrate",
        dest="calibrate",
        action=ManifestOption,
        nargs=0,
        const=False,
        default=argparse.SUPPRESS,
        help="leave this set out of choosing the deployment threshold (e.g. an open-vocabulary test set)",
    )
    parser.add_argument(
        "--threshold", type=finite_float, help="report F1/precision/recall at it (default: the model's)"
    )
    parser.add_argument(
        "--label-interpolation",
        action="store_true",
        help="also score every set with the label embeddings mixed toward frozen class names (r = 0 ... 1), report "
        "the curve, and choose r on the calibrating sets: the reported figures and the deployment threshold are "
        "then at that r, and both are saved (LLM-prompted label encoders)",
    )
    parser.add_argument(
        "--no-save-threshold",
        dest="save_threshold",
        action="store_false",
        help="do not write the deployment threshold into a local model folder's config.json (written by default)",
    )
    add_video_sampling_arguments(parser)  # default: the saved processor's, as the model was trained and evaluated
    parser.add_argument(
        "--batch-size",
        type=int_at_least(1),
        default=defaults.per_device_batch_size,
        help="videos per batch (default: %(default)s)",
    )
    parser.add_argument(
        "--label-batch-size",
        type=int_at_least(1),
        default=defaults.label_batch_size,
        help="labels per label-encoder call (default: %(default)s)",
    )
    parser.add_argument(
        "--num-workers",
        type=int_at_least(0),
        default=min(DataConfig().num_workers, os.cpu_count() or 1),  # more than the cores only adds contention
        help="DataLoader processes decoding videos (default: %(default)s, at most the CPU count)",
    )
    parser.add_argument("--model-name", help="the model card's name for these results (default: the repo name)")
    parser.add_argument("--plot", action="store_true", help="also draw the F1-threshold curves (needs matplotlib)")
    parser.add_argument(
        "--save-scores", action="store_true", help="also write every set's scores to DIR/scores/{name}.npz"
    )


def run(args: argparse.Namespace) -> int:
    """Evaluate, write the files and print the Markdown report."""
    from ovmlv.training.evaluate import EvalManifest, EvaluateOptions, evaluate_saved_model

    manifests = [
        EvalManifest(
            ManifestConfig(
                manifest=options["manifest"],
                vocabulary=options.get("vocabulary"),
                kinds=options.get("kinds"),
                name=options.get("name"),
                calibrate=options.get("calibrate", True),
            ),
            dataset_id=options.get("dataset_id"),
            split=options.get("split", DEFAULT_SPLIT),
            group=options.get("group"),
        )
        for options in args.manifests
    ]
    options = EvaluateOptions(
        threshold=args.threshold,
        num_frames=args.num_frames,
        num_clips=args.num_clips,
        batch_size=args.batch_size,
        label_batch_size=args.label_batch_size,
        num_workers=args.num_workers,
        label_interpolation=args.label_interpolation,
        save_threshold=args.save_threshold,
        model_name=args.model_name,
        plot=args.plot,
        save_scores=args.save_scores,
    )
    evaluation = evaluate_saved_model(args.model, args.out, manifests, options)
    if evaluation is not None:  # the main process
        print(evaluation.markdown)
    return EXIT_OK
