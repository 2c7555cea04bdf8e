"""`ovmlv tiny-towers`: tiny random CLIP and T5 towers for tests (`ovmlv.organism.tiny_towers`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ovmlv.arguments import EXIT_OK
from ovmlv.organism.harness_defaults import TOKENIZERS_DIR


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, help="folder to write clip/ and t5/ into")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--initializer-factor",
        type=float,
        default=1.0,
        help="scale of CLIP's init (3 makes random features differ between inputs)",
    )
    parser.add_argument("--retrain-tokenizers", action="store_true", help=f"remake the tokenizers in {TOKENIZERS_DIR}")


def run(args: argparse.Namespace) -> int:
    from ovmlv.organism.tiny_towers import build_tiny_towers, train_tokenizers

    if args.retrain_tokenizers:
        train_tokenizers()
    if args.out is not None:
        towers = build_tiny_towers(args.out, seed=args.seed, initializer_factor=args.initializer_factor)
        print(f"tiny CLIP: {towers.clip}\ntiny T5:   {towers.llm}")
    return EXIT_OK
