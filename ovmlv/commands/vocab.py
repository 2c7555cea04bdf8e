"""`ovmlv vocab build|add|remove|list`: a model's label bank, the precomputed embeddings of its vocabulary saved
beside it (label_bank.safetensors + label_bank.json), so those labels are never re-encoded per video."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ovmlv.arguments import (
    EXIT_CODES,
    EXIT_OK,
    CommandError,
    add_label_arguments,
    add_model_argument,
    given_labels,
    int_at_least,
)
from ovmlv.saved_models import load_model
from ovmlv.tables import format_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "The label bank holds precomputed embeddings of a vocabulary, saved beside the model\n"
        "(label_bank.safetensors + label_bank.json), so those labels are never re-encoded per video."
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def action(name: str, summary: str) -> argparse.ArgumentParser:
        return actions.add_parser(
            name,
            help=summary,
            description=summary[0].upper() + summary[1:] + ".",
            epilog=EXIT_CODES,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    for name, summary, run_action in (
        ("build", "encode a vocabulary into a new label bank (replaces any)", build),
        ("add", "encode labels and append the new ones to the label bank", add),
    ):
        sub = action(name, summary)
        add_model_argument(sub)
        add_label_arguments(sub, "labels to encode")
        sub.add_argument(
            "--batch-size", type=int_at_least(1), default=256, help="labels per encoder call (default: 256)"
        )
        _add_out_argument(sub)
        sub.set_defaults(run_action=run_action)
    remove_parser = action("remove", "drop labels from the label bank")
    remove_parser.add_argument("labels", nargs="+", metavar="LABEL")
    add_model_argument(remove_parser)
    _add_out_argument(remove_parser)
    remove_parser.set_defaults(run_action=remove)
    show = action("list", "print the label bank's labels")
    add_model_argument(show)
    show.add_argument("--json", action="store_true", help="print a JSON list")
    show.set_defaults(run_action=list_labels)


def run(args: argparse.Namespace) -> int:
    return args.run_action(args)


def _add_out_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, help="folder to save the label bank in (default: the model folder)")


def _bank_dir(args: argparse.Namespace) -> Path:
    """Where to save a changed label bank: --out, else the model folder (a Hub id needs --out)."""
    if args.out is not None:
        return args.out
    if not Path(args.model).is_dir():
        raise CommandError(f"{args.model} is not a local folder: pass --out DIR to save the label bank.")
    return Path(args.model)


def _labels_or_fail(args: argparse.Namespace) -> list[str]:
    labels = given_labels(args)
    if not labels:
        raise CommandError("no labels given: pass --labels and/or --labels-file.")
    return labels


def _bank_lock(out: Path):
    """Changes to one bank, one at a time: a second `vocab add` waits for the first, then adds to its result
    (`ovmlv.modeling_ovmlv.file_locks`)."""
    from ovmlv.modeling_ovmlv.file_locks import locked
    from ovmlv.modeling_ovmlv.label_bank import BANK_LABELS_NAME

    return locked(out / BANK_LABELS_NAME)


def build(args: argparse.Namespace) -> int:
    from ovmlv.modeling_ovmlv import LabelBank

    labels = _labels_or_fail(args)
    out = _bank_dir(args)
    model, processor = load_model(args.model)
    bank = LabelBank.build(model, processor, labels, batch_size=args.batch_size)
    with _bank_lock(out):
        bank.save(out)
    print(f"Saved a label bank of {len(bank)} labels to {out}")
    return EXIT_OK


def add(args: argparse.Namespace) -> int:
    labels = _labels_or_fail(args)
    out = _bank_dir(args)
    model, processor = load_model(args.model)
    with _bank_lock(out):
        bank = _current_bank(args, model)
        if bank is None:
            raise CommandError(f"{args.model} has no label bank yet: create one with `ovmlv vocab build`.")
        added = bank.add(model, processor, labels, batch_size=args.batch_size)
        bank.save(out)
    print(f"Added {len(added)} labels ({len(labels) - len(added)} already there); {len(bank)} in {out}")
    return EXIT_OK


def _load_bank(model: str):
    from ovmlv.modeling_ovmlv import LabelBank

    bank = LabelBank.from_pretrained(model)
    if bank is None:
        raise CommandError(f"{model} has no label bank: create one with `ovmlv vocab build`.")
    return bank


def _current_bank(args: argparse.Namespace, model):
    """The model's bank to change, read again under the lock when it is saved where it was read from: another
    writer may have changed it since the model loaded."""
    from ovmlv.modeling_ovmlv import LabelBank

    if _bank_dir(args).resolve() != Path(args.model).resolve():
        return model.label_bank
    return LabelBank.from_pretrained(args.model, model.label_encoder_fingerprint)


def remove(args: argparse.Namespace) -> int:
    out = _bank_dir(args)
    with _bank_lock(out):
        bank = _load_bank(args.model)
        bank.remove(args.labels)
        bank.save(out)
    print(f"Removed {len(set(args.labels))} labels; {len(bank)} left in {out}")
    return EXIT_OK


def list_labels(args: argparse.Namespace) -> int:
    bank = _load_bank(args.model)
    if args.json:
        print(json.dumps(bank.labels, ensure_ascii=False, indent=1))
    else:
        print(f"{len(bank)} labels (embedding size {bank.dim}) in {args.model}")
        print(format_table(["#", "label"], [[str(i), label] for i, label in enumerate(bank.labels, 1)]))
    return EXIT_OK
