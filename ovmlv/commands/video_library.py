"""`ovmlv index`, `ovmlv tag` and `ovmlv search`: the arguments of each and what it runs (listed in `ovmlv.cli`).
Heavy imports wait until a command runs, so `ovmlv --help` stays quick."""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path

from ovmlv.arguments import (
    EXIT_OK,
    EXIT_PARTIAL,
    CommandError,
    add_label_arguments,
    add_model_argument,
    add_video_sampling_arguments,
    finite_float,
    given_labels,
    int_at_least,
    torch_device,
)
from ovmlv.saved_models import load_model
from ovmlv.tables import format_table

logger = logging.getLogger(__name__)

INDEX_DESCRIPTION = """Decode and embed every video once into INDEX (Parquet shards), so that any vocabulary can
later be scored (`ovmlv tag`) and any text searched (`ovmlv search`) without decoding again.

Videos are files, folders (searched recursively), .txt lists (one path or URL a line) or manifests (.jsonl/.csv,
as training reads them). Run it again to continue after an interruption or to add new and changed videos: done
videos are skipped, unreadable ones are recorded with the reason. Several processes share the work:
  accelerate launch --multi_gpu --num_processes 2 -m ovmlv index videos/ --model M --out INDEX
  torchrun --nproc_per_node 2 --no-python ovmlv index videos/ --model M --out INDEX
(any launcher that sets RANK and WORLD_SIZE; on several machines, mount the videos and INDEX at the same paths).
Each process writes its own shards; the index is their union.

examples:
  ovmlv index videos/ --model org/name --out library.index
  ovmlv index list.txt more/*.mp4 --model outputs/hub --out library.index --num-clips 4 --batch-size 16"""

TAG_DESCRIPTION = """Score every indexed video against a vocabulary (labels of the model's label bank are reused, others
encoded once) and write, per video, the labels scoring at least the threshold and the top-k, as JSONL or Parquet.
Without --threshold the model's calibrated one applies; a model never calibrated gets the top-k only.

examples:
  ovmlv tag library.index --labels-file vocab.txt --out tags.jsonl
  ovmlv tag library.index --model org/name --labels dog beach surfing --top-k 3 --out tags.parquet"""

SEARCH_DESCRIPTION = """Find the indexed videos that best match a text, scored as a label would be. Exact up to
--exact-max-videos videos, a FAISS inverted-file index above (built once, kept in INDEX/search/).

examples:
  ovmlv search library.index "a dog surfing"
  ovmlv search library.index "cooking" "a red car" --top-k 5 --json"""


def add_index_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = INDEX_DESCRIPTION
    parser.add_argument(
        "videos", nargs="+", metavar="VIDEOS_OR_MANIFEST", help="video files, folders, lists, manifests"
    )
    add_model_argument(parser)
    parser.add_argument("--out", required=True, type=Path, metavar="INDEX", help="the index folder (created or grown)")
    add_video_sampling_arguments(parser)
    parser.add_argument("--batch-size", type=int_at_least(1), default=8, help="videos per model call (default: 8)")
    parser.add_argument("--workers", type=int_at_least(0), default=2, help="decoding processes (default: 2)")
    parser.add_argument(
        "--shard-size",
        type=int_at_least(1),
        default=512,
        help="videos per shard: at most this is redone after a kill (default: 512)",
    )
    parser.add_argument(
        "--device", type=torch_device, help="torch device (default: cuda:LOCAL_RANK when there is a GPU, else cpu)"
    )
    parser.add_argument("--retry-failed", action="store_true", help="try unreadable videos again even if unchanged")


def add_tag_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = TAG_DESCRIPTION
    parser.add_argument("index", type=Path, metavar="INDEX")
    _add_index_model_argument(parser)
    add_label_arguments(parser, "the vocabulary (default: the model's label bank)")
    parser.add_argument("--out", required=True, type=Path, metavar="FILE", help="tags.jsonl or tags.parquet")
    parser.add_argument(
        "--threshold", type=finite_float, help="keep labels scoring at least this (default: the model's)"
    )
    parser.add_argument("--top-k", type=int_at_least(1), default=10, help="best labels kept per video (default: 10)")
    parser.add_argument("--device", type=torch_device, help="torch device (default: cpu)")


def add_search_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = SEARCH_DESCRIPTION
    parser.add_argument("index", type=Path, metavar="INDEX")
    parser.add_argument("queries", nargs="+", metavar="TEXT", help="what to look for; several texts, several searches")
    _add_index_model_argument(parser)
    parser.add_argument("--top-k", type=int_at_least(1), default=10, help="videos per query (default: 10)")
    parser.add_argument("--backend", choices=("auto", "exact", "faiss"), default="auto", help="(default: auto)")
    parser.add_argument(
        "--exact-max-videos",
        type=int_at_least(0),
        help="auto: exact search up to this many videos, FAISS above (default: 250000)",
    )
    parser.add_argument(
        "--probe", type=int_at_least(1), help="FAISS: lists scanned per query, recall against speed (default: 32)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def _add_index_model_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="model folder or Hub id (default: the model INDEX was made with)")


def launch_rank() -> tuple[int, int, int]:
    """(rank, world size, local rank) as `accelerate launch` / torchrun set them; (0, 1, 0) when run alone."""
    try:
        rank, world_size, local_rank = (
            int(os.environ.get(name, default)) for name, default in (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", 0))
        )
    except ValueError as err:
        raise CommandError(f"RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers ({err}).") from None
    if world_size < 1 or not 0 <= rank < world_size or not 0 <= local_rank <= rank:
        raise CommandError(
            f"RANK={rank} WORLD_SIZE={world_size} LOCAL_RANK={local_rank} is no process of a launch (0 <= LOCAL_RANK "
            "<= RANK < WORLD_SIZE): unset them, or start the processes with torchrun or accelerate launch."
        )
    return rank, world_size, local_rank


def require_pyarrow() -> None:
    """The index is Parquet: without pyarrow (an optional dependency) say how to get it, not a traceback."""
    try:
        import pyarrow  # noqa: F401
    except ImportError as err:
        raise CommandError(f"index, tag and search need pyarrow ({err}): pip install 'ovmlv[index]'") from err


def run_index(args: argparse.Namespace) -> int:
    require_pyarrow()
    import torch

    from ovmlv.video_library.fingerprints import embedding_fingerprint
    from ovmlv.video_library.index_store import IndexInfo, VideoIndex
    from ovmlv.video_library.indexing import index_videos
    from ovmlv.video_library.inputs import list_videos

    rank, world_size, local_rank = launch_rank()
    videos = list_videos(args.videos)
    if not videos:
        raise CommandError(f"no videos found in {' '.join(args.videos)}: pass video files, folders or lists.")
    device = args.device or (f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    model, processor = load_model(args.model)
    model = model.to(device).eval()
    num_frames, num_clips = args.num_frames or processor.num_frames, args.num_clips or processor.num_clips
    info = IndexInfo(
        model=os.path.abspath(args.model) if Path(args.model).exists() else args.model,
        embedding_fingerprint=embedding_fingerprint(model, processor, num_frames, num_clips),
        embedding_dim=model.config.video_embedding_dim,
        num_frames=num_frames,
        num_clips=num_clips,
    )
    index = VideoIndex.open_or_create(args.out, info)
    report = index_videos(
        videos,
        model,
        processor,
        index,
        rank=rank,
        world_size=world_size,
        batch_size=args.batch_size,
        num_workers=args.workers,
        shard_size=args.shard_size,
        device=device,
        retry_failed=args.retry_failed,
    )
    rate = report.embedded / report.seconds if report.seconds else 0.0
    print(
        f"ovmlv index (process {rank + 1} of {world_size}): embedded {report.embedded} videos ({rate:.2f}/s), "
        f"{len(report.failed)} unreadable (recorded), {report.unchanged} unchanged, {report.refreshed} touched but "
        f"unchanged, {report.elsewhere} left to other processes; {len(report.shards)} new shards in {args.out}"
    )
    # Under a launcher one process exiting non-zero stops the others: only a lone process reports partial success.
    return EXIT_PARTIAL if report.failed and world_size == 1 else EXIT_OK


def _index_and_model(args: argparse.Namespace):
    """The index, and the model that scores it: --model or the index's own; its video embeddings must match."""
    from ovmlv.video_library.fingerprints import embedding_fingerprint
    from ovmlv.video_library.index_store import VideoIndex

    index = VideoIndex.open(args.index)
    name = args.model or index.info.model
    model, processor = load_model(name)
    model = model.to(getattr(args, "device", None) or "cpu").eval()
    if embedding_fingerprint(model, processor, index.info.num_frames, index.info.num_clips) != (
        index.info.embedding_fingerprint
    ):
        raise CommandError(
            f"{name} embeds videos differently from the model {args.index} was made with ({index.info.model}): its "
            "scores would mean nothing. Use that model, or index the videos again with this one."
        )
    return index, model, processor


def _label_embeddings(model, processor, labels: list[str]):
    """The labels (cleaned) and their embeddings: from the model's label bank, or encoded by the model."""
    import torch

    from ovmlv.modeling_ovmlv import LabelBank
    from ovmlv.modeling_ovmlv.label_bank import clean_labels, embed_labels

    bank = model.label_bank or LabelBank([], torch.empty(0, model.config.label_embedding_dim))
    labels = clean_labels(labels, what="labels")
    return labels, bank.embeddings_for(labels, embed_missing=lambda missing: embed_labels(missing, model, processor))


def run_tag(args: argparse.Namespace) -> int:
    require_pyarrow()
    from ovmlv.modeling_ovmlv.pipeline_ovmlv import UNCALIBRATED_WARNING, decision_threshold
    from ovmlv.video_library.tagging import check_output_path, tag_index

    check_output_path(args.out)  # before loading a model
    index, model, processor = _index_and_model(args)
    labels = given_labels(args) or (model.label_bank.labels if model.label_bank is not None else [])
    if not labels:
        raise CommandError(f"{index.info.model} has no label bank: pass --labels or --labels-file.")
    labels, label_embeds = _label_embeddings(model, processor, labels)
    threshold = decision_threshold(model.config, args.threshold)
    if threshold is None:
        logger.warning("%s Writing the top-%d labels only.", UNCALIBRATED_WARNING, args.top_k)
    videos, embeddings = index.embedded()
    device = next(model.parameters()).device
    label_embeds = label_embeds.to(device)
    report = tag_index(
        videos,
        embeddings,
        labels,
        lambda chunk: model.logits(chunk.to(device), label_embeds),
        args.out,
        top_k=args.top_k,
        threshold=threshold,
        progress=True,
    )
    print(
        f"Tagged {report.videos} videos with {report.labels} labels in {report.seconds:.1f} s "
        f"(threshold {'none' if threshold is None else f'{threshold:g}'}, top {args.top_k}): {report.out}"
    )
    return EXIT_OK


def run_search(args: argparse.Namespace) -> int:
    require_pyarrow()
    from ovmlv.video_library.search import SearchConfig, VideoSearch, best_videos, cached_faiss_index

    index, model, processor = _index_and_model(args)
    queries, label_embeds = _label_embeddings(model, processor, args.queries)
    videos, embeddings = index.embedded()
    if not videos:
        raise CommandError(f"{args.index} holds no embedded video yet: run `ovmlv index` first.")
    given = {"exact_max_videos": args.exact_max_videos, "probe": args.probe}
    config = SearchConfig(**{field: value for field, value in given.items() if value is not None})
    search = VideoSearch(embeddings, args.backend, config, content_dims=model.config.projection_dim)
    if search.backend == "faiss":
        search.use_faiss_index(cached_faiss_index(index, embeddings, config, search.content_dims))
    device = label_embeds.device
    logits, rows = best_videos(
        search, lambda chunk, labels: model.logits(chunk.to(device), labels), label_embeds, args.top_k
    )
    probabilities = logits.sigmoid()
    results = [
        {
            "query": query,
            "videos": [
                {"video": videos[row], "score": score}
                for score, row in zip(probabilities[q].tolist(), rows[q].tolist(), strict=True)
                if row >= 0
            ],
        }
        for q, query in enumerate(queries)
    ]
    if args.json:
        print(json.dumps(results, indent=1, ensure_ascii=False))
    else:
        for result in results:
            rows_text = [[str(i), f"{item['score']:.3f}", item["video"]] for i, item in enumerate(result["videos"], 1)]
            print(
                f"{result['query']} ({search.backend} search)\n"
                + format_table(["#", "score", "video"], rows_text, "  ")
            )
    return EXIT_OK
