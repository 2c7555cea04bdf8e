"""`ovmlv budget`: the missed claims' variants trained at several step budgets (`ovmlv.organism.budget`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ovmlv.arguments import EXIT_OK, int_at_least, module_docstring, name_in
from ovmlv.organism.harness_defaults import BUDGET_REFERENCE, BUDGET_VARIANTS, ORGANISM_TOWERS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = module_docstring("ovmlv.organism.budget")
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--out", type=Path, default=Path("outputs/budget"), help="(default: %(default)s)")
    parser.add_argument(
        "--steps", type=int_at_least(1), nargs="+", default=[100, 1000], help="budgets (default: %(default)s)"
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        type=name_in(trainable_variants, "a claims variant"),
        default=list(BUDGET_VARIANTS),
        metavar="NAME",
        help="claims variants to train at each budget (default: %(default)s; any name of the claims table)",
    )
    parser.add_argument("--data", type=Path, help="a synthetic world folder to reuse (default: write one)")
    parser.add_argument("--towers", type=Path, default=ORGANISM_TOWERS, help="clip/ and t5/ (default: the organism)")
    parser.add_argument("--jobs", type=int_at_least(1), default=1, help="runs at once (default: %(default)s)")


def trainable_variants() -> list[str]:
    """The claims table's variants, but the frozen reference (measured once, untrained)."""
    from ovmlv.organism.claims import VARIANTS

    return sorted(set(VARIANTS) - {BUDGET_REFERENCE})


def run(args: argparse.Namespace) -> int:
    from ovmlv.organism.budget import run_budgets

    run_budgets(args.out, args.steps, args.variants, args.data, args.towers, args.jobs)
    return EXIT_OK
