"""TAO (Dave et al., ECCV 2020): one row per video, labelled with the categories of its tracks.

Format (COCO/LVIS style; documented in the TAO toolkit, github.com/TAO-Dataset/tao, `tao/toolkit/tao/tao.py`):
{"videos": [{id, name, neg_category_ids, not_exhaustive_category_ids, ...}], "images": [...], "tracks": [{id,
category_id, video_id}], "annotations": [{id, image_id, video_id, track_id, category_id, bbox, ...}],
"categories": [{id, name, synset, ...}]}. Boxes and frames are ignored: a video's labels are the categories of its
tracks and annotations, LVIS names made readable ("baby_buggy" -> "baby buggy", "bow_(weapon)" -> "bow
(weapon)"). The vocabulary is the categories the file uses. The test split's annotations are held out.

TAO ships JPEG frames (`frames/<name>/`), not video files: encode each folder to `<name>.mp4` first (the default
--video-pattern), or point the pattern at what you have; its fields are `name` and `id`.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from itertools import chain
from pathlib import Path

from .manifest import Adapted, AnnotationError, Clip, clean_label, read_json, records

VIDEO_PATTERN = "{name}.mp4"


def read(path: str | Path) -> Adapted:
    data = read_json(path, "TAO annotations")
    where = f"TAO annotations {path}"
    videos = records(data, "videos", ("id", "name"), where)
    names = {
        category["id"]: clean_label(category["name"])
        for category in records(data, "categories", ("id", "name"), where)
    }
    labelled = [
        records(data, key, ("video_id", "category_id"), where) for key in ("tracks", "annotations") if key in data
    ]
    used: dict[int, set[int]] = defaultdict(set)  # video id -> category ids
    for item in chain.from_iterable(labelled):
        if item["category_id"] not in names:
            raise AnnotationError(f"{where}: category_id {item['category_id']} is not in `categories`.")
        used[item["video_id"]].add(item["category_id"])
    if not used:
        raise AnnotationError(f"{where} has no tracks or annotations (the test split's are held out).")
    clips = [
        Clip({"name": video["name"], "id": video["id"]}, [names[i] for i in sorted(used[video["id"]])])
        for video in videos
        if used[video["id"]]
    ]
    vocabulary = list(dict.fromkeys(names[i] for i in sorted(set().union(*used.values()))))
    skipped = len(videos) - len(clips)
    return Adapted(clips, vocabulary, notes=[f"{skipped} videos without tracks left out"] if skipped else [])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--annotations", required=True, help="TAO annotation JSON, e.g. annotations/validation.json")
    parser.set_defaults(adapt=lambda args: read(args.annotations))
