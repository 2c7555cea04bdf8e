"""UCF101 (Soomro et al., 2012): 101 actions in three train/test folds.

Format (UCF101TrainTestSplits-RecognitionTask.zip, folder ucfTrainTestlist/): classInd.txt, lines "1
ApplyEyeMakeup"; trainlist0N.txt, lines "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1" (1-based class index);
testlist0N.txt, the path alone (the class is its folder). Paths are relative to the UCF-101/ folder of UCF101.rar;
pattern fields: `path`, `folder`, `file`. Class names are split where a lower-case letter meets an upper-case one,
"ApplyEyeMakeup" -> "apply eye makeup", "YoYo" -> "yo yo", with no exceptions: edit the vocabulary and manifest if
you want other wording. Folders are matched to classInd.txt ignoring case.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ovmlv.text_files import read_lines

from .manifest import Adapted, AnnotationError, Clip, split_camel_case

VIDEO_PATTERN = "{path}"


def read(folder: str | Path, split: str, fold: int) -> Adapted:
    folder = Path(folder)
    classes: dict[int, str] = {}
    for line in read_lines(folder / "classInd.txt", "UCF101 class index", item="class"):
        index, _, name = line.partition(" ")
        if not index.isdigit() or not name:
            raise AnnotationError(
                f"UCF101 class index {folder / 'classInd.txt'}: expected '<index> <Class>', got {line!r}."
            )
        classes[int(index)] = name.strip()
    by_folder = {name.lower(): name for name in classes.values()}
    split_file = folder / f"{split}list0{fold}.txt"
    clips = []
    for number, line in enumerate(read_lines(split_file, f"UCF101 {split} list", item="video"), start=1):
        path, _, index = line.partition(" ")
        folder_name, _, file = path.partition("/")
        where = f"UCF101 {split} list {split_file}, line {number}"
        if folder_name.lower() not in by_folder or not file:
            raise AnnotationError(f"{where}: {path!r} is not '<Class>/<video>.avi' with a class of classInd.txt.")
        name = by_folder[folder_name.lower()]
        if index and (not index.strip().isdigit() or classes.get(int(index)) != name):
            raise AnnotationError(f"{where}: class index {index.strip()!r} does not name folder {folder_name!r}.")
        clips.append(Clip({"path": path, "folder": folder_name, "file": file}, [split_camel_case(name)]))
    return Adapted(clips, [split_camel_case(classes[index]) for index in sorted(classes)])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--annotations", required=True, help="the ucfTrainTestlist/ folder (classInd.txt, *list0N.txt)"
    )
    parser.add_argument("--split", required=True, choices=["train", "test"])
    parser.add_argument("--fold", type=int, required=True, choices=[1, 2, 3])
    parser.set_defaults(adapt=lambda args: read(args.annotations, args.split, args.fold))
