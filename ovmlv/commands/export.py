"""`ovmlv export`: a trained model as a complete Hub repo folder with its model card, optionally pushed
(`ovmlv.hub_cards.export` writes it)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ovmlv.arguments import EXIT_OK
from ovmlv.hub_cards.export_variants import VARIANTS, VariantOptions  # light: huggingface_hub waits for a variant
from ovmlv.text_files import read_lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`ovmlv export`'s options."""
    parser.add_argument(
        "--model", required=True, help="the trained model: a folder saved with its processor, or a Hub id"
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="the Hub repo folder to write")
    parser.add_argument(
        "--vocab",
        type=Path,
        metavar="FILE",
        help="training vocabulary, one label per line: builds the label bank (required when the model has none)",
    )
    parser.add_argument(
        "--eval",
        type=Path,
        metavar="FILE",
        help="evaluation results JSON for the card's model-index (schema: hub_cards/README.md)",
    )
    parser.add_argument(
        "--push",
        metavar="ORG/NAME",
        help="upload the folder to this Hub model repo (token: HF_TOKEN or hf auth login)",
    )
    parser.add_argument(
        "--repo-id", metavar="ORG/NAME", help="the id the card's usage snippets load (default: --push's)"
    )
    parser.add_argument("--private", action="store_true", help="create the pushed repo as private")
    parser.add_argument("--license", default="apache-2.0", help="the card's license (default: %(default)s)")
    parser.add_argument(
        "--base-model",
        action="append",
        dest="base_models",
        metavar="HUB_ID",
        help="a base model for the card, repeatable (default: the towers' Hub ids from the config)",
    )
    parser.add_argument(
        "--dataset", action="append", dest="datasets", metavar="HUB_ID", help="a training dataset, repeatable"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it is not empty")
    add_variant_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ovmlv.hub_cards.eval_results import read_eval_results
    from ovmlv.hub_cards.export import ExportError, export_model
    from ovmlv.hub_cards.push import push_folder

    repo_id = args.repo_id or args.push or f"your-username/{args.out.resolve().name}"
    folder = export_model(
        args.model,
        args.out,
        repo_id=repo_id,
        vocab=read_lines(args.vocab, "vocabulary") if args.vocab else None,
        eval_report=read_eval_results(args.eval) if args.eval else None,
        license=args.license,
        base_models=args.base_models,
        datasets=args.datasets,
        overwrite=args.overwrite,
        variant=variant_options(args),
    )
    print(f"Exported {folder}")
    if args.push:
        try:
            url = push_folder(folder, args.push, private=args.private)
        except OSError as err:  # huggingface_hub's HTTP, token and offline errors
            raise ExportError(f"{folder} is complete, but pushing it to {args.push} failed: {err}") from err
        print(f"Pushed to {url}")
    return EXIT_OK


def add_variant_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--variant",
        choices=VARIANTS,
        default="full",
        help="full: every weight (default); adapter: trained weights only, the towers fetched from the Hub by id "
        "and commit; fixed-vocabulary: no LLM nor CLIP text tower, the label bank's labels only",
    )
    parser.add_argument("--clip", metavar="HUB_ID", help="adapter: the CLIP tower's Hub id (default: the config's)")
    parser.add_argument("--clip-revision", metavar="REV", help="adapter: its branch, tag or commit (default: main)")
    parser.add_argument("--llm", metavar="HUB_ID", help="adapter: the T5 tower's Hub id (default: the config's)")
    parser.add_argument("--llm-revision", metavar="REV", help="adapter: its branch, tag or commit (default: main)")


def variant_options(args: argparse.Namespace) -> VariantOptions:
    return VariantOptions(args.variant, args.clip, args.clip_revision, args.llm, args.llm_revision)
