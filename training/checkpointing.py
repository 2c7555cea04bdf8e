"""Checkpoints: `output_dir/checkpoints/step_N/`, written by `accelerator.save_state`, holding trainable weights only.

The towers are frozen and come back from their own checkpoints when the model is rebuilt, so a checkpoint keeps just
what training changes: trainable weights, optimizer, scheduler, RNG states (Flan-T5-XL alone would add 12 GB to every
checkpoint otherwise). Loading is therefore non-strict, and checked here instead: every trainable weight must be in
the checkpoint, or resuming a different model configuration would silently start from scratch.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType
from accelerate.utils.constants import SAFE_WEIGHTS_NAME
from safetensors import safe_open

CHECKPOINTS_DIR = "checkpoints"
_STEP_DIR = re.compile(r"^step_(\d+)$")


def checkpoint_path(output_dir: str | Path, step: int) -> Path:
    return Path(output_dir) / CHECKPOINTS_DIR / f"step_{step}"


def checkpoint_step(path: str | Path) -> int:
    match = _STEP_DIR.match(Path(path).name)
    if match is None:
        raise ValueError(f"{path} is not a checkpoint folder (step_N).")
    return int(match.group(1))


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Checkpoint folders, oldest step first."""
    root = Path(output_dir) / CHECKPOINTS_DIR
    found = [path for path in root.iterdir() if _STEP_DIR.match(path.name)] if root.is_dir() else []
    return sorted(found, key=checkpoint_step)


def latest_checkpoint(output_dir: str | Path) -> Path | None:
    checkpoints = list_checkpoints(output_dir)
    return checkpoints[-1] if checkpoints else None


def _trainable_names(model: torch.nn.Module) -> set[str]:
    return {name for name, parameter in model.named_parameters() if parameter.requires_grad}


def save_trainable_weights_only(accelerator: Accelerator) -> None:
    """Make `save_state` drop frozen weights from the model files (DeepSpeed: `exclude_frozen_parameters`)."""

    def drop_frozen(models: list[torch.nn.Module], weights: list[dict], output_dir: str) -> None:
        for i, (model, state_dict) in enumerate(zip(models, weights, strict=False)):  # DeepSpeed: no weights
            trainable = _trainable_names(model)
            weights[i] = {name: tensor for name, tensor in state_dict.items() if name in trainable}

    accelerator.register_save_state_pre_hook(drop_frozen)


def save_checkpoint(accelerator: Accelerator, output_dir: str | Path, step: int, keep: int | None) -> Path:
    """Save the training state at `step` (every process takes part); keep the newest `keep` checkpoints."""
    path = checkpoint_path(output_dir, step)
    deepspeed = accelerator.distributed_type == DistributedType.DEEPSPEED
    accelerator.save_state(str(path), **({"exclude_frozen_parameters": True} if deepspeed else {}))
    if accelerator.is_main_process and keep is not None:
        for old in list_checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    return path


def load_checkpoint(accelerator: Accelerator, model: torch.nn.Module, path: str | Path) -> int:
    """Restore everything `save_checkpoint` wrote (RNG states included); returns the checkpoint's step."""
    path = Path(path)
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        accelerator.load_state(str(path), load_module_strict=False)
        return checkpoint_step(path)
    with safe_open(path / SAFE_WEIGHTS_NAME, framework="pt") as weights:
        saved = set(weights.keys())
    if missing := sorted(_trainable_names(model) - saved):
        raise ValueError(
            f"Checkpoint {path} lacks {len(missing)} trainable weight(s) of this model, e.g. {missing[:3]}: it was "
            "written by a run with another model configuration. Resume with that configuration or a new output_dir."
        )
    accelerator.load_state(str(path), strict=False)
    return checkpoint_step(path)
