"""The `ovmlv` command: one front door to everything a user runs, each subcommand defined in its own module.

A subcommand's module is imported only when that subcommand runs, so `ovmlv --help` does not wait for torch.
Every subcommand shares the exit codes and the one-line error of `ovmlv.arguments`.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from .arguments import EXIT_CODES, EXIT_ERROR, EXIT_USAGE, CommandError, run_reporting_errors


@dataclass(frozen=True)
class Command:
    """A subcommand: a one-line summary, the module whose `add` function builds its arguments and whose `run`
    function runs it (`run(args) -> exit code`), and the optional dependencies it needs (`pip install
    'ovmlv[extra]'`)."""

    summary: str
    module: str
    add: str = "add_arguments"
    run: str = "run"
    extra: str | None = None
    passes_unknown: bool = False  # options it does not define reach `run` as `args.unknown` (train's overrides)


COMMANDS: dict[str, Command] = {
    "classify": Command("score any labels against videos", "ovmlv.commands.classify"),
    "vocab": Command("build, extend, shrink or list a model's label bank", "ovmlv.commands.vocab"),
    "index": Command(
        "embed a video library once, resumably, in one or many processes",
        "ovmlv.commands.video_library",
        add="add_index_arguments",
        run="run_index",
        extra="index",
    ),
    "tag": Command(
        "label every indexed video with any vocabulary",
        "ovmlv.commands.video_library",
        add="add_tag_arguments",
        run="run_tag",
        extra="index",
    ),
    "search": Command(
        "find indexed videos by text",
        "ovmlv.commands.video_library",
        add="add_search_arguments",
        run="run_search",
        extra="index",
    ),
    "train": Command(
        "train a model under accelerate launch (a YAML config and field overrides)",
        "ovmlv.commands.train",
        extra="train",
        passes_unknown=True,
    ),
    "evaluate": Command("evaluate a saved model on labelled manifests", "ovmlv.commands.evaluate", extra="train"),
    "compare": Command(
        "train and evaluate every method on the synthetic world", "ovmlv.commands.compare", extra="train"
    ),
    "claims": Command(
        "measure the paper's claims on the model organism, one row per claim", "ovmlv.commands.claims", extra="train"
    ),
    "budget": Command(
        "train the variants of the missed claims at several step budgets", "ovmlv.commands.budget", extra="train"
    ),
    "demo": Command("the main job end to end on the model organism, offline", "ovmlv.commands.demo", extra="train"),
    "synthetic": Command(
        "write the synthetic world's videos and manifests", "ovmlv.commands.synthetic", extra="train"
    ),
    "organism": Command(
        "pretrain the model organism's tiny CLIP and T5 towers", "ovmlv.commands.organism", extra="train"
    ),
    "tiny-towers": Command(
        "write tiny random CLIP and T5 towers (for tests)", "ovmlv.commands.tiny_towers", extra="train"
    ),
    "adapt": Command("turn a dataset's official annotations into manifests", "ovmlv.commands.adapt", extra="train"),
    "synth-labels": Command(
        "generate labels for videos with a captioner and an LLM (paper supp. I)",
        "ovmlv.commands.synth_labels",
        extra="train",
    ),
    "export": Command("write a Hub repo folder with its model card", "ovmlv.commands.export"),
    "push": Command("upload an exported folder to the Hub", "ovmlv.commands.push"),
    "app": Command("serve the model's Gradio app", "ovmlv.commands.app", extra="app"),
}


def overview() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {command.summary}" for name, command in COMMANDS.items()]
    return "\n".join(
        [
            "usage: ovmlv COMMAND [OPTIONS]",
            "",
            "Open-vocabulary multi-label video classification (Gupta et al., ECCV 2024).",
            "",
            "commands:",
            *lines,
            "",
            "Run `ovmlv COMMAND --help` for a command's options.",
            "",
            EXIT_CODES,
        ]
    )


def parser_for(name: str) -> tuple[argparse.ArgumentParser, Command]:
    """The argument parser of subcommand `name`, built by its module."""
    command = COMMANDS[name]
    parser = argparse.ArgumentParser(
        prog=f"ovmlv {name}",
        description=command.summary[0].upper() + command.summary[1:] + ".",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    getattr(importlib.import_module(command.module), command.add)(parser)
    return parser, command


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time (a redirected one too), as `print(file=sys.stderr)` does."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def show_library_messages() -> None:
    """The library logs what it does (files written, videos skipped) at INFO under `ovmlv`; a command shows it."""
    library_logger = logging.getLogger("ovmlv")
    if not any(isinstance(handler, _CurrentStderr) for handler in library_logger.handlers):
        handler = _CurrentStderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        library_logger.addHandler(handler)
        library_logger.setLevel(logging.INFO)
        library_logger.propagate = False


def main(argv: Sequence[str] | None = None) -> int:
    """Run `ovmlv COMMAND ...`; returns its exit code. `--help` exits 0 through SystemExit, as argparse does."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print(overview(), file=sys.stderr)
        return EXIT_USAGE
    if argv[0] in ("-h", "--help"):
        print(overview())
        raise SystemExit(0)
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        close = difflib.get_close_matches(name, COMMANDS, n=1)
        hint = f" Did you mean `ovmlv {close[0]}`?" if close else " Run `ovmlv --help` for the list."
        print(f"ovmlv: error: no command {name!r}.{hint}", file=sys.stderr)
        return EXIT_USAGE
    try:
        parser, command = parser_for(name)
    except ImportError as error:  # a broken installation: a command module imports nothing optional
        print(f"ovmlv {name}: error: {missing_dependency_message(error, COMMANDS[name].extra)}", file=sys.stderr)
        return EXIT_ERROR
    module = importlib.import_module(command.module)

    def parse_and_run() -> int:
        if command.passes_unknown:
            args, unknown = parser.parse_known_args(rest)
            args.unknown = unknown
        else:
            args = parser.parse_args(rest)  # an argument's type may raise a CommandError (--device cuda without one)
        show_library_messages()
        try:
            return getattr(module, command.run)(args)  # imports the library, and the command's optional dependencies
        except ModuleNotFoundError as error:
            raise CommandError(missing_dependency_message(error, command.extra)) from error

    return run_reporting_errors(name, parse_and_run)


def missing_dependency_message(error: ImportError, extra: str | None) -> str:
    """The error, with `pip install 'ovmlv[extra]'` when a third-party module of the command's extra is missing
    (not for a broken ovmlv module, which no extra fixes)."""
    missing = error.name if isinstance(error, ModuleNotFoundError) else None
    third_party = missing is not None and missing.split(".")[0] != "ovmlv"
    return f"{error}: pip install 'ovmlv[{extra}]'" if extra and third_party else str(error)
