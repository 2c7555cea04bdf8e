"""`ovmlv push`: upload an exported model folder to a Hub model repo (`ovmlv.hub_cards.push.push_folder`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ovmlv.arguments import EXIT_OK, CommandError, is_network_error


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Upload a folder `ovmlv export` wrote to a Hub model repo (token: HF_TOKEN or hf auth login)."
    parser.add_argument("folder", type=Path, help="the exported folder")
    parser.add_argument("--repo", required=True, metavar="ORG/NAME", help="the Hub model repo (created if needed)")
    parser.add_argument("--private", action="store_true", help="create the repo as private")


def run(args: argparse.Namespace) -> int:
    from ovmlv.hub_cards.push import push_folder

    if not (args.folder / "config.json").is_file():
        raise CommandError(f"{args.folder} is not an exported model (no config.json): run `ovmlv export` first.")
    try:
        url = push_folder(args.folder, args.repo, private=args.private)
    except Exception as err:  # huggingface_hub's HTTP, token and offline errors
        if not isinstance(err, OSError) and not is_network_error(err):
            raise
        raise CommandError(f"pushing {args.folder} to {args.repo} failed: {err}") from err
    print(f"Pushed to {url}")
    return EXIT_OK
