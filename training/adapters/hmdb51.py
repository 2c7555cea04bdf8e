"""HMDB51 (Kuehne et al., ICCV 2011): 51 actions in three train/test folds.

Format (test_train_splits.rar, folder testTrainMulti_7030_splits/): one file per class and fold,
`<class>_test_split<N>.txt`, lines "<video>.avi <id>": 1 = training, 2 = testing, 0 = not used in that fold.
hmdb51_org.rar unpacks to one folder per class, named as in the split files; pattern fields: `folder`, `file`.
Class names lose their underscores: "brush_hair" -> "brush hair".
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ovmlv.text_files import read_lines

from .manifest import Adapted, AnnotationError, Clip, clean_label

VIDEO_PATTERN = "{folder}/{file}"
SPLIT_IDS = {"train": "1", "test": "2"}


def read(folder: str | Path, split: str, fold: int) -> Adapted:
    split_files = sorted(Path(folder).glob(f"*_test_split{fold}.txt"))
    if not split_files:
        raise AnnotationError(f"No HMDB51 split files '<class>_test_split{fold}.txt' in {folder}.")
    clips, classes = [], []
    for split_file in split_files:
        folder_name = split_file.name.removesuffix(f"_test_split{fold}.txt")
        label = clean_label(folder_name)
        classes.append(label)
        for number, line in enumerate(read_lines(split_file, "HMDB51 split file", item="video"), start=1):
            file, _, split_id = line.rpartition(" ")
            if split_id not in ("0", "1", "2") or not file:
                raise AnnotationError(
                    f"HMDB51 split file {split_file}, line {number}: expected '<video>.avi 0|1|2', got {line!r}."
                )
            if split_id == SPLIT_IDS[split]:
                clips.append(Clip({"folder": folder_name, "file": file.strip()}, [label]))
    return Adapted(clips, classes)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--annotations", required=True, help="the testTrainMulti_7030_splits/ folder")
    parser.add_argument("--split", required=True, choices=list(SPLIT_IDS))
    parser.add_argument("--fold", type=int, required=True, choices=[1, 2, 3])
    parser.set_defaults(adapt=lambda args: read(args.annotations, args.split, args.fold))
