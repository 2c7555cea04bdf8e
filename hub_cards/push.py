"""`ovmlv push`: upload an exported model folder to a Hub model repo."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import HfApi

from ovmlv.hub_access import check_hub_reachable


def push_folder(folder: str | Path, repo_id: str, private: bool = False) -> str:
    """Create the model repo if needed and upload `folder` as one commit; the token comes from the usual places
    (`HF_TOKEN`, `hf auth login`). Files already in the repo and not in `folder` are kept."""
    check_hub_reachable(repo_id, "push to")  # and every request of the push bounded in time
    api = HfApi()
    url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message="Upload ovmlv model export")
    return str(url)
