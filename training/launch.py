"""`ovmlv train`: check the training configuration, then run the trainer (`ovmlv.training.train`) under `accelerate launch`.

    ovmlv train --config paper_recipe --lr 1e-4                        # one process (or accelerate's default config)
    ovmlv train --launch-config accelerate_zero2 --config paper_recipe  # DeepSpeed ZeRO-2 on 8 GPUs

`--config` and `--launch-config` take a file, or the name of one shipped in `training/configs/` (listed by
`--help`). The configuration and its overrides are read and checked here, so a typo fails in a second with one
line instead of after every process has started and loaded the towers.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ovmlv.arguments import CommandError
from ovmlv.hub_access import check_hub_reachable
from ovmlv.modeling_ovmlv.file_locks import locked
from ovmlv.yaml_files import load_yaml

from .checkpointing import check_output_dir
from .config import CONFIGS, TrainConfig, load_config, resumed_run_changes


def resolve(name: str, what: str) -> Path:
    """A config file given by path, or by the name of one shipped in training/configs/."""
    for candidate in (Path(name), CONFIGS / name, CONFIGS / f"{name}.yaml"):
        if candidate.is_file():
            return candidate
    raise CommandError(f"{what} {name!r} is neither a file nor a shipped config; run `ovmlv train --help` for those.")


@dataclass(frozen=True)
class LaunchOptions:
    """How `accelerate launch` starts the processes; None: accelerate's config (or default) decides."""

    launch_config: str | None = None  # a file or a shipped name
    num_processes: int | None = None
    main_process_ip: str | None = None
    main_process_port: int | None = None


def launch_command(config: str | None, overrides: list[str], options: LaunchOptions) -> list[str]:
    """The `accelerate launch` command line that runs the trainer module with the given config and overrides."""
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--quiet"]  # the trainer's error is the message
    if options.launch_config:
        launch_config = resolve(options.launch_config, "--launch-config")
        launch += ["--config_file", str(launch_config)]
        deepspeed_file = (
            load_yaml(launch_config.read_text(encoding="utf-8"), str(launch_config)).get("deepspeed_config") or {}
        ).get("deepspeed_config_file")
        if deepspeed_file and not Path(deepspeed_file).is_file():  # a shipped config names its JSON from the repo root
            launch += ["--deepspeed_config_file", str(CONFIGS / Path(deepspeed_file).name)]
    for flag in ("num_processes", "main_process_ip", "main_process_port"):
        if getattr(options, flag) is not None:
            launch += [f"--{flag}", str(getattr(options, flag))]
    config_args = ["--config", str(resolve(config, "--config"))] if config else []
    return [*launch, "-m", "ovmlv.training.train", *config_args, *overrides]


def check_data_files(config: TrainConfig, config_path: Path | None) -> None:
    """Every manifest, vocabulary and kinds file the config names exists: a missing one fails here, in one line,
    not after every process has loaded the towers."""
    specs = (*config.data.train, *config.data.validation)
    named = [path for spec in specs for path in (spec.manifest, spec.vocabulary, spec.kinds) if path is not None]
    if missing := [path for path in named if not Path(path).is_file()]:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise CommandError(
            f"{config_path or 'the config'} names data files that do not exist here: {shown}. Write the manifests "
            "with `ovmlv adapt DATASET ... --out DIR` (README: Dataset adapters), or give yours with "
            "--data.train / --data.validation."
        )


def launch_training(config_name: str | None, overrides: list[str], options: LaunchOptions) -> int:
    """Check the config (a file or a shipped name) with its `--section.field value` overrides, its output folder
    and data files, then run the trainer under `accelerate launch`; returns the launch's exit code."""
    config_path = resolve(config_name, "--config") if config_name else None
    config = load_config(config_path, overrides)  # fails here, in one line, on a bad field or value
    training = config.training
    with locked(training.output_dir, wait=False):  # a run already writing there: one line, before launching
        pass
    check_output_dir(training.output_dir, resume=training.resume, overwrite=training.overwrite)
    if training.resume:
        resumed_run_changes(config, training.output_dir)  # a change --resume refuses: one line, too
    check_data_files(config, config_path)
    for tower in (config.towers.clip, config.towers.llm):
        if tower is not None and not Path(tower).is_dir():
            check_hub_reachable(tower, "download the tower")  # seconds, not minutes of retries, offline
    return subprocess.run(launch_command(config_name, overrides, options), check=False).returncode
