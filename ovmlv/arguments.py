"""What the `ovmlv` commands share: exit codes, the one-line error, and the arguments several of them take.

A leaf module: command modules import it, it imports none of them (nor `ovmlv.cli`).
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import math
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from .text_files import clean_label, read_lines

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_PARTIAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES = f"""exit codes:
  {EXIT_OK}  done
  {EXIT_ERROR}  failed; the message says why (model not found, no label bank, bad file, disk full, ...)
  {EXIT_USAGE}  bad command line
  {EXIT_PARTIAL}  classify, index: some videos could not be read; the others were classified or indexed
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C); only whole files were written"""
MODEL_ENV = "OVMLV_MODEL"
NETWORK_MODULES = ("httpx", "httpx2", "requests", "urllib3")


class CommandError(Exception):
    """A user-facing failure of a command: printed as one line, exit code 1."""


def user_error_message(error: BaseException) -> str | None:
    """The one line a user gets for `error`: their mistake, or the machine's state (a full disk). None for a bug,
    which keeps its traceback."""
    from ovmlv.modeling_ovmlv.atomic_files import is_disk_full  # torch, only once something failed

    if is_disk_full(error):
        where = f" while writing {error.filename}" if isinstance(error, OSError) and error.filename else ""
        return f"disk full{where}; nothing half-written was kept: free some space (or write elsewhere) and rerun."
    if is_network_error(error):
        return f"a network request failed ({error}): check the network, or work offline (HF_HUB_OFFLINE=1, local folders)."
    if isinstance(error, KeyError) and error.args:
        return str(error.args[0])
    if isinstance(error, (CommandError, OSError, ValueError, KeyError, ImportError, OverflowError)):
        return str(error)
    return None


def is_network_error(error: BaseException) -> bool:
    """An HTTP client's error (huggingface_hub's httpx, or requests): no network, a refused or timed-out connection,
    an HTTP error status."""
    return any(cls.__module__.split(".")[0] in NETWORK_MODULES for cls in type(error).__mro__)


def run_reporting_errors(name: str, call: Callable[[], int]) -> int:
    """`call()` as command `name` runs it: a user's mistake, a full disk or Ctrl-C ends in one line on stderr and an
    exit code (1, or 130 for Ctrl-C); a bug keeps its traceback."""
    try:
        return call()
    except KeyboardInterrupt:
        print(f"ovmlv {name}: error: interrupted; only whole files were written: rerun to finish.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:
        message = user_error_message(error)
        if message is None:
            raise
        print(f"ovmlv {name}: error: {message}", file=sys.stderr)
        return EXIT_ERROR


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
    """--labels (space- or comma-separated) then --labels-file, in order; --labels given with nothing in it (spaces,
    commas, zero-width characters) is an error, never "no labels given" (which falls back to the label bank)."""
    labels = [clean_label(label) for item in args.labels for label in item.split(",")]
    if args.labels and not any(labels):
        raise CommandError(f"--labels {' '.join(map(repr, args.labels))} holds no label: give at least one label.")
    return [label for label in labels if label] + (
        read_lines(args.labels_file, "labels file") if args.labels_file else []
    )


def finite_float(text: str) -> float:
    """An argparse type: a number that JSON can write (no nan or inf)."""
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


finite_float.__name__ = "number"


def torch_device(name: str) -> str:
    """An argparse type: a torch device this machine has ("cpu", "cuda", "cuda:1", "mps"). A device it lacks is a
    CommandError (exit 1, one line), a name torch does not know a usage error."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise argparse.ArgumentTypeError(f"{name!r} is not a torch device; e.g. cpu, cuda, cuda:1, mps") from None
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise CommandError(
            f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s); use --device cpu."
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise CommandError(f"--device {name}: MPS is not available on this machine; use --device cpu.")
    return name


torch_device.__name__ = "device"


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


def module_docstring(name: str) -> str:
    """The docstring of module `name`, read from its source without importing it (and torch): a command whose help
    is its library module's docstring."""
    spec = importlib.util.find_spec(name)
    return ast.get_docstring(ast.parse(Path(spec.origin).read_text(encoding="utf-8")), clean=False) or ""


def name_in(read: Callable[[], Iterable[str]], what: str):
    """An argparse type for one of the names `read()` returns, read from a heavy module only when a value is given:
    argparse's `choices` would be read by `--help` too. A name not among them is a usage error listing them."""

    def parse(text: str) -> str:
        names = list(read())
        if text not in names:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}; choose from {', '.join(map(repr, names))}")
        return text

    parse.__name__ = what
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
