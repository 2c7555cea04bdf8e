"""`ovmlv tag`: every indexed video scored against a vocabulary, ranked on tensors, written as JSONL or Parquet.

A score needs no video decoding once the index holds f_v(v): the whole library against C labels is a (N, D) x (D, C)
product, made in chunks of videos so that memory stays bounded. Each chunk is cut with `rank_rows` (torch.topk and
the threshold) before any Python object exists; JSONL then builds dicts for the kept labels only, Parquet not even
those (list arrays straight from the ranked tensors).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch
from tqdm.auto import tqdm

from ovmlv.modeling_ovmlv.atomic_files import write_atomically
from ovmlv.modeling_ovmlv.ranking import RankedRows, rank_rows

OUTPUT_SUFFIXES = (".jsonl", ".parquet")
THRESHOLD_KEY = b"ovmlv.threshold"


@dataclass(frozen=True)
class TaggedChunk:
    """One chunk of videos: their top-k labels and, with a threshold, the labels predicted (score >= threshold)."""

    videos: Sequence[str]
    top: RankedRows
    predicted: RankedRows | None


@dataclass(frozen=True)
class TagReport:
    videos: int
    labels: int
    threshold: float | None
    top_k: int
    out: Path
    seconds: float


def tag_chunks(
    videos: Sequence[str],
    video_embeds: torch.Tensor,
    logits: Callable[[torch.Tensor], torch.Tensor],
    top_k: int,
    threshold: float | None,
    chunk_size: int = 8192,
    progress: bool = False,
) -> Iterator[TaggedChunk]:
    """Score (N, D) `video_embeds` chunk by chunk; `logits` maps (n, D) to (n, C) logits (e.g. `model.logits` with
    the vocabulary's label embeddings); probabilities are their sigmoid."""
    starts = range(0, len(videos), chunk_size)
    for start in tqdm(starts, desc="Tagging", unit="chunk", disable=not progress or len(starts) < 2):
        with torch.inference_mode():
            probs = logits(video_embeds[start : start + chunk_size]).float().sigmoid()  # (n, C)
            top = rank_rows(probs, top_k)
            predicted = None if threshold is None else rank_rows(probs, None, threshold)
        yield TaggedChunk(videos[start : start + chunk_size], top, predicted)


def check_output_path(path: str | os.PathLike) -> Path:
    """`path`, if its suffix names a format tags are written in."""
    path = Path(path)
    if path.suffix not in OUTPUT_SUFFIXES:
        raise ValueError(f"--out {path}: write tags to a .jsonl or .parquet file.")
    return path


def write_tags(
    path: str | os.PathLike, chunks: Iterator[TaggedChunk], labels: Sequence[str], threshold: float | None
) -> int:
    """Write every chunk to `path` (.jsonl or .parquet), whole or not at all; returns the number of videos."""
    path = check_output_path(path)
    written = 0

    def write(temporary: str) -> None:
        nonlocal written
        writer = _write_parquet if path.suffix == ".parquet" else _write_jsonl
        written = writer(temporary, chunks, labels, threshold)

    write_atomically(path, write)
    return written


def _write_jsonl(path: str, chunks: Iterator[TaggedChunk], labels: Sequence[str], threshold: float | None) -> int:
    """One line per video: `{"video", "threshold", "predicted": [...], "top_k": [...]}`, each list of
    `{"label", "score"}` best first; no "predicted" when there is no threshold.

    The lines are formatted from the ranked tensors' lists with each label's JSON made once: `json.dumps` of a dict
    per kept label took half of tagging's time. Scores are written as `json` writes floats (`repr`).
    """
    label_json = [json.dumps(label, ensure_ascii=False) for label in labels]
    head = f', "threshold": {json.dumps(threshold)}'
    count = 0
    with open(path, "w", encoding="utf-8") as file:
        for chunk in chunks:
            tops = _json_lists(chunk.top, label_json)
            predicted = _json_lists(chunk.predicted, label_json) if chunk.predicted is not None else None
            for row, video in enumerate(chunk.videos):
                kept = "" if predicted is None else f', "predicted": {predicted[row]}'
                file.write(f'{{"video": {json.dumps(video, ensure_ascii=False)}{head}{kept}, "top_k": {tops[row]}}}\n')
            count += len(chunk.videos)
    return count


def _json_lists(ranked: RankedRows, label_json: list[str]) -> list[str]:
    """Per row, the JSON list `[{"label": ..., "score": ...}, ...]` of its kept labels."""
    columns, scores, offsets = ranked.columns.tolist(), ranked.scores.tolist(), ranked.offsets.tolist()
    items = [
        f'{{"label": {label_json[column]}, "score": {score!r}}}' for column, score in zip(columns, scores, strict=True)
    ]
    return ["[" + ", ".join(items[start:end]) + "]" for start, end in zip(offsets[:-1], offsets[1:], strict=True)]


def _write_parquet(path: str, chunks: Iterator[TaggedChunk], labels: Sequence[str], threshold: float | None) -> int:
    """Columns `video`, `top_labels`, `top_scores` and, with a threshold, `predicted_labels`, `predicted_scores`
    (lists, best first; labels dictionary-encoded); the threshold in the file's metadata."""
    vocabulary = pa.array(labels, pa.string())
    fields = [("video", pa.string()), ("top_labels", pa.list_(pa.dictionary(pa.int32(), pa.string())))]
    fields.append(("top_scores", pa.list_(pa.float32())))
    if threshold is not None:
        fields += [("predicted_labels", fields[1][1]), ("predicted_scores", pa.list_(pa.float32()))]
    schema = pa.schema(fields, metadata={THRESHOLD_KEY: json.dumps(threshold).encode()})
    count = 0
    with pq.ParquetWriter(path, schema) as writer:
        for chunk in chunks:
            columns = [pa.array(chunk.videos, pa.string()), *_list_columns(chunk.top, vocabulary)]
            if chunk.predicted is not None:
                columns += _list_columns(chunk.predicted, vocabulary)
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))
            count += len(chunk.top)
    return count


def _list_columns(ranked: RankedRows, vocabulary: pa.Array) -> tuple[pa.Array, pa.Array]:
    offsets = pa.array(ranked.offsets.to(torch.int32).numpy())
    names = pa.DictionaryArray.from_arrays(pa.array(ranked.columns.to(torch.int32).numpy()), vocabulary)
    scores = pa.array(ranked.scores.float().numpy())
    return pa.ListArray.from_arrays(offsets, names), pa.ListArray.from_arrays(offsets, scores)


def tag_index(
    videos: Sequence[str],
    video_embeds: torch.Tensor,
    labels: Sequence[str],
    logits: Callable[[torch.Tensor], torch.Tensor],
    out: str | os.PathLike,
    top_k: int = 10,
    threshold: float | None = None,
    chunk_size: int = 8192,
    progress: bool = False,
) -> TagReport:
    """Tag every video and write the result to `out`."""
    start = time.perf_counter()
    chunks = tag_chunks(videos, video_embeds, logits, top_k, threshold, chunk_size, progress)
    count = write_tags(out, chunks, labels, threshold)
    return TagReport(count, len(labels), threshold, top_k, Path(out), time.perf_counter() - start)
