"""`ovmlv adapt`: turn a dataset's official annotations into a manifest (JSONL), a vocabulary and, where it has
kinds, a kinds file.

```
ovmlv adapt kinetics --annotations kinetics400/val.csv --videos /data/k400/val --out manifests
```

writes `manifests/kinetics_val.jsonl` (`--name` to choose), `..._vocabulary.txt` and `..._kinds.json`, and prints
one summary line. `ovmlv adapt DATASET --help` describes each dataset's files and options.
"""

from __future__ import annotations

import argparse
from typing import Any

from ovmlv.arguments import EXIT_OK, CommandError
from ovmlv.training.adapters import ADAPTERS
from ovmlv.training.adapters.manifest import AnnotationError, write_dataset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="dataset", required=True, metavar="DATASET")
    for name, module in ADAPTERS.items():
        command = commands.add_parser(
            name,
            help=module.__doc__.splitlines()[0],
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(command)
        command.add_argument("--videos", required=True, help="folder the video paths are relative to")
        command.add_argument("--out", required=True, help="output folder for the manifest, vocabulary and kinds")
        command.add_argument("--name", help="output file stem and `source` (default: dataset[_split][_foldN])")
        command.add_argument(
            "--video-pattern",
            default=module.VIDEO_PATTERN,
            help="video path under --videos, a Python format string of the dataset's fields (default: %(default)s)",
        )
        command.add_argument(
            "--absolute-paths", action="store_true", help="write absolute video paths (default: relative to --out)"
        )
        command.add_argument("--check-videos", action="store_true", help="count the videos missing on disk")
        command.add_argument("--drop-missing", action="store_true", help="leave out rows whose video is missing")


def default_name(args: argparse.Namespace) -> str:
    parts = [args.dataset, getattr(args, "split", None), getattr(args, "fold", None) and f"fold{args.fold}"]
    return "_".join(part for part in parts if part)


def adapt(args: argparse.Namespace) -> dict[str, Any]:
    """Write the dataset's files; returns `write_dataset`'s summary."""
    try:
        return write_dataset(
            args.adapt(args),
            args.out,
            args.name or default_name(args),
            args.videos,
            args.video_pattern,
            args.absolute_paths,
            args.check_videos,
            args.drop_missing,
        )
    except AnnotationError as error:
        raise CommandError(f"{args.dataset}: {error}") from error


def run(args: argparse.Namespace) -> int:
    summary = adapt(args)
    line = f"{args.dataset}: {summary['rows']} rows -> {summary['manifest']}; {summary['labels']} labels -> "
    line += summary["vocabulary"] + (f"; kinds -> {summary['kinds']}" if summary["kinds"] else "")
    if summary["missing_videos"] is not None:
        line += f"; {summary['missing_videos']} videos missing" + (" (rows left out)" if args.drop_missing else "")
        line += f", e.g. {summary['missing_examples']}" if summary["missing_videos"] else ""
    print("; ".join([line, *summary["notes"]]))
    return EXIT_OK
