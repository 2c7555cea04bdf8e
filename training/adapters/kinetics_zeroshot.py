"""Kinetics-600 zero-shot (Chen & Huang, ICCV 2021, "Elaborative Rehearsal", ER): the K600 classes K400 lacks.

The protocol: train on Kinetics-400; test on the Kinetics-600 classes whose names are not Kinetics-400 classes
(220), in three splits of 160 test classes each (the other 60 are that split's validation classes), on K600's
labelled test clips. The splits are ER's files (github.com/DeLightCMU/ElaborativeRehearsal,
datasets/Kinetics/zsl220/): `tst_class_idxs.json` (or `val_class_idxs.json`), three lists of indices into their
class list `classes620_label_defn.json` (K400's 400 classes, then the 220; entries {"word", ...}). Give both
(--class-split, --class-names) and --fold to write one split; a text file of class names, one a line, also works
as --class-split. Without a split file every novel class is written. The novel classes are K600's (the labels of
--annotations) minus K400's (--k400-classes: a K400 CSV or one name a line), compared ignoring case and
underscores; every class of a split must be among them. Video paths as for `kinetics`.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ovmlv.text_files import read_lines

from . import kinetics
from .manifest import Adapted, AnnotationError, clean_label, read_json, require_keys

VIDEO_PATTERN = kinetics.VIDEO_PATTERN


def _key(name: str) -> str:
    return clean_label(name).lower()


def class_list(path: str | Path) -> list[str]:
    """A Kinetics CSV's labels, or a text file's lines."""
    if Path(path).suffix.lower() == ".csv":
        return kinetics.read([path]).vocabulary
    return read_lines(path, "Class list")


def split_classes(split_file: str | Path, names_file: str | Path | None, fold: int | None) -> list[str]:
    """The classes of one split: ER's index lists resolved through their class list, or a text file's names."""
    if Path(split_file).suffix.lower() != ".json":
        return read_lines(split_file, "Class split")
    if names_file is None or fold is None:
        raise AnnotationError(
            f"Class split {split_file} holds class indices: give --class-names (ER's classes620_label_defn.json) "
            "and --fold."
        )
    folds = read_json(split_file, "Class split")
    if not (isinstance(folds, list) and len(folds) >= fold and isinstance(folds[fold - 1], list)):
        raise AnnotationError(f"Class split {split_file}: expected a list of index lists, one per fold (fold {fold}).")
    entries = read_json(names_file, "Class names")
    if not isinstance(entries, list):
        raise AnnotationError(f"Class names {names_file}: expected a list of {{'word': ...}} entries.")
    names = []
    for index in folds[fold - 1]:
        if not (isinstance(index, int) and 0 <= index < len(entries)):
            raise AnnotationError(
                f"Class split {split_file}: index {index!r} is outside {names_file}'s {len(entries)} classes."
            )
        require_keys(entries[index], ["word"], f"Class names {names_file}, entry {index}")
        names.append(entries[index]["word"])
    return names


def read(
    paths: Sequence[str | Path],
    k400_classes: str | Path,
    class_split: str | Path | None = None,
    class_names: str | Path | None = None,
    fold: int | None = None,
    full_videos: bool = False,
) -> Adapted:
    k600 = kinetics.read(paths, full_videos=full_videos)
    known = {_key(name) for name in class_list(k400_classes)}
    novel = {_key(label): label for label in k600.vocabulary if _key(label) not in known}
    chosen = list(novel.values())
    if class_split is not None:
        wanted = split_classes(class_split, class_names, fold)
        if unknown := [name for name in wanted if _key(name) not in novel]:
            raise AnnotationError(
                f"Class split {class_split}: {len(unknown)} class(es) are not K600 classes missing from K400, e.g. "
                f"{unknown[:5]}; check --k400-classes and that --annotations is a labelled K600 CSV."
            )
        chosen = [novel[_key(name)] for name in wanted]
    keep = set(chosen)
    clips = [clip for clip in k600.clips if clip.labels[0] in keep]
    notes = [f"{len(novel)} K600 classes are not K400 classes (the protocol has 220)"]
    return Adapted(clips, sorted(keep), notes=notes)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--annotations", required=True, nargs="+", help="labelled Kinetics-600 CSV(s), e.g. test.csv")
    parser.add_argument("--k400-classes", required=True, help="a Kinetics-400 CSV, or its class names one a line")
    parser.add_argument(
        "--class-split", help="ER's tst_class_idxs.json / val_class_idxs.json, or class names one a line"
    )
    parser.add_argument("--class-names", help="ER's classes620_label_defn.json (with a JSON --class-split)")
    parser.add_argument("--fold", type=int, choices=[1, 2, 3], help="which of ER's three splits")
    parser.add_argument("--full-videos", action="store_true", help="files are whole YouTube videos, as for kinetics")
    parser.set_defaults(
        adapt=lambda args: read(
            args.annotations, args.k400_classes, args.class_split, args.class_names, args.fold, args.full_videos
        )
    )
