"""RareAct (Miech et al., 2020): unusual verb-noun interactions in YouTube clips, each clip rated for one class.

Format (rareact.csv, github.com/antoine77340/RareAct): id,video_id,start,end,class_id,verb,noun,annotation; one
row per rating of a clip (video_id, start, end seconds) for a verb-noun class. annotation: 1 = positive; 2 = hard
negative, only the verb is right; 3 = hard negative, only the noun is right; 4 = hard negative, verb and noun are
both right but the verb is not applied to the noun; 0 = negative. Each clip becomes one row (its ratings merged)
whose positives are, per rating: 1 -> the verb, the noun and "verb noun"; 2 -> the verb; 3 -> the noun; 4 -> the
verb and the noun; 0 -> nothing. A clip with no positives keeps its row with no labels: RareAct is about telling
these negatives apart. Kinds: verb, noun, noun-verb; a word used as both ("microwave") gets kind "noun/verb".
The vocabulary is every verb, noun and pair rated. Videos are named by YouTube id; pattern field: `video_id`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .manifest import Adapted, AnnotationError, Clip, number, read_csv

VIDEO_PATTERN = "{video_id}.mp4"
COLUMNS = ("video_id", "start", "end", "verb", "noun", "annotation")
POSITIVES = {"0": (), "1": ("verb", "noun", "pair"), "2": ("verb",), "3": ("noun",), "4": ("verb", "noun")}
PAIR_KIND = "noun-verb"


def read(path: str | Path) -> Adapted:
    rows = read_csv(path, "RareAct annotations", COLUMNS)
    clips: dict[tuple[str, float, float], Clip] = {}
    kinds: dict[str, set[str]] = {}
    for line, row in enumerate(rows, start=2):  # line 1 is the header
        where = f"RareAct annotations {path}, line {line}"
        if row["annotation"] not in POSITIVES:
            raise AnnotationError(f"{where}: annotation should be 0-4, got {row['annotation']!r}.")
        verb, noun = row["verb"].strip(), row["noun"].strip()
        labels = {"verb": verb, "noun": noun, "pair": f"{verb} {noun}"}
        for role, label in labels.items():
            kinds.setdefault(label, set()).add(PAIR_KIND if role == "pair" else role)
        start, end = number(row["start"], where), number(row["end"], where)
        clip = clips.setdefault((row["video_id"], start, end), Clip({"video_id": row["video_id"]}, [], start, end))
        clip.labels = list(dict.fromkeys(clip.labels + [labels[role] for role in POSITIVES[row["annotation"]]]))
    if not clips:
        raise AnnotationError(f"RareAct annotations {path} has no rows.")
    vocabulary = sorted(kinds)
    return Adapted(list(clips.values()), vocabulary, {label: "/".join(sorted(kinds[label])) for label in vocabulary})


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--annotations", required=True, help="rareact.csv")
    parser.set_defaults(adapt=lambda args: read(args.annotations))
