"""Search benchmark: latency over 1M stored 512-d embeddings, exact (matmul + topk) against FAISS's IVF index, with
FAISS's recall@10 against exact, measured in the same run on the same data.

Two data sets of unit vectors: "random" (i.i.d. Gaussian directions, as asked: no structure, the worst case for an
inverted-file index, whose lists only help when neighbours share a list) and "clustered" (points around 2000
centres, cosine ~0.7 to their centre, queries near a centre: the shape real video embeddings have, many videos per
topic). `VideoSearch` with the default `SearchConfig` (lists = sqrt(N), probe 32) and probes 8 and 128 for the
trade-off. Latency is per single query (what `ovmlv search` runs), mean over the queries, best of the rounds.

    python bench/search.py [--videos N] [--queries Q] [--repeats N]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from ovmlv.video_library.search import SearchConfig, VideoSearch, build_faiss_index  # noqa: E402

DIM, TOP_K, CENTRES = 512, 10, 2000
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


def per_query_ms(search: VideoSearch, queries: torch.Tensor, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for query in queries:
            search.search(query[None], TOP_K)
        best = min(best, (time.perf_counter() - start) / len(queries))
    return 1e3 * best


def recall(found: torch.Tensor, truth: torch.Tensor) -> float:
    hits = [len(set(a.tolist()) & set(b.tolist())) for a, b in zip(found, truth, strict=True)]
    return sum(hits) / truth.numel()


def bench(name: str, embeddings: torch.Tensor, queries: torch.Tensor, rounds: int) -> list[str]:
    exact = VideoSearch(embeddings, "exact")
    _, truth = exact.search(queries, TOP_K)
    exact_ms = per_query_ms(exact, queries, rounds)
    config = SearchConfig()
    start = time.perf_counter()
    faiss_index = build_faiss_index(embeddings, config)
    build_s = time.perf_counter() - start
    rows = [f"{name:<10} exact{'':<22} {exact_ms:>9.2f} ms  recall@10 1.000  (reference)"]
    for probe in PROBES:
        search = VideoSearch(embeddings, "faiss", dataclasses.replace(config, probe=probe))
        search.use_faiss_index(faiss_index)
        _, found = search.search(queries, TOP_K)
        ms = per_query_ms(search, queries, rounds)
        rows.append(
            f"{name:<10} FAISS IVF {config.num_lists(len(embeddings))} lists, probe {probe:<4} {ms:>9.2f} ms  "
            f"recall@10 {recall(found, truth):.3f}  {exact_ms / ms:6.1f}x faster"
        )
    rows.append(f"{name:<10} FAISS index built in {build_s:.1f} s (once per index; kept in INDEX/search/)")
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
        del embeddings
    print("\n".join(rows) + f"\nload average {os.getloadavg()[0]:.1f} after")


if __name__ == "__main__":
    main()
