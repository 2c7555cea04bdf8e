"""Checkpoints: `output_dir/checkpoints/step_N/`, written by `accelerator.save_state`, holding trainable weights only.

The towers are frozen and come back from their own checkpoints when the model is rebuilt, so a checkpoint keeps just
what training changes: trainable weights, optimizer, scheduler, RNG states (Flan-T5-XL alone would add 12 GB to every
checkpoint otherwise). Loading is therefore non-strict, and checked here instead: every trainable weight must be in
the checkpoint, or resuming a different model configuration would silently start from scratch.

A checkpoint is visible only once complete: every process writes into a hidden staging folder, the main process adds
a checksum manifest (`checksums.json`) and renames the folder to `step_N` (`modeling_ovmlv/atomic_files.py`). A kill
at any moment leaves the previous checkpoints as they were. Resuming takes the newest checkpoint whose files all match
their manifest and that holds the RNG state of every process, says which, and fails if that state cannot be restored
exactly (Accelerate would only log it).
"""

from __future__ import annotations

import logging
import random
import re
import shutil
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, broadcast_object_list
from accelerate.utils import load as accelerate_load
from accelerate.utils.constants import RNG_STATE_NAME, SAFE_WEIGHTS_NAME
from safetensors import safe_open

from ovmlv.modeling_ovmlv.atomic_files import (
    disk_full_error,
    is_disk_full,
    publish_folder,
    remove_folder,
    staging_folder,
)
from ovmlv.modeling_ovmlv.checksums import (
    CHECKSUMS_NAME,
    ChecksumError,
    checksum_problems,
    read_checksums,
    write_checksums,
)
from ovmlv.modeling_ovmlv.file_locks import FileLock, LockedError

logger = logging.getLogger(__name__)

CHECKPOINTS_DIR = "checkpoints"
_STEP_DIR = re.compile(r"^step_(\d+)$")
_RANDOM_STATES = re.compile(rf"^{RNG_STATE_NAME}_(\d+)\.pkl$")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot restore the run exactly."""


def check_output_dir(output_dir: str | Path, resume: bool, overwrite: bool) -> None:
    """A new run starts in an empty output_dir: its checkpoints would otherwise mix with an old run's (pruning keeps
    the highest steps, the old run's) and `--resume` would continue the wrong run."""
    output_dir = Path(output_dir)
    if resume and overwrite:
        raise ValueError("--resume continues the run in output_dir, --overwrite deletes it: pass one of them.")
    if overwrite and output_dir.exists():
        target, here = output_dir.resolve(), Path.cwd().resolve()
        if target == here or target in here.parents or target == Path.home().resolve():
            raise ValueError(
                f"--overwrite would delete {target}, which holds the working directory (or is the home folder); give "
                "the run a folder of its own."
            )
    if resume or overwrite or not output_dir.exists():
        return
    if not output_dir.is_dir():
        raise NotADirectoryError(f"output_dir {output_dir} is a file; choose a folder.")
    if entries := sorted(path.name for path in output_dir.iterdir()):
        raise FileExistsError(
            f"output_dir {output_dir} already holds a run ({', '.join(entries[:5])}{', ...' if len(entries) > 5 else ''})"
            ": pass --resume to continue it, --overwrite to delete it and start afresh, or another --output_dir."
        )


def claim_output_dir(accelerator: Accelerator, output_dir: str | Path) -> FileLock | None:
    """One run per output_dir: the main process locks it for the whole run (the lock goes when the process ends).
    A second run into it (two `--resume`, say) fails at once naming the holder, on every process, rather than
    wait hours or mix its checkpoints with the first's."""
    lock = FileLock(output_dir) if accelerator.is_main_process else None
    refusal = [None]
    if lock is not None:
        try:
            lock.acquire(wait=False)
        except LockedError as err:
            refusal = [str(err)]
    broadcast_object_list(refusal)
    if refusal[0] is not None:
        raise LockedError(refusal[0])
    return lock


def checkpoint_path(output_dir: str | Path, step: int) -> Path:
    return Path(output_dir) / CHECKPOINTS_DIR / f"step_{step}"


def checkpoint_step(path: str | Path) -> int:
    match = _STEP_DIR.match(Path(path).name)
    if match is None:
        raise ValueError(f"{path} is not a checkpoint folder (step_N).")
    return int(match.group(1))


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Published checkpoint folders, oldest step first (staging folders are hidden and never listed)."""
    root = Path(output_dir) / CHECKPOINTS_DIR
    found = [path for path in root.iterdir() if _STEP_DIR.match(path.name)] if root.is_dir() else []
    return sorted(found, key=checkpoint_step)


def checkpoint_problems(path: str | Path, num_processes: int) -> list[str]:
    """Why `path` cannot resume a run of `num_processes` exactly; empty when it can. Reads every file once."""
    manifest = Path(path) / CHECKSUMS_NAME
    if not manifest.is_file():
        return [f"it has no {CHECKSUMS_NAME} (written by a run that was killed, or by an older ovmlv)"]
    try:
        problems = checksum_problems(manifest)
        files = read_checksums(manifest)
    except ChecksumError as err:
        return [str(err)]
    ranks = sorted(int(match.group(1)) for name in files if (match := _RANDOM_STATES.match(name)))
    if ranks != list(range(num_processes)):
        problems.append(
            f"it holds the RNG states of {len(ranks)} process(es), this run has {num_processes}: resume with "
            f"{len(ranks)} processes (the data order and random draws depend on the process count)"
        )
    return problems


def latest_checkpoint(output_dir: str | Path, num_processes: int = 1) -> Path | None:
    """The newest checkpoint that can resume the run exactly; each newer one that cannot is logged with the reason."""
    for path in reversed(list_checkpoints(output_dir)):
        problems = checkpoint_problems(path, num_processes)
        if not problems:
            return path
        logger.warning("Not resuming from %s: %s.", path, "; ".join(problems))
    return None


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
    """Save the training state at `step` (every process takes part) and publish it in one rename; keep the newest
    `keep` checkpoints."""
    path = checkpoint_path(output_dir, step)
    staged = staging_folder(path)
    if accelerator.is_main_process:
        for leftover in path.parent.glob(".step_*"):  # staging or removal cut short by a kill
            shutil.rmtree(leftover)
        staged.mkdir(parents=True)
    accelerator.wait_for_everyone()
    deepspeed = accelerator.distributed_type == DistributedType.DEEPSPEED
    try:
        accelerator.save_state(str(staged), **({"exclude_frozen_parameters": True} if deepspeed else {}))
    except Exception as error:
        if not is_disk_full(error):
            raise
        shutil.rmtree(staged, ignore_errors=True)  # no half-written checkpoint stays behind
        raise disk_full_error(path) from error
    accelerator.wait_for_everyone()  # every process's files are in place
    if accelerator.is_main_process:
        write_checksums(staged)
        publish_folder(staged, path)
        if keep is not None:
            for old in list_checkpoints(output_dir)[:-keep]:
                remove_folder(old)
    accelerator.wait_for_everyone()
    return path


def load_checkpoint(accelerator: Accelerator, model: torch.nn.Module, path: str | Path) -> int:
    """Restore everything `save_checkpoint` wrote (RNG states included); returns the checkpoint's step."""
    path = Path(path)
    if problems := checkpoint_problems(path, accelerator.num_processes):
        raise CheckpointError(f"Cannot resume exactly from {path}: {'; '.join(problems)}.")
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        accelerator.load_state(str(path), load_module_strict=False)
    else:
        with safe_open(path / SAFE_WEIGHTS_NAME, framework="pt") as weights:
            saved = set(weights.keys())
        if missing := sorted(_trainable_names(model) - saved):
            raise CheckpointError(
                f"Checkpoint {path} lacks {len(missing)} trainable weight(s) of this model, e.g. {missing[:3]}: it was "
                "written by a run with another model configuration. Resume with that configuration or a new "
                "output_dir."
            )
        accelerator.load_state(str(path), strict=False)
    _check_random_states_restored(path, accelerator.process_index)
    return checkpoint_step(path)


def _check_random_states_restored(path: Path, process_index: int) -> None:
    """Accelerate only logs at INFO when it cannot restore the RNG states; a resumed run would then draw other
    negatives and frames than an uninterrupted one. Compare the live states with the saved ones instead."""
    states_file = path / f"{RNG_STATE_NAME}_{process_index}.pkl"
    try:
        saved = accelerate_load(states_file)
        restored = (
            random.getstate() == saved["random_state"]
            and _same_numpy_state(np.random.get_state(), saved["numpy_random_seed"])
            and torch.equal(torch.get_rng_state(), saved["torch_manual_seed"])
            and (
                not torch.cuda.is_available()
                or all(
                    torch.equal(live, stored)
                    for live, stored in zip(
                        torch.cuda.get_rng_state_all(), saved["torch_cuda_manual_seed"], strict=True
                    )
                )
            )
        )
    except Exception as err:  # any reason the file cannot be read back is a failed restore
        raise CheckpointError(f"Cannot read the RNG states {states_file} back ({err}).") from err
    if not restored:
        raise CheckpointError(
            f"The RNG states in {states_file} were not restored, so the resumed run would not match an uninterrupted "
            "one; resume on the same kind of machine (CPU/GPU count) as the run that wrote it."
        )


def _same_numpy_state(live: tuple, saved: tuple) -> bool:
    return len(live) == len(saved) and all(
        np.array_equal(a, b) if isinstance(a, np.ndarray) else a == b for a, b in zip(live, saved, strict=True)
    )
