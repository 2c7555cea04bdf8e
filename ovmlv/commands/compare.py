"""`ovmlv compare`: every method on the synthetic world at one budget (`ovmlv.organism.compare`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ovmlv.arguments import EXIT_OK, name_in
from ovmlv.organism.harness_defaults import DEFAULT_METHODS, ORGANISM_TOWERS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("outputs/compare"))
    parser.add_argument(
        "--methods", nargs="+", type=name_in(methods, "a method"), default=list(DEFAULT_METHODS), metavar="METHOD"
    )
    parser.add_argument("--steps", type=int, help="training steps of every method (default: the recipe's)")
    parser.add_argument("--data", type=Path, help="a synthetic benchmark folder to reuse (default: build one)")
    parser.add_argument("--towers", type=Path, default=ORGANISM_TOWERS, help="clip/ and t5/ (default: the organism)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="a tiny budget (and data, if built) for a smoke test")


def methods() -> tuple[str, ...]:
    from ovmlv.modeling_ovmlv import METHODS

    return METHODS


def run(args: argparse.Namespace) -> int:
    from ovmlv.organism.compare import compare_methods

    compare_methods(args.out, args.methods, args.steps, args.data, args.towers, args.seed, args.quick)
    return EXIT_OK
