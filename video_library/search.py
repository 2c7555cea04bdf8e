"""Text-to-video search over an index: exact matmul up to a size, FAISS's inverted-file index above it.

A text query is scored as a label, p = sigmoid(logit), the logit the model's score head gives. For most heads it is
f_v(v) . q + b, with q and b read off the head (`linear_readout`), so the best videos are the largest inner products
with q. Exactly, that is one (N, D) x (D,) product per query, bound by reading the N x D floats (about 2 GB for a
million videos: ~0.2 s here); above `exact_max_videos` an IVF index (`faiss.IndexIVFFlat`, inner product) scans
only the `probe` lists nearest the query. It is built once per set of shards and kept in `INDEX/search/`. The head
scores the videos found again (`best_videos`), so a head that is not affine in f_v (the direction head's log-odds,
a category label's best member) ranks them as the pipeline would: every video when searching exactly,
`RERANK_FACTOR` times the asked number through FAISS.

The lists are drawn over the video embedding's content only, its first `content_dims` values (the model's
projection_dim); the videos in them are scanned whole. A direction head's codes follow the content, and on the
organism's trained model their norm is about 8 where the content's is 1: lists drawn over both group videos by
motion, and the lists nearest a query miss its topic (`bench/search.py`, a million clustered videos: recall@10 0.088
against 1.000). Scanned whole, the codes still pick the candidates a direction label's score favours.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ovmlv.modeling_ovmlv.atomic_files import write_atomically

from .index_store import VideoIndex

BACKENDS = ("auto", "exact", "faiss")
SEARCH_DIR = "search"
RERANK_FACTOR = 4  # FAISS candidates per asked result, scored again by the head
SCORE_CHUNK = 65_536  # videos per call of the head

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchConfig:
    """
    Args:
        exact_max_videos: the largest index searched exactly by `backend="auto"`; FAISS above it.
        lists_per_sqrt: IVF lists = lists_per_sqrt * sqrt(N). FAISS suggests 4 to 16; 1 builds 4x faster on a CPU
            (1000 lists for 1M videos: ~20 s here) and scans more vectors per probed list.
        probe: lists scanned per query (recall against speed; all lists = exact).
        training_points_per_list: vectors sampled per list to train the IVF centroids (FAISS warns under 39).
        seed: the training sample's and k-means' seed.
    """

    exact_max_videos: int = 250_000
    lists_per_sqrt: float = 1.0
    probe: int = 32
    training_points_per_list: int = 64
    seed: int = 0

    def num_lists(self, num_videos: int) -> int:
        """lists_per_sqrt * sqrt(N), but no more than the training sample can fill."""
        lists = round(self.lists_per_sqrt * math.sqrt(num_videos))
        return max(1, min(lists, num_videos // self.training_points_per_list))


def linear_readout(
    logits: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], label_embeds: torch.Tensor, dim: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(C, D) query vectors q and (C,) biases b with logits(v, t) = v . q + b, for any score head affine in v.

    Read by calling the head (never its weights): b = logits(0, t) and q = (logits(e_i, t) - logits(-e_i, t)) / 2
    for the unit vectors e_i. For DualCoOp's paired label embeddings q is the scaled difference of the pair, as its
    head scores it. For a head that is not affine (the direction head's log(2 sigmoid(a))) the central difference
    reads its slopes on both sides alike: a surrogate that picks candidates for `best_videos` to score again.
    """
    with torch.inference_mode():
        unit = torch.eye(dim)
        probes = torch.cat([torch.zeros(1, dim), unit, -unit]).to(label_embeds.device)
        values = logits(probes, label_embeds).float()  # (1 + 2D, C)
    bias = values[0]
    return ((values[1 : 1 + dim] - values[1 + dim :]) / 2).T.contiguous().cpu(), bias.cpu()


def best_videos(
    search: VideoSearch,
    logits: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    label_embeds: torch.Tensor,
    top_k: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(Q, k) logits, best first, and rows of each label's best videos, as the score head `logits` scores them.

    Candidates: every video for exact search, the `RERANK_FACTOR` * k largest inner products with the head's linear
    readout through FAISS (rows -1 past the videos its lists held, scored -inf). Each candidate is then scored by
    calling the head, so the ranking and the logits are the head's own whatever its form."""
    embeddings = search.embeddings
    if search.backend == "exact":
        best = head_scores(logits, embeddings, label_embeds).topk(min(top_k, len(embeddings)), dim=1)
        return best.values, best.indices
    vectors, _ = linear_readout(logits, label_embeds, embeddings.shape[1])
    _, rows = search.search(vectors, RERANK_FACTOR * top_k)
    candidates, where = rows.clamp(min=0).unique(return_inverse=True)  # each video scored once for every query
    scores = head_scores(logits, embeddings[candidates], label_embeds).gather(1, where)
    best = scores.masked_fill(rows < 0, -math.inf).topk(min(top_k, rows.shape[1]), dim=1)
    return best.values, rows.gather(1, best.indices)


def head_scores(
    logits: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], videos: torch.Tensor, label_embeds: torch.Tensor
) -> torch.Tensor:
    """(Q, n) logits of the (n, D) `videos` for each label, the head called on `SCORE_CHUNK` videos at a time."""
    with torch.inference_mode():
        return torch.cat(
            [
                logits(videos[start : start + SCORE_CHUNK], label_embeds).float().cpu()
                for start in range(0, len(videos), SCORE_CHUNK)
            ]
        ).T


class VideoSearch:
    """The best videos for query vectors, exactly or through FAISS; both return (Q, k) inner products and rows.
    FAISS's lists are drawn over the first `content_dims` values of each embedding (default: all of them)."""

    def __init__(
        self,
        embeddings: torch.Tensor,
        backend: str = "auto",
        config: SearchConfig | None = None,
        content_dims: int | None = None,
    ):
        if backend not in BACKENDS:
            raise ValueError(f"backend={backend!r} is not one of {BACKENDS}.")
        self.embeddings = embeddings.float().contiguous()  # (N, D)
        self.content_dims = content_dims or embeddings.shape[1]
        self.config = config or SearchConfig()
        exact = backend == "exact" or (backend == "auto" and len(embeddings) <= self.config.exact_max_videos)
        self.backend = "exact" if exact else "faiss"
        self.faiss_index = None

    def use_faiss_index(self, faiss_index) -> None:
        """Search through `faiss_index` (built by `build_faiss_index` over these embeddings, in this order, and
        `content_dims`)."""
        self.faiss_index = faiss_index
        self.faiss_index.nprobe = self.config.probe

    def search(self, queries: torch.Tensor, top_k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(Q, D) queries -> (Q, k) inner products, best first, and the rows they belong to (k <= N)."""
        top_k = min(top_k, len(self.embeddings))
        if self.backend == "exact":
            with torch.inference_mode():
                return (queries.float() @ self.embeddings.T).topk(top_k, dim=1)
        if self.faiss_index is None:
            self.use_faiss_index(build_faiss_index(self.embeddings, self.config, self.content_dims))
        scores, rows = self.faiss_index.search(np.ascontiguousarray(queries.float().numpy()), top_k)
        return torch.from_numpy(scores), torch.from_numpy(rows)  # rows are -1 past the videos the lists held


def import_faiss():
    """The `faiss` module, or an error that says how to get it (it is an optional dependency)."""
    try:
        import faiss
    except ImportError as err:
        raise ValueError(
            f"Searching through FAISS needs the faiss-cpu package ({err}): `pip install faiss-cpu`, or search "
            "exactly with --backend exact."
        ) from err
    return faiss


def build_faiss_index(embeddings: torch.Tensor, config: SearchConfig, content_dims: int | None = None):
    """An inner-product IVF index over (N, D) `embeddings`, rows numbered in their order, its lists drawn over the
    first `content_dims` values (default D): their centroids are 0 past them, so the rest of an embedding moves
    neither which list holds it nor which lists a query probes, and is still scanned."""
    faiss = import_faiss()
    vectors = np.ascontiguousarray(embeddings.float().numpy())
    width, dims = vectors.shape[1], content_dims or vectors.shape[1]
    num_lists = config.num_lists(len(vectors))
    sample = min(len(vectors), num_lists * config.training_points_per_list)
    rows = np.random.default_rng(config.seed).choice(len(vectors), sample, replace=False)
    lists = faiss.IndexIVFFlat(faiss.IndexFlatIP(dims), dims, num_lists, faiss.METRIC_INNER_PRODUCT)
    lists.cp.seed = config.seed
    lists.train(np.ascontiguousarray(vectors[np.sort(rows), :dims]))  # k-means over the content
    centroids = np.zeros((num_lists, width), dtype=np.float32)
    centroids[:, :dims] = lists.quantizer.reconstruct_n(0, num_lists)
    quantizer = faiss.IndexFlatIP(width)
    quantizer.add(centroids)
    index = faiss.IndexIVFFlat(quantizer, width, num_lists, faiss.METRIC_INNER_PRODUCT)  # trained: its lists given
    index.add(vectors)
    return index


def cached_faiss_index(
    index: VideoIndex, embeddings: torch.Tensor, config: SearchConfig, content_dims: int | None = None
):
    """The FAISS index of `index`'s current shards, built once and kept in `INDEX/search/` (replaced when the
    shards, the list count or the values the lists are drawn over change)."""
    faiss = import_faiss()
    key = hashlib.sha256("\n".join(p.name for p in index.shard_paths()).encode())
    key.update(f"{config.num_lists(len(embeddings))}:{config.seed}:{content_dims or embeddings.shape[1]}".encode())
    path = index.root / SEARCH_DIR / f"ivf-{key.hexdigest()[:16]}.faiss"
    if path.is_file():
        try:
            return faiss.read_index(str(path))
        except RuntimeError as err:  # derived data: a damaged copy is rebuilt
            logger.warning("Rebuilding the damaged FAISS index %s (%s)", path, err)
    built = build_faiss_index(embeddings, config, content_dims)
    write_atomically(path, lambda temporary: faiss.write_index(built, temporary))
    for stale in path.parent.glob("ivf-*.faiss"):
        if stale != path:
            Path(stale).unlink(missing_ok=True)
    return built
