"""Run a script in a second interpreter that cannot import this repository's packages.

It stands in for a fresh virtual environment (a real one would need torch reinstalled): `python -I` drops
PYTHONPATH, the user site and the working directory from sys.path, the cwd is a temp folder, and a meta-path finder
refuses this repo's packages, so even an editable install cannot leak in. Whatever the script loads from a saved
folder comes through `trust_remote_code`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BLOCK_OVMLV = """
import importlib.abc, sys

class BlockOvmlv(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"ovmlv", "modeling_ovmlv", "processing", "training", "hub_cards", "video_library"}:
            raise ImportError(f"{name} must not be importable here")

sys.meta_path.insert(0, BlockOvmlv())
"""


def run_without_ovmlv(script: str, args: list[str], workdir: Path) -> dict:
    """Run `script` (after the import blocker) with `args`; its last stdout line is JSON, returned parsed."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(workdir / "modules"))
    completed = subprocess.run(
        [sys.executable, "-I", "-c", BLOCK_OVMLV + script, *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])
