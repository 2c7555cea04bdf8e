"""How far can training the label side lift seen labels on world v2, with the video side frozen?

The paper's model on v2 ends where it starts (frozen class names) after the recipe's 100 steps. Before blaming the
label encoder, this bounds what any label-side learner could do there: on the frozen organism's frame-mean video
embeddings (cached once), it fits the most flexible label side there is, a free embedding per training label
started at its class-name embedding, with the trainer's loss, batches (`sample_label_batch`: 16 videos, the
labels of P_B, `classes_per_video` x 16 of them), warm-up and cosine schedule, and reports val macro AUPR over the
training vocabulary (labels with a positive) per label kind. Beside it:
- `shared`: one zero-initialised linear map applied to every class-name embedding, f = normalize(e + e A): a label
  side whose parameters every label shares (as CoOp's context or the LLM prompts are); `centred`: the same map of
  e minus the vocabulary's mean embedding; `common`: one vector c added to every label, normalize(e + c);
- `prototype`: no training: normalize(e + unit(mean of the label's training videos - mean of all)).

Frame-mean features cannot see motion, so labels naming a motion ("action", most of v2's vocabulary) stay where
they are whatever the label side learns: this is the label side's share of the headroom only. docs/design.md §4.3
has the measured table.

    .venv/bin/python bench/label_side_headroom.py --data outputs/demo/data [--steps 100]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers import get_cosine_schedule_with_warmup

from ovmlv.modeling_ovmlv import OvmlvModel
from ovmlv.modeling_ovmlv.label_bank import embed_labels
from ovmlv.modeling_ovmlv.loss import weighted_multilabel_bce
from ovmlv.organism.runs import existing_towers, recipe
from ovmlv.processing import OvmlvProcessor
from ovmlv.text_files import read_lines
from ovmlv.training.batching import Vocabulary, multi_hot, negative_label_rng, sample_label_batch
from ovmlv.training.metrics import per_class_average_precision

BATCH_VIDEOS = 16  # the recipe's per_device_batch_size
RUNS = [  # (label side, learning rate, classes_per_video)
    ("free", 2e-3, 4),
    ("free", 2e-2, 4),
    ("free", 2e-3, 16),
    ("free", 2e-2, 16),
    ("shared", 2e-3, 4),
    ("shared", 2e-2, 4),
    ("common", 2e-3, 4),
    ("common", 2e-2, 4),
    ("centred", 2e-2, 4),
]


def frozen_features(data: Path, cache: Path) -> dict:
    """Frame-mean video embeddings of train and val, class-name embeddings of the training vocabulary, targets."""
    if cache.exists():
        return torch.load(cache)
    towers = existing_towers()
    model = OvmlvModel.from_towers(towers.clip, towers.llm, method="class_name").eval()
    processor = OvmlvProcessor.from_towers(towers.clip, towers.llm)
    vocabulary = Vocabulary(read_lines(data / "vocab_train.txt", "training vocabulary"))
    features = {"labels": vocabulary.labels, "label_embeds": embed_labels(vocabulary.labels, model, processor)}
    for split in ("train", "val"):
        records = [json.loads(line) for line in read_lines(data / f"{split}.jsonl", f"{split} manifest", "record")]
        clips = [processor(videos=str(data / r["video"]), return_tensors="pt")["pixel_values_videos"] for r in records]
        with torch.inference_mode():
            features[split] = torch.cat([model.get_video_features(clip) for clip in clips])  # (V, D)
        features[f"{split}_positives"] = [[label for label in r["labels"] if label in vocabulary] for r in records]
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save(features, cache)
    return features


def json_kinds(data: Path) -> dict[str, str]:
    """Each label's kind (labels.json of the world's folder)."""
    return json.loads((data / "labels.json").read_text(encoding="utf-8"))


def per_kind_aupr(features: dict, label_embeds: torch.Tensor, kinds: dict[str, str]) -> dict[str, float]:
    """Val macro AUPR over labels with a positive, in all and per label kind."""
    vocabulary = Vocabulary(features["labels"])
    targets = multi_hot(features["val_positives"], vocabulary.index).numpy().astype(bool)
    ap = per_class_average_precision(targets, (features["val"] @ F.normalize(label_embeds, dim=-1).T).numpy())
    kind = np.array([kinds.get(label, "?") for label in vocabulary.labels])
    report = {"all": float(np.nanmean(ap))}
    report |= {k: float(np.nanmean(ap[kind == k])) for k in sorted(set(kind)) if not np.isnan(ap[kind == k]).all()}
    return report


def pairwise_cosine(label_embeds: torch.Tensor) -> float:
    """Mean cosine between two different labels: how far the label embeddings have closed up."""
    unit = F.normalize(label_embeds, dim=-1)
    count = len(unit)
    return float(((unit.sum(0) @ unit.sum(0)) - count) / (count * (count - 1)))


def prototypes(features: dict) -> torch.Tensor:
    """Class names moved by the unit direction from the mean training video to the label's positives' mean."""
    vocabulary = Vocabulary(features["labels"])
    targets = multi_hot(features["train_positives"], vocabulary.index)  # (V, C)
    counts = targets.sum(0)[:, None]
    means = targets.T @ features["train"] / counts.clamp(min=1)
    shift = torch.where(counts > 0, F.normalize(means - features["train"].mean(0), dim=-1), 0.0)
    return F.normalize(features["label_embeds"] + shift, dim=-1)


def fit_label_side(
    features: dict, side: str, lr: float, classes_per_video: int, steps: int, seed: int
) -> torch.Tensor:
    """Train the `side` label side with the trainer's loss, batches and schedule; the (C, D) label embeddings."""
    config = recipe()
    base = features["label_embeds"]
    dim = base.shape[1]
    trained = {"free": base.clone(), "common": torch.zeros(dim), "shared": torch.zeros(dim, dim)}
    trained["centred"] = trained["shared"]
    weights = torch.nn.Parameter(trained[side])
    bias = torch.nn.Parameter(torch.tensor(config.model["score_bias"]))

    def embeds(rows: torch.Tensor) -> torch.Tensor:
        moved = {
            "free": lambda: weights[rows],
            "common": lambda: base[rows] + weights,
            "shared": lambda: base[rows] + base[rows] @ weights,
            "centred": lambda: base[rows] + (base[rows] - base.mean(0)) @ weights,
        }
        return F.normalize(moved[side](), dim=-1)

    optimizer = torch.optim.AdamW([weights, bias], lr=lr, weight_decay=0.0)
    schedule = get_cosine_schedule_with_warmup(optimizer, config.optimizer.warmup_steps, steps)
    vocabulary, rng = Vocabulary(features["labels"]), np.random.default_rng(seed)
    for step in range(steps):
        videos = rng.choice(len(features["train"]), min(BATCH_VIDEOS, len(features["train"])), replace=False)
        positives = [features["train_positives"][v] for v in videos]
        batch = sample_label_batch(positives, vocabulary, classes_per_video, negative_label_rng(seed, 0, step))
        rows = torch.tensor([vocabulary.index[label] for label in batch.labels])
        logits = features["train"][videos] @ embeds(rows).T / 0.07 + bias
        loss = weighted_multilabel_bce(logits, batch.targets, negative_weight=1.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    with torch.no_grad():
        return embeds(torch.arange(len(vocabulary)))


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    """Print the table; returns {label side: val AUPR per kind}."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("outputs/demo/data"))
    parser.add_argument("--out", type=Path, default=Path("outputs/label_side_headroom"))
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    features = frozen_features(args.data, args.out / "features.pt")
    kinds = json_kinds(args.data)
    rows = [("frozen class names", features["label_embeds"]), ("prototype (no training)", prototypes(features))]
    for side, lr, classes in RUNS:
        name = f"{side}, lr {lr:g}, classes_per_video {classes}, {args.steps} steps"
        rows.append((name, fit_label_side(features, side, lr, classes, args.steps, args.seed)))
    reports = [(name, per_kind_aupr(features, embeds, kinds), pairwise_cosine(embeds)) for name, embeds in rows]
    columns = list(reports[0][1])
    print(
        "| label side | "
        + " | ".join(columns)
        + " | labels' mean pairwise cosine |\n|---|"
        + "---|" * (len(columns) + 1)
    )
    for name, report, cosine in reports:
        print(f"| {name} | " + " | ".join(f"{report[c]:.3f}" for c in columns) + f" | {cosine:.3f} |")
    return {name: report for name, report, _ in reports}


if __name__ == "__main__":
    main()
