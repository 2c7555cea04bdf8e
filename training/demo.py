"""The main job on an embedded default, end to end and offline: `python -m training.demo --out outputs/demo`.

Builds tiny *random* CLIP/T5 towers, writes the synthetic moving-shapes videos, builds a model and its label
bank, saves a Hub-style folder, and classifies held-out videos with the `zero-shot-video-classification`
pipeline. The towers are random, so the scores mean nothing: the demo proves the plumbing, not the accuracy.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from transformers import pipeline

from modeling_ovmlv import LabelBank, OvmlvModel
from processing import OvmlvProcessor

from .synthetic import SyntheticConfig, generate_dataset
from .tiny_towers import build_tiny_towers


def read_vocabulary(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_manifest(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"))
    parser.add_argument("--videos", type=int, default=3, help="held-out videos to classify")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    print("1/4 Building tiny random towers (offline stand-ins for CLIP B/32 and Flan-T5)")
    towers = build_tiny_towers(args.out / "towers", seed=args.seed)

    print("2/4 Writing the synthetic moving-shapes videos")
    data_dir = args.out / "data"
    generate_dataset(data_dir, SyntheticConfig(num_train=40, num_val=10, num_heldout=10, seed=args.seed), workers=2)
    vocabulary = read_vocabulary(data_dir / "vocab_all.txt")

    print("3/4 Building the model and its label bank; saving a Hub-style folder")
    model = OvmlvModel.from_towers(clip=towers.clip, label_encoder="templates", temporal_layers=0)
    processor = OvmlvProcessor.from_towers(clip=towers.clip)
    model.label_bank = LabelBank.build(model, processor, vocabulary)
    model_dir = args.out / "model"
    model.save_pretrained(model_dir)
    processor.save_pretrained(model_dir)

    print(f"4/4 Classifying held-out videos with pipeline('zero-shot-video-classification', model='{model_dir}')")
    classifier = pipeline("zero-shot-video-classification", model=str(model_dir), trust_remote_code=True)
    for item in read_manifest(data_dir / "heldout.jsonl")[: args.videos]:
        video = data_dir / item["video"]
        ranked = classifier(str(video), candidate_labels=vocabulary, top_k=5, threshold=0.0)
        print(f"\n{video.name}  (true labels: {', '.join(item['labels'])})")
        for entry in ranked:
            print(f"  {entry['score']:.3f}  {entry['label']}")
    print("\nThe towers are random: these scores show the pipeline works, not what a trained model would say.")


if __name__ == "__main__":
    main()
