"""ActivityNet 1.3 (Caba Heilbron et al., CVPR 2015): untrimmed YouTube videos with labelled activity segments.

Format (activity_net.v1-3.min.json, activity-net.org/download.html): {"version", "taxonomy": [{nodeId, nodeName,
parentId, parentName}], "database": {youtube_id: {"subset": "training" | "validation" | "testing", "url",
"duration", "resolution", "annotations": [{"segment": [start, end], "label"}]}}}. The classes (200) are the
taxonomy's leaves. Default: one row per video with the union of its segments' labels; --segments: one row per
segment with its start/end (the end clipped to the video's duration). The testing subset's annotations are held
out. The official crawler (Crawler/run_crosscheck.py) saves videos as `v_<youtube_id>.mp4`; pattern field: `id`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .manifest import Adapted, AnnotationError, Clip, read_json, records, require_keys

VIDEO_PATTERN = "v_{id}.mp4"
SUBSETS = {"train": "training", "val": "validation", "test": "testing"}


def taxonomy_leaves(data: dict, where: str) -> list[str]:
    """The classes: taxonomy nodes that are no node's parent, in file order."""
    nodes = records(data, "taxonomy", ("nodeId", "nodeName", "parentId"), where)
    parents = {node["parentId"] for node in nodes}
    return [node["nodeName"] for node in nodes if node["nodeId"] not in parents]


def read(path: str | Path, split: str, segments: bool = False) -> Adapted:
    data = read_json(path, "ActivityNet annotations")
    where = f"ActivityNet annotations {path}"
    require_keys(data, ["database"], where)
    classes = taxonomy_leaves(data, where)
    known = set(classes)
    subset = SUBSETS[split]
    clips, unlabelled, empty = [], 0, 0
    for video_id, video in data["database"].items():
        require_keys(video, ["subset", "annotations"], f"{where}, database[{video_id!r}]")
        if video["subset"] != subset:
            continue
        if not video["annotations"]:
            unlabelled += 1
            continue
        duration = video.get("duration")
        labels: list[str] = []
        for index, annotation in enumerate(video["annotations"]):
            place = f"{where}, database[{video_id!r}].annotations[{index}]"
            require_keys(annotation, ["segment", "label"], place)
            if annotation["label"] not in known:
                raise AnnotationError(
                    f"{where}: video {video_id!r} has label {annotation['label']!r}, not a taxonomy leaf."
                )
            if not segments:
                labels.append(annotation["label"])
                continue
            segment = annotation["segment"]
            if not (
                isinstance(segment, list) and len(segment) == 2 and all(isinstance(t, (int, float)) for t in segment)
            ):
                raise AnnotationError(f"{place}: `segment` should be [start, end] in seconds, got {segment!r}.")
            start, end = segment
            end = min(end, duration) if duration else end
            if end > start:
                clips.append(Clip({"id": video_id}, [annotation["label"]], float(start), float(end)))
            else:
                empty += 1
        if labels:
            clips.append(Clip({"id": video_id}, list(dict.fromkeys(labels))))
    if not clips:
        raise AnnotationError(
            f"{where}: no annotated videos in subset {subset!r}"
            + (" (the testing subset's annotations are held out)." if unlabelled else ".")
        )
    notes = [f"{unlabelled} {subset} videos without annotations left out"] if unlabelled else []
    notes += [f"{empty} segments empty after clipping to the video's duration left out"] if empty else []
    return Adapted(clips, classes, notes=notes)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--annotations", required=True, help="activity_net.v1-3.min.json")
    parser.add_argument(
        "--split", required=True, choices=list(SUBSETS), help="subset: train/val/test = training/validation/testing"
    )
    parser.add_argument("--segments", action="store_true", help="one row per annotated segment, with start/end")
    parser.set_defaults(adapt=lambda args: read(args.annotations, args.split, args.segments))
