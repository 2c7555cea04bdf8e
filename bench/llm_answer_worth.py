"""What is the LLM's answer worth to CLIP, on the label side alone, and how much of it does alignment carry?

On world v2 every label is scored against the frozen organism's frame-mean video embeddings (cached once), as
evaluation scores them, with five label sides from frozen CLIP: the class name; the first item of the T5's greedy
answer to the encoder's instruction (the organism's T5 names the label in canonical words first: "tile" -> "square
2. square shape ..."); the two summed; the mean of the first two items; the best of the class name and the category
members the answer lists (`label_encoder_config.category_members`, docs/design.md §4.5). Macro AUPR over labels with a positive, per
group: seen labels on val, (a) unseen compositions and (c) held-out categories on the held-out set, (b) held-out
synonyms on its paraphrased copy.

`--align N` then fits the paper's label encoder (`method="ovmlv"`) with N text-only alignment steps
(`training/label_alignment.py`, the recipe's rate) and reports normalize(class name + g f_prompted) for gates g in
`GATES` (g = 0: the zero-shot start; large g: the learnt path alone). docs/design.md §4.4 and §4.5 have the
measured tables.

    .venv/bin/python bench/llm_answer_worth.py --data outputs/demo/data [--align 200]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ovmlv.modeling_ovmlv import OvmlvModel
from ovmlv.modeling_ovmlv.fixed_llm_prompts import parse_descriptors
from ovmlv.modeling_ovmlv.label_bank import embed_labels
from ovmlv.modeling_ovmlv.label_members import best_slot_scores, llm_answers
from ovmlv.organism.runs import existing_towers, recipe
from ovmlv.organism.world_labels import HELDOUT_CATEGORY, HELDOUT_SYNONYM, UNSEEN_COMPOSITION
from ovmlv.processing import OvmlvProcessor
from ovmlv.text_files import read_lines
from ovmlv.training.config import LabelAlignmentConfig
from ovmlv.training.label_alignment import (
    align_label_encoder,
    clip_text_embeddings,
    prompted_embeddings,
)
from ovmlv.training.metrics import per_class_average_precision

SETS = {"val": "val.jsonl", "heldout": "heldout.jsonl", "paraphrased": "heldout_paraphrased.jsonl"}
GATES = (0.0, 1.0, 3.0, 1000.0)
ANSWER_TOKENS = 40
MEMBER_SLOTS = 8  # the organism recipe's `category_members`


def video_features(data: Path, cache: Path) -> dict:
    """Frozen frame-mean embeddings of each set's videos and their labels."""
    if cache.exists():
        return torch.load(cache)
    towers = existing_towers()
    model = OvmlvModel.from_towers(towers.clip, towers.llm, method="class_name").eval()
    processor = OvmlvProcessor.from_towers(towers.clip, towers.llm)
    features = {}
    for name, manifest in SETS.items():
        records = [json.loads(line) for line in read_lines(data / manifest, f"{name} manifest", "record")]
        with torch.inference_mode():
            features[name] = torch.cat(
                [
                    model.get_video_features(processor(videos=str(data / r["video"]))["pixel_values_videos"])
                    for r in records
                ]
            )
        features[f"{name}_labels"] = [set(r["labels"]) for r in records]
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save(features, cache)
    return features


def label_groups(data: Path) -> dict[str, tuple[str, list[str]]]:
    """{group: (the set it is scored on, its labels)}."""
    heldout: dict[str, str] = json.loads((data / "heldout.json").read_text(encoding="utf-8"))
    kinds = {UNSEEN_COMPOSITION: "heldout", HELDOUT_SYNONYM: "paraphrased", HELDOUT_CATEGORY: "heldout"}
    groups = {"seen": ("val", read_lines(data / "vocab_train.txt", "training vocabulary"))}
    return groups | {
        kind: (name, [label for label, k in heldout.items() if k == kind]) for kind, name in kinds.items()
    }


def macro_aupr(features: dict, set_name: str, labels: list[str], embeds: torch.Tensor) -> float:
    """Macro AUPR over the labels with a positive in `set_name`; a label of several slots scores its best."""
    targets = np.array([[label in positives for label in labels] for positives in features[f"{set_name}_labels"]])
    videos = features[set_name]
    slots = F.normalize(embeds.unflatten(-1, (-1, videos.shape[1])), dim=-1).flatten(1)
    scores = best_slot_scores(videos, slots, videos.shape[1]).numpy()
    keep = targets.any(0)
    return float(np.nanmean(per_class_average_precision(targets[:, keep], scores[:, keep])))


def answer_sides(
    model: OvmlvModel, members: OvmlvModel, processor: OvmlvProcessor, labels: list[str]
) -> dict[str, torch.Tensor]:
    """The five frozen label sides of `labels` (`members`: the zero-shot model with category-member slots)."""
    answers = llm_answers(model, processor, labels, ANSWER_TOKENS)
    firsts = [(parse_descriptors(a)[:2] or [label]) for label, a in zip(labels, answers, strict=True)]
    name = clip_text_embeddings(model, processor, labels)
    first = clip_text_embeddings(model, processor, [items[0] for items in firsts])
    second = clip_text_embeddings(model, processor, [items[-1] for items in firsts])
    return {
        "class name": name,
        "first answer item": first,
        "class name + first item": F.normalize(name + first, dim=-1),
        "first two items": F.normalize(first + second, dim=-1),
        "best of class name and category members": embed_labels(labels, members, processor),
    }


def gated_sides(model: OvmlvModel, processor: OvmlvProcessor, labels: list[str]) -> dict[str, torch.Tensor]:
    """normalize(class name + g f_prompted) for each gate g in GATES."""
    name = clip_text_embeddings(model, processor, labels)
    with torch.inference_mode():
        prompted = torch.cat(
            [prompted_embeddings(model, processor, labels[i : i + 128]) for i in range(0, len(labels), 128)]
        )
    return {f"g = {gate:g}": F.normalize(name + gate * prompted, dim=-1) for gate in GATES}


def table(features: dict, groups: dict, sides_of) -> dict[str, dict[str, float]]:
    """{label side: {group: macro AUPR}}, printed as a markdown table."""
    rows: dict[str, dict[str, float]] = {}
    for group, (set_name, labels) in groups.items():
        for side, embeds in sides_of(labels).items():
            rows.setdefault(side, {})[group] = macro_aupr(features, set_name, labels, embeds)
    print("| label side | " + " | ".join(groups) + " |\n|---|" + "---|" * len(groups))
    for side, values in rows.items():
        print(f"| {side} | " + " | ".join(f"{values[g]:.3f}" for g in groups) + " |")
    return rows


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("outputs/demo/data"))
    parser.add_argument("--out", type=Path, default=Path("outputs/llm_answer_worth"))
    parser.add_argument("--align", type=int, default=0, help="text-only alignment steps of the paper's encoder")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    features = video_features(args.data, args.out / "features.pt")
    groups = label_groups(args.data)
    towers = existing_towers()
    processor = OvmlvProcessor.from_towers(towers.clip, towers.llm)
    model = OvmlvModel.from_towers(towers.clip, towers.llm, method="ovmlv").eval()
    members = OvmlvModel.from_towers(towers.clip, towers.llm, method="ovmlv", category_members=MEMBER_SLOTS).eval()
    rows = table(features, groups, lambda labels: answer_sides(model, members, processor, labels))
    if args.align:
        start = time.perf_counter()
        settings = LabelAlignmentConfig(text_steps=args.align)
        report = align_label_encoder(model, processor, groups["seen"][1], settings, recipe().optimizer.lr, args.seed)
        print(
            f"\n{args.align} alignment steps in {time.perf_counter() - start:.0f} s: mean cosine of f_prompted to its "
            f"target {report.cosine_before:.3f} -> {report.cosine_after:.3f}\n"
        )
        model.eval()
        rows |= table(features, groups, lambda labels: gated_sides(model, processor, labels))
    return rows


if __name__ == "__main__":
    main()
