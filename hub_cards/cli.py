"""`ovmlv`: classify videos, manage a model's label bank, evaluate and export models from the shell.

The commands load models through this package (no remote code), from a local folder or a Hub id.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import export
from .export import ExportError, read_labels

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3
EXIT_CODES = f"""exit codes:
  {EXIT_OK}  done
  {EXIT_ERROR}  failed; the message says why (model not found, no label bank, bad file, ...)
  {EXIT_USAGE}  bad command line
  {EXIT_PARTIAL}  classify, index: some videos could not be read; the others were classified or indexed"""
MODEL_ENV = "OVMLV_MODEL"
BAR_WIDTH = 20


class CliError(Exception):
    """A user-facing failure: printed as one line, exit code 1."""


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["evaluate"]:  # its options belong to training.evaluate, which parses them itself
        return run_evaluate(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CliError, ExportError, OSError, ValueError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"ovmlv {args.command}: error: {message}", file=sys.stderr)
        return EXIT_ERROR


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ovmlv",
        description="Open-vocabulary multi-label video classification (Gupta et al., ECCV 2024).",
        epilog=f"Run `ovmlv COMMAND --help` for a command's options.\n\n{EXIT_CODES}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    classify = _add_command(
        commands,
        "classify",
        "score labels against videos",
        "Score every label against each video, each label independently (sigmoid), and show the best as a table\n"
        "with the labels at or above the threshold ticked. Labels default to the model's label bank.\n\n"
        "examples:\n"
        "  ovmlv classify a.mp4 b.webm --model org/name --labels dog beach 'red car'\n"
        "  ovmlv classify clips/*.mp4 --model outputs/hub --labels-file labels.txt --threshold 0.3 --json\n"
        "  (--labels takes several values: put it after the videos)",
    )
    classify.add_argument("videos", nargs="+", metavar="VIDEO", help="video files (or URLs)")
    _add_model_argument(classify)
    _add_label_arguments(classify, "labels to score (default: the model's label bank)")
    classify.add_argument(
        "--threshold", type=float, help="predict labels scoring at least this (default: the model's)"
    )
    classify.add_argument(
        "--top-k", type=int_at_least(0), default=10, help="scores shown per video, 0 for all (default: 10)"
    )
    classify.add_argument("--frames", type=int_at_least(1), help="frames per clip (default: the processor's)")
    classify.add_argument(
        "--clips", type=int_at_least(1), help="clips averaged per video, e.g. 4 (default: the processor's)"
    )
    classify.add_argument("--device", help="torch device, e.g. cuda (default: cpu)")
    classify.add_argument("--json", action="store_true", help="print JSON instead of tables")
    classify.set_defaults(func=run_classify)

    vocab = _add_command(
        commands,
        "vocab",
        "build, extend, shrink or list a model's label bank",
        "The label bank holds precomputed embeddings of a vocabulary, saved beside the model\n"
        "(label_bank.safetensors + label_bank.json), so those labels are never re-encoded per video.",
    )
    actions = vocab.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = _add_command(actions, "build", "encode a vocabulary into a new label bank (replaces any)")
    add = _add_command(actions, "add", "encode labels and append the new ones to the label bank")
    for sub in (build, add):
        _add_model_argument(sub)
        _add_label_arguments(sub, "labels to encode")
        sub.add_argument(
            "--batch-size", type=int_at_least(1), default=256, help="labels per encoder call (default: 256)"
        )
        _add_out_argument(sub)
    build.set_defaults(func=run_vocab_build)
    add.set_defaults(func=run_vocab_add)
    remove = _add_command(actions, "remove", "drop labels from the label bank")
    remove.add_argument("labels", nargs="+", metavar="LABEL")
    _add_model_argument(remove)
    _add_out_argument(remove)
    remove.set_defaults(func=run_vocab_remove)
    show = _add_command(actions, "list", "print the label bank's labels")
    _add_model_argument(show)
    show.add_argument("--json", action="store_true", help="print a JSON list")
    show.set_defaults(func=run_vocab_list)

    _add_command(
        commands,
        "evaluate",
        "evaluate a model on manifests (runs training.evaluate; needs ovmlv[train])",
        add_help=False,
    )
    export_parser = _add_command(
        commands,
        "export",
        "write a Hub repo folder with a model card, optionally push it",
        "Write a complete Hub repo folder (safetensors weights, config with auto_map and custom_pipelines,\n"
        "processor, label bank, code files, README model card) and optionally upload it.",
    )
    export.add_arguments(export_parser)
    export_parser.set_defaults(func=export.run)
    from video_library.commands import add_library_commands  # here: it builds on this module's helpers

    add_library_commands(commands)  # index, tag, search
    return parser


def _add_command(commands, name: str, summary: str, description: str | None = None, **kwargs):
    return commands.add_parser(
        name,
        help=summary,
        description=description or summary[0].upper() + summary[1:] + ".",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        **kwargs,
    )


def int_at_least(minimum: int):
    """An argparse type: bad values are usage errors (exit 2) naming the bound."""

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {value}")
        return value

    parse.__name__ = "int"  # argparse names the type in its messages
    return parse


def _add_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=os.environ.get(MODEL_ENV),
        required=MODEL_ENV not in os.environ,
        help=f"model folder or Hub id (default: ${MODEL_ENV})",
    )


def _add_label_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--labels", nargs="+", default=[], metavar="LABEL", help=f"{what}; commas also separate")
    parser.add_argument("--labels-file", type=Path, metavar="FILE", help="more labels, one per line")


def _add_out_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, help="folder to save the label bank in (default: the model folder)")


def given_labels(args: argparse.Namespace) -> list[str]:
    """--labels (space- or comma-separated) then --labels-file, in order."""
    labels = [label.strip() for item in args.labels for label in item.split(",") if label.strip()]
    return labels + (read_labels(args.labels_file) if args.labels_file else [])


def load_model(name: str):
    """(model, processor) through this package's classes, not remote code; a name that is no model, or weights that
    do not read, are one sentence (damaged files listed in an export's checksums.json are named by the check)."""
    from safetensors import SafetensorError

    from modeling_ovmlv import OvmlvModel
    from processing import OvmlvProcessor

    from .app import check_model_source

    check_model_source(name)
    try:
        return OvmlvModel.from_pretrained(name), OvmlvProcessor.from_pretrained(name)
    except SafetensorError as err:
        raise CliError(
            f"{name}: its weights (model.safetensors) cannot be read ({err}): the file is damaged or truncated; "
            "re-download or re-export the model."
        ) from err


def run_classify(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from modeling_ovmlv import ZeroShotVideoClassificationPipeline
    from modeling_ovmlv.pipeline_ovmlv import UNCALIBRATED_WARNING
    from processing import VideoDecodeError

    from .app import bank_labels, score_labels

    model, processor = load_model(args.model)
    classifier = ZeroShotVideoClassificationPipeline(model=model, processor=processor, device=args.device)
    labels = given_labels(args) or bank_labels(classifier)
    if not labels:
        raise CliError(f"{args.model} has no label bank: pass --labels, or build one with `ovmlv vocab build`.")
    threshold = model.config.threshold if args.threshold is None else args.threshold
    if threshold is None:
        print(f"ovmlv classify: {UNCALIBRATED_WARNING}", file=sys.stderr)
    results = []
    for video in tqdm(args.videos, desc="Classifying", unit="video", disable=True if len(args.videos) < 2 else None):
        try:
            ranked, predicted = score_labels(
                classifier, video, labels, threshold, num_frames=args.frames, clips=args.clips
            )
        except VideoDecodeError as err:
            results.append({"video": video, "error": str(err)})
            continue
        shown = ranked[: args.top_k or None]
        results.append({"video": video, "threshold": threshold, "predicted": predicted, "scores": shown})
    print(json.dumps(results, indent=1) if args.json else "\n\n".join(map(format_result, results)))
    failed = sum("error" in result for result in results)
    if failed:
        print(f"ovmlv classify: {failed} of {len(results)} videos could not be read.", file=sys.stderr)
    return EXIT_OK if not failed else EXIT_PARTIAL if failed < len(results) else EXIT_ERROR


def format_result(result: dict) -> str:
    """One video's scores as a table with bars; labels at or above the threshold are ticked."""
    if "error" in result:
        return f"{result['video']}\n  error: {result['error']}"
    predicted = set(result["predicted"])
    rows = [
        [
            item["label"],
            f"{item['score']:.3f}",
            "█" * round(item["score"] * BAR_WIDTH),
            "✓" if item["label"] in predicted else "",
        ]
        for item in result["scores"]
    ]
    return (
        f"{result['video']}\n"
        + format_table(["label", "score", "", threshold_header(result["threshold"])], rows, indent="  ")
        + f"\n  predicted: {', '.join(result['predicted']) or 'none'}"
    )


def threshold_header(threshold: float | None) -> str:
    return "uncalibrated" if threshold is None else f"≥ {threshold:g}"


def format_table(headers: list[str], rows: list[list[str]], indent: str = "") -> str:
    """Left-aligned columns, two spaces apart, under a header row."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = [
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in [headers, *rows]
    ]
    return "\n".join(indent + line.rstrip() for line in lines)


def _bank_dir(args: argparse.Namespace) -> Path:
    """Where to save a changed label bank: --out, else the model folder (a Hub id needs --out)."""
    if args.out is not None:
        return args.out
    if not Path(args.model).is_dir():
        raise CliError(f"{args.model} is not a local folder: pass --out DIR to save the label bank.")
    return Path(args.model)


def _labels_or_fail(args: argparse.Namespace) -> list[str]:
    labels = given_labels(args)
    if not labels:
        raise CliError("no labels given: pass --labels and/or --labels-file.")
    return labels


def run_vocab_build(args: argparse.Namespace) -> int:
    from modeling_ovmlv import LabelBank

    labels = _labels_or_fail(args)
    out = _bank_dir(args)
    model, processor = load_model(args.model)
    bank = LabelBank.build(model, processor, labels, batch_size=args.batch_size)
    bank.save(out)
    print(f"Saved a label bank of {len(bank)} labels to {out}")
    return EXIT_OK


def run_vocab_add(args: argparse.Namespace) -> int:
    labels = _labels_or_fail(args)
    out = _bank_dir(args)
    model, processor = load_model(args.model)
    if model.label_bank is None:
        raise CliError(f"{args.model} has no label bank yet: create one with `ovmlv vocab build`.")
    added = model.label_bank.add(model, processor, labels, batch_size=args.batch_size)
    model.label_bank.save(out)
    print(f"Added {len(added)} labels ({len(labels) - len(added)} already there); {len(model.label_bank)} in {out}")
    return EXIT_OK


def _load_bank(model: str):
    from modeling_ovmlv import LabelBank

    bank = LabelBank.from_pretrained(model)
    if bank is None:
        raise CliError(f"{model} has no label bank: create one with `ovmlv vocab build`.")
    return bank


def run_vocab_remove(args: argparse.Namespace) -> int:
    out = _bank_dir(args)
    bank = _load_bank(args.model)
    bank.remove(args.labels)
    bank.save(out)
    print(f"Removed {len(set(args.labels))} labels; {len(bank)} left in {out}")
    return EXIT_OK


def run_vocab_list(args: argparse.Namespace) -> int:
    bank = _load_bank(args.model)
    if args.json:
        print(json.dumps(bank.labels, ensure_ascii=False, indent=1))
    else:
        print(f"{len(bank)} labels (embedding size {bank.dim}) in {args.model}")
        print(format_table(["#", "label"], [[str(i), label] for i, label in enumerate(bank.labels, 1)]))
    return EXIT_OK


def run_evaluate(argv: list[str]) -> int:
    """`ovmlv evaluate ARGS` runs `python -m training.evaluate ARGS`, whose dependencies are the train extra."""
    try:
        from training.evaluate import main as evaluate_main
    except ImportError as err:
        print(
            f"ovmlv evaluate: needs the training tools, installed with `pip install 'ovmlv[train]'` ({err}).",
            file=sys.stderr,
        )
        return EXIT_ERROR
    return evaluate_main(argv) or EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
