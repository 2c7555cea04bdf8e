"""`ovmlv synthetic`: write the synthetic world's videos and manifests (`ovmlv.organism.world`). A flag
not given keeps `SyntheticConfig`'s default."""

from __future__ import annotations

import argparse
import json
import os

from ovmlv.arguments import EXIT_OK


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder")
    for name in (
        "num_train",
        "num_val",
        "num_heldout",
        "size",
        "fps",
        "min_objects",
        "max_objects",
        "seed",
        "version",
    ):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--no-scenes", action="store_true", help="plain dark background, no scene labels")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))


def run(args: argparse.Namespace) -> int:
    from ovmlv.organism.world import SyntheticConfig, generate_dataset

    fields = {name: value for name, value in vars(args).items() if name not in ("out", "workers", "no_scenes")}
    given = {name: value for name, value in fields.items() if value is not None}  # the others: the config's defaults
    config = SyntheticConfig(**given, **({"scenes": ()} if args.no_scenes else {}))
    print(json.dumps(generate_dataset(args.out, config, workers=args.workers), indent=1))
    return EXIT_OK
