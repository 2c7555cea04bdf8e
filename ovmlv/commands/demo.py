"""`ovmlv demo`: the main job end to end on the model organism, offline (`ovmlv.organism.demo.run_demo`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ovmlv.arguments import EXIT_OK
from ovmlv.organism.harness_defaults import DEMO_OUT, ORGANISM_TOWERS, QUICK_OUT, QUICK_STEPS, default_steps


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, help=f"output folder (default: {DEMO_OUT}, or {QUICK_OUT} with --quick)")
    parser.add_argument(
        "--towers", type=Path, default=ORGANISM_TOWERS, help="clip/ and t5/ (default: the organism's, %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=0, help="world and training seed (default: %(default)s)")
    parser.add_argument(
        "--steps",
        type=int,
        help=f"training steps (default: the recipe's, {default_steps(quick=False)}; {QUICK_STEPS} with --quick)",
    )
    parser.add_argument("--quick", action="store_true", help="a tiny budget on a small world that checks the plumbing")
    parser.add_argument(
        "--fresh", action="store_true", help="train again even if --out holds a finished run of the same settings"
    )


def run(args: argparse.Namespace) -> int:
    from ovmlv.organism.demo import run_demo

    run_demo(args.out, towers_dir=args.towers, steps=args.steps, seed=args.seed, quick=args.quick, fresh=args.fresh)
    return EXIT_OK
