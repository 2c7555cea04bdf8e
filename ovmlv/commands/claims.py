"""`ovmlv claims`: the paper's claims measured on the model organism (`ovmlv.organism.claims.measure_claims`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ovmlv.arguments import EXIT_OK, int_at_least, module_docstring
from ovmlv.organism.harness_defaults import ORGANISM_TOWERS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = module_docstring("ovmlv.organism.claims")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--out", type=Path, default=Path("outputs/claims"), help="(default: %(default)s)")
    parser.add_argument("--steps", type=int, help="training steps of every variant (default: the recipe's)")
    parser.add_argument("--data", type=Path, help="a synthetic world folder to reuse (default: write one)")
    parser.add_argument("--towers", type=Path, default=ORGANISM_TOWERS, help="clip/ and t5/ (default: the organism)")
    parser.add_argument("--jobs", type=int_at_least(1), default=1, help="runs at once (default: %(default)s)")
    parser.add_argument(
        "--extra-runs",
        type=int_at_least(0),
        help="at most this many runs to confirm close comparisons over 3 seeds (default: all of them)",
    )
    parser.add_argument("--no-extra-seeds", action="store_true", help="one seed only, even for close comparisons")


def run(args: argparse.Namespace) -> int:
    from ovmlv.organism.claims import measure_claims

    measure_claims(
        args.out,
        towers_dir=args.towers,
        data=args.data,
        steps=args.steps,
        jobs=args.jobs,
        extra_runs=0 if args.no_extra_seeds else args.extra_runs,
    )
    return EXIT_OK
