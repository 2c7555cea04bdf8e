"""`ovmlv train`: check the training configuration, then run the trainer under `accelerate launch`
(`ovmlv.training.launch`)."""

from __future__ import annotations

import argparse

from ovmlv.arguments import module_docstring
from ovmlv.training.config import CONFIGS, fields_help


def add_arguments(parser: argparse.ArgumentParser) -> None:
    shipped = ", ".join(sorted(path.stem for path in CONFIGS.glob("*.yaml")))
    parser.description = module_docstring("ovmlv.training.launch")
    parser.epilog = f"shipped configs: {shipped}\n\n{fields_help()}\n\n{parser.epilog or ''}"
    parser.add_argument("--config", metavar="YAML", help="training config: a file or a shipped name")
    parser.add_argument(
        "--launch-config", metavar="YAML", help="accelerate config: a file or a shipped name (default: accelerate's)"
    )
    parser.add_argument("--num-processes", type=int, help="processes to launch (default: the accelerate config's)")
    parser.add_argument("--main-process-ip", metavar="IP", help="address of rank 0 (default: accelerate's)")
    parser.add_argument(
        "--main-process-port", type=int, metavar="PORT", help="port of rank 0, one per concurrent run (default: 29500)"
    )


def run(args: argparse.Namespace) -> int:
    from ovmlv.training.launch import LaunchOptions, launch_training

    options = LaunchOptions(args.launch_config, args.num_processes, args.main_process_ip, args.main_process_port)
    return launch_training(args.config, args.unknown, options)
