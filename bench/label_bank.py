"""Label bank ranking benchmark: top-k over 100k (and 1M) labels per video, on one thread, against the Python ranking
it replaced (sort every label's score, build a dict for each, then cut), measured in the same run.

Random unit-norm 512-d label and video embeddings (CLIP B/32's joint size), fp32, scores sigmoid(v . t / 0.07) as
the score head makes them. "ours" is `LabelBank.query` (torch.topk / threshold on the score tensor, dicts only for
what is kept); "reference" is the previous `rank_labels` applied row by row; "scores only" is the score matrix
alone, the floor (at batch 1 it reads the whole bank from memory for one video: 205 MB at 100k labels). Batch 1 is the pipeline's case (one
video per call); batch 32 is tagging's (the bank is read once per batch). Best of interleaved rounds.

    python bench/label_bank.py [--repeats N] [--skip-million]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from ovmlv.modeling_ovmlv.label_bank import LabelBank  # noqa: E402

DIM = 512
TEMPERATURE = 0.07
TOP_K = 10
TARGET_MS = 20.0  # per video, 100k labels, one thread


def score(video_embeds: torch.Tensor, label_embeds: torch.Tensor) -> torch.Tensor:
    return (video_embeds @ label_embeds.T / TEMPERATURE).sigmoid()


def reference_query(bank: LabelBank, video_embeds: torch.Tensor, top_k: int) -> list[list[dict]]:
    """The ranking before this change: every label's score sorted and turned into a dict, then cut."""
    probs = score(video_embeds, bank.embeddings)
    ranked = []
    for row in probs:
        order = row.argsort(descending=True).tolist()
        ranked.append([{"label": bank.labels[i], "score": float(row[i])} for i in order][:top_k])
    return ranked


def best_times(functions: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    best = dict.fromkeys(functions, float("inf"))
    for _ in range(rounds):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def random_bank(num_labels: int, generator: torch.Generator) -> LabelBank:
    embeddings = F.normalize(torch.randn(num_labels, DIM, generator=generator), dim=-1)
    return LabelBank([f"label {i}" for i in range(num_labels)], embeddings)


def run(num_labels: int, batches: Sequence[int], rounds: int, with_reference: bool) -> list[str]:
    generator = torch.Generator().manual_seed(0)
    bank = random_bank(num_labels, generator)
    rows = []
    for batch in batches:
        videos = F.normalize(torch.randn(batch, DIM, generator=generator), dim=-1)
        ours = bank.query(videos, score, top_k=TOP_K)
        functions = {
            "scores only": lambda videos=videos: score(videos, bank.embeddings),
            "ours": lambda videos=videos: bank.query(videos, score, top_k=TOP_K),
            "ours, threshold 0.9": lambda videos=videos: bank.query(videos, score, top_k=TOP_K, threshold=0.9),
        }
        if with_reference:
            reference = reference_query(bank, videos, TOP_K)
            assert [[i["label"] for i in r] for r in ours] == [[i["label"] for i in r] for r in reference]
            functions["reference"] = lambda videos=videos: reference_query(bank, videos, TOP_K)
        times = {name: 1e3 * seconds / batch for name, seconds in best_times(functions, rounds).items()}
        ratio = f"{times['reference'] / times['ours']:7.1f}x" if with_reference else "      -"
        reference_ms = f"{times['reference']:12.1f}" if with_reference else f"{'-':>12}"
        rows.append(
            f"{num_labels:>9,} {batch:>6} {times['scores only']:>12.2f} {times['ours']:>10.2f} "
            f"{times['ours, threshold 0.9']:>14.2f} {reference_ms} {ratio}"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds, best kept (default: 5)")
    parser.add_argument("--skip-million", action="store_true", help="only the 100k-label bank")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_before = os.getloadavg()[0]
    print(
        f"torch {torch.__version__}, 1 thread, load average {load_before:.1f}; {DIM}-d fp32 random unit embeddings, "
        f"top {TOP_K}, best of {args.repeats} interleaved rounds; ms per video"
    )
    print(
        f"{'labels':>9} {'batch':>6} {'scores only':>12} {'ours':>10} {'ours, ≥ 0.9':>14} {'reference':>12} "
        f"{'speed-up':>8}"
    )
    rows = run(100_000, (1, 32), args.repeats, with_reference=True)
    if not args.skip_million:
        rows += run(1_000_000, (1, 32), max(2, args.repeats // 2), with_reference=False)
    print("\n".join(rows))
    print(f"target: ≤ {TARGET_MS:g} ms per video over 100,000 labels; load average {os.getloadavg()[0]:.1f} after")


if __name__ == "__main__":
    main()
