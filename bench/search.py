"""Search benchmark: latency over 1M stored 512-d embeddings, exact (matmul + topk) against FAISS's IVF index, with
FAISS's recall@10 against exact, measured in the same run on the same data.

Two data sets of unit vectors: "random" (i.i.d. Gaussian directions, as asked: no structure, the worst case for an
inverted-file index, whose lists only help when neighbours share a list) and "clustered" (points around 2000
centres, cosine ~0.7 to their centre, queries near a centre: the shape real video embeddings have, many videos per
topic). `VideoSearch` with the default `SearchConfig` (lists = sqrt(N), probe 32) and probes 8 and 128 for the
trade-off. Latency is per single query (what `ovmlv search` runs), mean over the queries, best of the rounds.

Then the path `ovmlv search` takes with a direction head (the recipe's K = 32 direction codes after each 512-d
embedding, norm 8 as on the organism's trained model; its log(2 sigmoid(a)) term makes the head not affine):
`best_videos` scores every video through the head when exact, or FAISS's candidates, scored again; recall@10
against the exact head ranking, for lists built over the content (what `ovmlv search` does) and over the whole
embedding, latency beside the plain inner-product search of the same data.

    python bench/search.py [--videos N] [--queries Q] [--repeats N]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from ovmlv.modeling_ovmlv.configuration_ovmlv import OvmlvConfig  # noqa: E402
from ovmlv.modeling_ovmlv.score_head import ScoreHead  # noqa: E402
from ovmlv.video_library.search import SearchConfig, VideoSearch, best_videos, build_faiss_index  # noqa: E402

DIM, TOP_K, CENTRES, DIRECTION_DIMS = 512, 10, 2000, 32
CODE_NORM = 8.0  # the direction codes' norm on the organism's trained model (content: 1)
PROBES = (8, 32, 128)


def random_data(num: int, queries: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    return (
        F.normalize(torch.randn(num, DIM, generator=generator), dim=-1),
        F.normalize(torch.randn(queries, DIM, generator=generator), dim=-1),
    )


def clustered_data(num: int, queries: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    centres = F.normalize(torch.randn(CENTRES, DIM, generator=generator), dim=-1)
    members = torch.randint(0, CENTRES, (num,), generator=generator)
    points = F.normalize(centres[members] + 0.045 * torch.randn(num, DIM, generator=generator), dim=-1)
    asked = torch.randint(0, CENTRES, (queries,), generator=generator)
    return points, F.normalize(centres[asked] + 0.06 * torch.randn(queries, DIM, generator=generator), dim=-1)


def per_query_ms(find: Callable[[torch.Tensor], object], queries: torch.Tensor, rounds: int) -> float:
    """Milliseconds per single query of `find((1, D) query)`, mean over the queries, best of `rounds`."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for query in queries:
            find(query[None])
        best = min(best, (time.perf_counter() - start) / len(queries))
    return 1e3 * best


def recall(found: torch.Tensor, truth: torch.Tensor) -> float:
    hits = [len(set(a.tolist()) & set(b.tolist())) for a, b in zip(found, truth, strict=True)]
    return sum(hits) / truth.numel()


def bench(name: str, embeddings: torch.Tensor, queries: torch.Tensor, rounds: int) -> list[str]:
    exact = VideoSearch(embeddings, "exact")
    _, truth = exact.search(queries, TOP_K)
    exact_ms = per_query_ms(partial(exact.search, top_k=TOP_K), queries, rounds)
    config = SearchConfig()
    start = time.perf_counter()
    faiss_index = build_faiss_index(embeddings, config)
    build_s = time.perf_counter() - start
    rows = [f"{name:<10} exact{'':<22} {exact_ms:>9.2f} ms  recall@10 1.000  (reference)"]
    for probe in PROBES:
        search = VideoSearch(embeddings, "faiss", dataclasses.replace(config, probe=probe))
        search.use_faiss_index(faiss_index)
        _, found = search.search(queries, TOP_K)
        ms = per_query_ms(partial(search.search, top_k=TOP_K), queries, rounds)
        rows.append(
            f"{name:<10} FAISS IVF {config.num_lists(len(embeddings))} lists, probe {probe:<4} {ms:>9.2f} ms  "
            f"recall@10 {recall(found, truth):.3f}  {exact_ms / ms:6.1f}x faster"
        )
    rows.append(f"{name:<10} FAISS index built in {build_s:.1f} s (once per index; kept in INDEX/search/)")
    return rows


def direction_head() -> ScoreHead:
    """The recipe's score head (tau, bias and K direction codes) at D = 512."""
    config = OvmlvConfig(
        projection_dim=DIM,
        label_encoder="class_name",
        temporal_config={"temporal_layers": 4, "direction_dims": DIRECTION_DIMS},
    )
    head = ScoreHead(config)
    head.init_weights()
    return head.eval()


def with_codes(
    embeddings: torch.Tensor, queries: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Direction codes after each embedding, of norm about `CODE_NORM`, and after each query, scaled so that a
    video's and a label's agreement a has unit variance."""
    video_codes = torch.randn(len(embeddings), DIRECTION_DIMS, generator=generator) * CODE_NORM / DIRECTION_DIMS**0.5
    label_codes = torch.randn(len(queries), DIRECTION_DIMS, generator=generator) / CODE_NORM
    return torch.cat([embeddings, video_codes], 1), torch.cat([queries, label_codes], 1)


def bench_head(name: str, embeddings: torch.Tensor, queries: torch.Tensor, rounds: int) -> list[str]:
    head = direction_head()
    exact = VideoSearch(embeddings, "exact")
    plain_ms = per_query_ms(partial(exact.search, top_k=TOP_K), queries, rounds)
    _, truth = best_videos(exact, head, queries, TOP_K)
    exact_ms = per_query_ms(partial(best_videos, exact, head, top_k=TOP_K), queries, rounds)
    rows = [
        f"{name:<10} inner product only, exact{'':<6} {plain_ms:>9.2f} ms  (reference)",
        f"{name:<10} through the head, exact{'':<8} {exact_ms:>9.2f} ms  recall@10 1.000  "
        f"{exact_ms / plain_ms:.2f}x the inner product's time",
    ]
    for lists_read, content_dims in (("content", DIM), ("whole embedding", None)):
        search = VideoSearch(embeddings, "faiss", content_dims=content_dims)
        search.use_faiss_index(build_faiss_index(embeddings, search.config, content_dims))
        _, found = best_videos(search, head, queries, TOP_K)
        faiss_ms = per_query_ms(partial(best_videos, search, head, top_k=TOP_K), queries, rounds)
        rows.append(
            f"{name:<10} through the head, FAISS probe {search.config.probe}, lists over the {lists_read}: "
            f"{faiss_ms:.2f} ms  recall@10 {recall(found, truth):.3f}  {exact_ms / faiss_ms:.1f}x faster than exact"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--videos", type=int, default=1_000_000, help="stored embeddings (default: 1,000,000)")
    parser.add_argument("--queries", type=int, default=50, help="queries timed (default: 50)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds, best kept (default: 3)")
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f}; "
        f"{args.videos:,} x {DIM}-d fp32 unit embeddings, top {TOP_K}, {args.queries} single queries"
    )
    generator = torch.Generator().manual_seed(0)
    rows = []
    for name, make in (("random", random_data), ("clustered", clustered_data)):
        embeddings, queries = make(args.videos, args.queries, generator)
        rows += bench(name, embeddings, queries, args.repeats)
        rows += bench_head(name, *with_codes(embeddings, queries, generator), args.repeats)
        del embeddings
    print("\n".join(rows) + f"\nload average {os.getloadavg()[0]:.1f} after")


if __name__ == "__main__":
    main()
