"""What the `ovmlv` commands share: exit codes, the one-line error, and the arguments several of them take.

A leaf module: command modules import it, it imports none of them (nor `ovmlv.cli`).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .text_files import read_lines

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3
EXIT_CODES = f"""exit codes:
  {EXIT_OK}  done
  {EXIT_ERROR}  failed; the message says why (model not found, no label bank, bad file, ...)
  {EXIT_USAGE}  bad command line
  {EXIT_PARTIAL}  classify, index: some videos could not be read; the others were classified or indexed"""
MODEL_ENV = "OVMLV_MODEL"


class CommandError(Exception):
    """A user-facing failure of a command: printed as one line, exit code 1."""


def int_at_least(minimum: int):
    """An argparse type: bad values are usage errors (exit 2) naming the bound."""

    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {minimum} or more, got {value}")
        return value

    parse.__name__ = "int"  # argparse names the type in its messages
    return parse


def add_model_argument(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """--model: a saved model folder or Hub id, defaulting to $OVMLV_MODEL."""
    parser.add_argument(
        "--model",
        default=os.environ.get(MODEL_ENV),
        required=required and MODEL_ENV not in os.environ,
        help=f"model folder or Hub id (default: ${MODEL_ENV})",
    )


def add_label_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """--labels (several values, commas also separate) and --labels-file (one label a line)."""
    parser.add_argument("--labels", nargs="+", default=[], metavar="LABEL", help=f"{what}; commas also separate")
    parser.add_argument("--labels-file", type=Path, metavar="FILE", help="more labels, one per line")


def given_labels(args: argparse.Namespace) -> list[str]:
    """--labels (space- or comma-separated) then --labels-file, in order."""
    labels = [label.strip() for item in args.labels for label in item.split(",") if label.strip()]
    return labels + (read_lines(args.labels_file, "labels file") if args.labels_file else [])


def video_count(limit: str):
    """An argparse type for a count bounded by the processor's `VIDEO_COUNT_LIMITS[limit]`: a usage error before
    any work (read when the flag is given, so `--help` stays quick)."""

    def parse(text: str) -> int:
        from ovmlv.processing.processing_ovmlv import VIDEO_COUNT_LIMITS

        value, maximum = int(text), VIDEO_COUNT_LIMITS[limit]
        if not 1 <= value <= maximum:
            raise argparse.ArgumentTypeError(f"must be from 1 to {maximum}, got {value}")
        return value

    parse.__name__ = "int"
    return parse


def add_video_sampling_arguments(parser: argparse.ArgumentParser) -> None:
    """--num-frames and --num-clips, defaulting to the model processor's."""
    parser.add_argument(
        "--num-frames", type=video_count("num_frames"), help="frames per clip (default: the processor's)"
    )
    parser.add_argument(
        "--num-clips",
        type=video_count("num_clips"),
        help="clips averaged per video, e.g. 4 (default: the processor's)",
    )


def run_command(module, argv: list[str]) -> int:
    """Run a command module (`add_arguments`, `run`) on `argv` as `ovmlv` would: how one command uses another (the
    demo exports, a run evaluates) without importing the front door."""
    parser = argparse.ArgumentParser(prog=f"ovmlv {module.__name__.rsplit('.', 1)[-1]}")
    module.add_arguments(parser)
    return module.run(parser.parse_args(argv))
