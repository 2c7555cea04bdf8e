"""Training and validation data: manifests read with `datasets`, mixed by weight, decoded in DataLoader workers.

A manifest is JSONL (or a JSON array) or CSV with one row per video: `video` (path relative to the manifest's folder,
absolute, or a URL), `labels` (a list; in CSV one string, labels separated by `|`), optional `start`/`end` seconds (a
segment of a longer video, e.g. YouTube-8M segments, Kinetics clips) and `source` (dataset name; default the
manifest's name). Rows are normalised to absolute paths and one schema, so several manifests interleave into one
`datasets.Dataset` (YouTube-8M + Kinetics-400 in the paper).

Videos are decoded by `processing` (PyAV) in the workers. An unreadable or missing video never stops training: it is
logged and counted (the count rides along in the batch, so it survives worker processes), and a training clip
takes the next readable video of the dataset instead, so every batch keeps B videos; DDP ranks and DeepSpeed need
equal batches. Validation never substitutes (that would bias the metrics): the video is marked invalid and left
out of the metrics.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from torch.utils.data import Dataset

from ovmlv.processing import OvmlvProcessor
from ovmlv.processing.video_decoding import VideoDecodeError
from ovmlv.text_files import read_lines

from .batching import Vocabulary
from .config import DataConfig, ManifestConfig
from .manifest_rows import check_manifest

logger = logging.getLogger(__name__)

RECORD_FEATURES = datasets.Features(
    {
        "video": datasets.Value("string"),
        "labels": datasets.Sequence(datasets.Value("string")),
        "start": datasets.Value("float64"),
        "end": datasets.Value("float64"),
        "source": datasets.Value("string"),
    }
)
CSV_LABEL_SEPARATOR = "|"


def read_label_kinds(path: str | Path) -> dict[str, str]:
    """`{label: kind}` from JSON (the synthetic generator's labels.json)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_manifest(spec: ManifestConfig) -> datasets.Dataset:
    """The manifest's rows in the `RECORD_FEATURES` schema, with absolute video paths. Rows are checked first
    (`manifest_rows.py`), so a mistake is reported with its file and line, not as a datasets traceback."""
    path = Path(spec.manifest).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"Manifest not found: {path}")
    check_manifest(path)
    is_csv = path.suffix.lower() in (".csv", ".tsv")
    if is_csv:
        raw = datasets.Dataset.from_csv(str(path), sep="\t" if path.suffix.lower() == ".tsv" else ",")
    else:
        raw = datasets.Dataset.from_json(str(path))

    def normalise(row: dict[str, Any]) -> dict[str, Any]:
        labels = row["labels"] or []  # an empty CSV cell reads as None: a video without labels
        if isinstance(labels, str):
            labels = labels.split(CSV_LABEL_SEPARATOR)
        video = row["video"]
        return {
            "video": video if "://" in video else str(path.parent / video),  # absolute paths and URLs stay
            "labels": [label for label in map(str.strip, labels) if label],  # "" is no label
            "start": row.get("start"),
            "end": row.get("end"),
            "source": row.get("source") or spec.name,
        }

    return raw.map(normalise, remove_columns=raw.column_names, features=RECORD_FEATURES)


def manifest_vocabulary(spec: ManifestConfig, records: datasets.Dataset) -> list[str]:
    """The manifest's vocabulary file, or the labels it uses (sorted); every label used must be in it."""
    used = {label for labels in records["labels"] for label in labels}
    if spec.vocabulary is None:
        return sorted(used)
    vocabulary = read_lines(spec.vocabulary, f"Vocabulary of manifest {spec.manifest}")
    if unknown := sorted(used - set(vocabulary)):
        raise ValueError(
            f"Manifest {spec.manifest} uses {len(unknown)} label(s) missing from its vocabulary {spec.vocabulary}, "
            f"e.g. {unknown[:5]}; add them to the vocabulary or fix the manifest."
        )
    return vocabulary


@dataclass
class TrainingData:
    records: datasets.Dataset  # the mixed manifests
    vocabulary: Vocabulary  # union of the manifests' vocabularies: where negatives N_B come from


def load_training_data(config: DataConfig, seed: int) -> TrainingData:
    """Read and mix the training manifests; with one manifest there is nothing to mix."""
    if not config.train:
        raise ValueError("data.train is empty: give at least one training manifest.")
    parts = [read_manifest(spec) for spec in config.train]
    vocabulary = Vocabulary(
        [label for spec, part in zip(config.train, parts, strict=True) for label in manifest_vocabulary(spec, part)]
    )
    if len(parts) == 1:
        return TrainingData(parts[0], vocabulary)
    weights = np.array([spec.weight for spec in config.train])
    records = datasets.interleave_datasets(
        parts, probabilities=list(weights / weights.sum()), seed=seed, stopping_strategy=config.mixing
    )
    return TrainingData(records, vocabulary)


class VideoClips(Dataset):
    """Manifest records -> `{"pixel_values_videos", "labels", "valid", "skipped"}`, decoding in the worker.

    sampling: "segment_random" (training; the frames depend on (seed, epoch, index) only, so every epoch sees other
    frames and a resumed run sees the same ones) or "uniform" (evaluation; `num_clips > 1` = equal windows).
    replace_bad: take the next readable record for an unreadable one (training) instead of marking it invalid.
    """

    def __init__(
        self,
        records: datasets.Dataset,
        processor: OvmlvProcessor,
        num_frames: int,
        num_clips: int = 1,
        sampling: str = "segment_random",
        seed: int = 0,
        replace_bad: bool = True,
        max_consecutive_bad: int = 16,
    ):
        self.records = records
        self.processor = processor
        self.num_frames = num_frames
        self.num_clips = num_clips
        self.sampling = sampling
        self.seed = seed
        self.replace_bad = replace_bad
        self.max_consecutive_bad = max_consecutive_bad
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called before each epoch; DataLoader workers are re-created per epoch (not persistent) and copy it."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        skipped: list[str] = []
        attempts = self.max_consecutive_bad if self.replace_bad else 1
        for offset in range(attempts):
            position = (index + offset) % len(self)
            record = self.records[position]
            try:
                pixels = self.pixel_values(record, (self.seed, self.epoch, position))
            except VideoDecodeError as error:
                logger.warning("Skipping an unreadable video: %s", error)
                skipped.append(record["video"])
                continue
            return {"pixel_values_videos": pixels, "labels": record["labels"], "valid": True, "skipped": skipped}
        if self.replace_bad:
            raise RuntimeError(
                f"{attempts} consecutive videos from record {index} on could not be decoded, e.g. {skipped[:3]}: "
                "check the manifest's paths (they are relative to the manifest's folder)."
            )
        return {"pixel_values_videos": self.blank(), "labels": record["labels"], "valid": False, "skipped": skipped}

    def pixel_values(self, record: dict[str, Any], seed: tuple[int, ...]) -> torch.Tensor:
        """(T, 3, S, S), or (clips, T, 3, S, S) when num_clips > 1, from the record's segment or the whole video."""
        segment = None if record["start"] is None else (record["start"], record["end"])
        return self.processor.video_pixel_values(
            record["video"], self.num_frames, self.num_clips, self.sampling, np.random.default_rng(seed), segment
        )[0]

    def blank(self) -> torch.Tensor:
        """Zeros in the shape of a clip, standing in for an unreadable validation video (masked out later)."""
        return self.processor.blank_pixel_values(1, self.num_frames, self.num_clips)[0]


def collate_clips(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack clips; labels stay strings (the label batch is built per step); bad videos travel as a count."""
    return {
        "pixel_values_videos": torch.stack([sample["pixel_values_videos"] for sample in samples]),
        "labels": [sample["labels"] for sample in samples],
        "valid": torch.tensor([sample["valid"] for sample in samples]),
        "num_skipped_videos": torch.tensor(sum(len(sample["skipped"]) for sample in samples)),
    }
