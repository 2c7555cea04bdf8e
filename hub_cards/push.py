"""`ovmlv push`: upload an exported model folder to a Hub model repo."""

from __future__ import annotations

import argparse
from pathlib import Path

from huggingface_hub import HfApi

from ovmlv.arguments import EXIT_OK, CommandError, is_network_error

from .hub_access import check_hub_reachable


def push_folder(folder: str | Path, repo_id: str, private: bool = False) -> str:
    """Create the model repo if needed and upload `folder` as one commit; the token comes from the usual places
    (`HF_TOKEN`, `hf auth login`). Files already in the repo and not in `folder` are kept."""
    check_hub_reachable(repo_id, "push to")  # and every request of the push bounded in time
    api = HfApi()
    url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message="Upload ovmlv model export")
    return str(url)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = "Upload a folder `ovmlv export` wrote to a Hub model repo (token: HF_TOKEN or hf auth login)."
    parser.add_argument("folder", type=Path, help="the exported folder")
    parser.add_argument("--repo", required=True, metavar="ORG/NAME", help="the Hub model repo (created if needed)")
    parser.add_argument("--private", action="store_true", help="create the repo as private")


def run(args: argparse.Namespace) -> int:
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
