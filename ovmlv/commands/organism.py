"""`ovmlv organism`: make the model organism's towers, or measure them (`ovmlv.organism.pretraining.make`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ovmlv.arguments import EXIT_OK, CommandError
from ovmlv.organism.harness_defaults import ORGANISM_TOWERS

MEASURE_OUT = Path("outputs/organism_targets")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, help="where the towers go (or, with --measure, the results)")
    parser.add_argument("--measure", action="store_true", help="only measure the targets of --towers")
    parser.add_argument(
        "--towers", type=Path, default=ORGANISM_TOWERS, help="with --measure: clip/ and t5/ to measure"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (the committed organism was made with 1)"
    )
    parser.add_argument("--toy", action="store_true", help="tiny sizes and budgets: a plumbing check in seconds")
    parser.add_argument("--t5-only", action="store_true", help="pretrain the T5 alone, keeping --out's CLIP")


def run(args: argparse.Namespace) -> int:
    from ovmlv.organism.pretraining.make import make_organism, measure_organism
    from ovmlv.organism.pretraining.targets import targets_markdown

    if args.measure:
        out = args.out or MEASURE_OUT
        result = measure_organism(args.towers, out, seed=args.seed, toy=args.toy, threads=args.threads)
        print(f"\n{targets_markdown(result)}\n\nWritten to {out / 'targets.md'} and targets.json")
        return EXIT_OK
    if args.out is None:
        raise CommandError("--out is required: the folder the towers go into.")
    record = make_organism(args.out, seed=args.seed, toy=args.toy, threads=args.threads, t5_only=args.t5_only)
    print(
        f"\n{targets_markdown(record['targets'])}\n\n"
        f"Towers in {args.out}/clip and {args.out}/t5; record in {args.out / 'organism.json'}"
    )
    return EXIT_OK
