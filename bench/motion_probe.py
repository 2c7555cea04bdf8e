"""Can the temporal branch learn frame order here at all? A probe on the model organism.

The claims table finds every T = 4 variant at chance on the time-reversal labels (moving left/right, up/down,
growing/shrinking) after 100 steps of the full task, 73 labels at once. This trains the branch on those six labels
alone: the same train videos, each labelled with the time-reversal labels it shows and nothing else, with the
recipe (learning rate, batch, regulariser), the class-name label encoder and T = 4, the branch the only trainable
part. `--reverse-augment` adds every training video played backwards with its labels swapped (left <-> right, ...):
then no content feature can fit the labels, only order can.

It reports, on val, beside the frozen CLIP (class names, frame mean) measured in the same run:
- order-only AUPR (the videos showing one side of a pair; chance: random rankings), as a ratio over chance;
- the mean signed reversal margin per pair (on world v1 movers wrap around the frame edges; on v2 they do not);
- the reversal margin, which isolates order from content: for a video showing side a of a pair (a, b),
  m = [s(v, a) - s(v, b)] - [s(v reversed, a) - s(v reversed, b)] in logits (the same frames, so every content term
  cancels); the shares with m > 0.01 (order known) and m < -0.01 (order backwards), and the mean |m|. A model
  blind to order has m = 0 (to float rounding).

A finished run's models are reused: rerun with the same `--out` to measure again. `--paper-form` trains the branch
without its zero-start gate (`start_at_zero_shot=False`), for the comparison.

`--overfit N` asks the other question, whether the branch can represent order at all: it fits N training videos
and the same videos reversed (labels swapped) in this process (AdamW at the recipe's learning rates, no
regulariser) and prints the mean reversal margin of those clips as it goes.

`--ceiling` trains no branch: a logistic regression on the frozen tokens the branch reads, weighted by time,
r = sum_n (n - (N - 1) / 2) LN(patch token n) (first order in the frames' order), fitted on train per pair; its val
order-only AUPR is what the world and the backbone offer a first-order reader.

Measured on world v2, seed 0 (`ovmlv synthetic` defaults; 331 train and 84 val videos with these labels, 111 val
cases), one torch thread on a shared 2-core CPU (docs/design.md §4.2):

| run | order-only AUPR (chance 0.545) | reversal margin > 0.01 / < -0.01 | mean abs margin | time |
|---|---|---|---|---|
| frozen CLIP, class names | 0.534 | 0.000 / 0.000 | 0.0000 logits | |
| branch, `--steps 100` (the default model) | 0.526 | 0.000 / 0.000 | 0.0000 logits | 2 min 28 s |
| `--ceiling`, per patch (left/right, up/down, growing/shrinking) | 1.000, 1.000, 0.722 (macro 0.907) | | | 68 s |
| `--ceiling`, patch mean | 0.710, 0.870, 0.957 (macro 0.846) | | | |
| branch, 300 steps, `temporal_frame_weights`, `temporal_position_std=1`, `optimizer.gate_lr_scale=50` | 0.775 | 0.919 / 0.081 | 3.88 logits (mean +3.68) | 6 min 35 s |
| the same, 500 steps | 0.807 | 0.928 / 0.072 | 5.35 logits (mean +4.95) | 7 min 14 s |

The last row is the trainer on this probe's world with those overrides (the model's two as `--model.*`, the gates'
rate as `--optimizer.gate_lr_scale`); this script's own runs use the recipe as it is.

    .venv/bin/python bench/motion_probe.py --out outputs/motion_probe [--data outputs/demo/data] [--steps 300]
        [--reverse-augment] [--paper-form] [--ceiling] [--model outputs/demo/train/final]

`--model` measures a model trained on the whole task (the demo's, a claims run's) on the probe's cases instead.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import av
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ovmlv.modeling_ovmlv import OvmlvModel
from ovmlv.modeling_ovmlv.loss import weighted_multilabel_bce
from ovmlv.organism.runs import (
    ORDER_ONLY,
    ORGANISM_TOWERS,
    VAL,
    build_data,
    evaluate_run,
    existing_towers,
    method_run,
    recipe,
)
from ovmlv.organism.tiny_towers import TinyTowers
from ovmlv.processing import OvmlvProcessor
from ovmlv.training.optimization import parameter_groups

MODEL = {"label_encoder": "class_name", "temporal_layers": 4}
SHARED = (
    "labels.json",
    "synthetic_config.json",
    "time_reversal_pairs.json",
    "paraphrases.json",
    "heldout.json",
)  # as is
NUM_FRAMES = 8
DECIDED = 0.01  # logits: a reversal margin beyond this is a preference, below it rounding


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def reversed_video(source: Path, target: Path) -> None:
    """`source` played backwards, re-encoded at its frame rate."""
    with av.open(str(source)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        rate = stream.average_rate
    with av.open(str(target), "w") as output:
        out_stream = output.add_stream("libx264", rate=rate)
        out_stream.height, out_stream.width = frames[0].shape[:2]
        out_stream.pix_fmt = "yuv420p"
        for array in reversed(frames):
            output.mux(out_stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        output.mux(out_stream.encode())


def probe_world(data: Path, out: Path, reverse_augment: bool) -> tuple[Path, dict[str, str]]:
    """A copy of the world folder whose train and val splits hold the time-reversal labels only (the videos showing
    none dropped), with those six as every vocabulary; returns it and each label's opposite."""
    pairs = json.loads((data / "time_reversal_pairs.json").read_text(encoding="utf-8"))  # canonical words only
    opposite = {first: second for first, second in pairs} | {second: first for first, second in pairs}
    world = out / "world"
    (world / "videos").mkdir(parents=True, exist_ok=True)
    for name in SHARED:
        shutil.copyfile(data / name, world / name)
    splits = {}
    for split in ("train", "val"):
        splits[split] = [
            {"video": str((data / row["video"]).resolve()), "labels": kept}
            for row in read_jsonl(data / f"{split}.jsonl")
            if (kept := [label for label in row["labels"] if label in opposite])
        ]
    if reverse_augment:
        for row in list(splits["train"]):
            backwards = world / "videos" / f"reversed_{Path(row['video']).name}"
            if not backwards.exists():
                reversed_video(Path(row["video"]), backwards)
            splits["train"].append({"video": str(backwards.resolve()), "labels": [opposite[x] for x in row["labels"]]})
    for split, rows in splits.items():
        write_jsonl(world / f"{split}.jsonl", rows)
    for name in ("heldout.jsonl", "heldout_paraphrased.jsonl"):  # the recipe names them; the probe scores val only
        shutil.copyfile(world / "val.jsonl", world / name)
    for name in ("vocab_train.txt", "vocab_all.txt", "vocab_paraphrased.txt"):
        (world / name).write_text("".join(f"{label}\n" for label in sorted(opposite)), encoding="utf-8")
    shutil.copyfile(data / "labels.json", world / "labels_paraphrased.json")
    return world, opposite


def reversal_margins(model_dir: Path, world: Path, opposite: dict[str, str]) -> tuple[torch.Tensor, list[str]]:
    """m for every (val video, side of a pair it shows alone), and that side's label: see the module docstring."""
    model, processor = OvmlvModel.from_pretrained(model_dir).eval(), OvmlvProcessor.from_pretrained(model_dir)
    labels = sorted(opposite)
    column = {label: index for index, label in enumerate(labels)}
    cases = [
        (row["video"], label)
        for row in read_jsonl(world / "val.jsonl")
        for label in row["labels"]
        if opposite[label] not in row["labels"]
    ]
    margins = []
    with torch.no_grad():
        label_embeds = model.get_label_features(**processor.label_inputs(labels))
        for start in range(0, len(cases), 16):
            chunk = cases[start : start + 16]
            pixels = processor(videos=[video for video, _ in chunk], num_frames=NUM_FRAMES)["pixel_values_videos"]
            forward = model.logits(model.get_video_features(pixels), label_embeds)
            backward = model.logits(model.get_video_features(pixels.flip(1)), label_embeds)
            for row, (_, label) in enumerate(chunk):
                a, b = column[label], column[opposite[label]]
                margins.append((forward[row, a] - forward[row, b]) - (backward[row, a] - backward[row, b]))
    return torch.stack(margins), [label for _, label in cases]


def measure(name: str, model_dir: Path, world: Path, opposite: dict[str, str], eval_dir: Path) -> dict[str, float]:
    report = evaluate_run(model_dir, world, eval_dir, sets=(VAL,))[VAL][ORDER_ONLY]
    margins, sides = reversal_margins(model_dir, world, opposite)
    by_pair = {}  # the mean signed margin per pair: on world v1 movers wrap around the frame, on v2 not
    for label in sorted(opposite):
        pair = " / ".join(sorted((label, opposite[label])))
        chosen = torch.tensor([side in (label, opposite[label]) for side in sides])
        by_pair[pair] = float(margins[chosen].mean()) if chosen.any() else float("nan")
    return {
        "mean_margin_by_pair": by_pair,
        "model": name,
        "order_only_aupr": float(report["aupr_macro"]),
        "chance_aupr": float(report["chance_aupr"]),
        "reversal_right": float((margins > DECIDED).float().mean()),
        "reversal_backwards": float((margins < -DECIDED).float().mean()),
        "reversal_mean_abs_margin": float(margins.abs().mean()),
        "reversal_mean_margin": float(margins.mean()),
        "cases": len(margins),
    }


def overfit_reversals(towers: TinyTowers, world: Path, opposite: dict[str, str], videos: int, steps: int) -> None:
    """Fit `videos` training videos and their reversals; print the mean reversal margin every 30 steps."""
    torch.manual_seed(0)
    model = OvmlvModel.from_towers(
        towers.clip, score_bias=-3.0, learnable_bias=True, weight_interpolation_loss_weight=0.0, **MODEL
    ).train()
    processor = OvmlvProcessor.from_towers(towers.clip, towers.llm)
    labels = sorted(opposite)
    rows = read_jsonl(world / "train.jsonl")[:videos]
    with torch.no_grad():
        pixels = processor(videos=[row["video"] for row in rows], num_frames=NUM_FRAMES)["pixel_values_videos"]
        label_embeds = model.get_label_features(**processor.label_inputs(labels))
    targets = torch.tensor([[float(label in row["labels"]) for label in labels] for row in rows])
    swapped = torch.tensor([[float(opposite[label] in row["labels"]) for label in labels] for row in rows])
    pixels, targets = torch.cat([pixels, pixels.flip(1)]), torch.cat([targets, swapped])
    optimizer_config = recipe().optimizer
    groups = parameter_groups(model, 0.0, 0.0, gate_lr=optimizer_config.lr * optimizer_config.gate_lr_scale)
    optimizer = torch.optim.AdamW(groups, lr=optimizer_config.lr)
    for step in tqdm(range(steps + 1), desc="overfit", unit="step"):
        logits = model.logits(model.get_video_features(pixels), label_embeds)
        if step % 30 == 0:
            with torch.no_grad():  # per clip and label: the score moved by playing the clip backwards, signed
                margin = ((logits[:videos] - logits[videos:]) * (targets[:videos] - targets[videos:])).mean()
            tqdm.write(f"step {step}: mean reversal margin {margin.item():.4f} logits")
        loss = weighted_multilabel_bce(logits, targets, model.config.negative_weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def time_weighted_tokens(model: OvmlvModel, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, N, 3, H, W) -> r = sum_n (n - (N - 1) / 2) LN(patch token n) over the frozen tokens entering the branch's
    first block: (B, P * D) patch by patch, and (B, D) averaged over the patches (all a pooled token reads)."""
    with torch.no_grad():
        tokens = model.video_encoder.encode_frames(pixels).branch_inputs[0]  # (B, N, S, D)
    patches = F.layer_norm(tokens, tokens.shape[-1:])[:, :, model.video_encoder.temporal_branch.class_tokens :]
    ramp = torch.arange(tokens.shape[1], dtype=tokens.dtype) - (tokens.shape[1] - 1) / 2
    weighted = torch.einsum("n,bnpd->bpd", ramp, patches)
    return weighted.flatten(1), weighted.mean(dim=1)


def linear_ceiling(towers: TinyTowers, world: Path, opposite: dict[str, str]) -> None:
    """How much order the frozen frames hold for a first-order reader: a logistic regression on r (see
    `time_weighted_tokens`), fitted on train per time-reversal pair, its val order-only AUPR (both sides' AP, as
    `order_only_report` takes them) and accuracy. No branch is trained: this is what the world and the frozen
    backbone offer, against which the branch's order-only AUPR reads."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import average_precision_score

    model = OvmlvModel.from_towers(towers.clip, **MODEL).eval()
    processor = OvmlvProcessor.from_towers(towers.clip, towers.llm)
    features, sides = {}, {}
    for split in ("train", "val"):
        rows = read_jsonl(world / f"{split}.jsonl")
        chunks = [
            time_weighted_tokens(
                model,
                processor(videos=[row["video"] for row in rows[i : i + 32]], num_frames=NUM_FRAMES)[
                    "pixel_values_videos"
                ],
            )
            for i in range(0, len(rows), 32)
        ]
        features[split] = [torch.cat(parts).numpy() for parts in zip(*chunks, strict=True)]
        sides[split] = [set(row["labels"]) for row in rows]
    for name, column in (("per patch (P x D)", 0), ("patch mean (D)", 1)):
        for first in sorted({min(label, opposite[label]) for label in opposite}):
            second = opposite[first]
            fitted = {}
            for split in ("train", "val"):
                shown = [
                    (index, first in labels)
                    for index, labels in enumerate(sides[split])
                    if (first in labels) != (second in labels)
                ]
                fitted[split] = (features[split][column][[i for i, _ in shown]], [side for _, side in shown])
            classifier = LogisticRegression(C=0.1, max_iter=2000).fit(*fitted["train"])
            x, y = fitted["val"]
            score = classifier.decision_function(x)
            aupr = (average_precision_score(y, score) + average_precision_score([not v for v in y], -score)) / 2
            print(
                f"{name}, {first} / {second}: val order-only AUPR {aupr:.3f}, accuracy {classifier.score(x, y):.3f} "
                f"({len(y)} videos)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data", type=Path, help="a synthetic world folder, e.g. outputs/demo/data (default: write seed 0's in --out)"
    )
    parser.add_argument("--out", type=Path, default=Path("outputs/motion_probe"))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reverse-augment", action="store_true", help="add every training video played backwards")
    parser.add_argument("--overfit", type=int, metavar="N", help="fit N videos and their reversals instead")
    parser.add_argument(
        "--ceiling", action="store_true", help="a linear readout of the frozen frames' time-weighted tokens instead"
    )
    parser.add_argument("--towers", type=Path, default=ORGANISM_TOWERS)
    parser.add_argument(
        "--model", type=Path, help="measure this trained model (e.g. outputs/demo/train/final) instead of training one"
    )
    parser.add_argument(
        "--paper-form",
        action="store_true",
        help="the branch without its zero-start gate (start_at_zero_shot=False: zero temporal output and Proj_t)",
    )
    args = parser.parse_args()
    if args.paper_form:
        MODEL["start_at_zero_shot"] = False

    towers = existing_towers(args.towers)
    data = args.data or build_data(args.out / "data", seed=0, quick=False)  # the demo's and the claims' world
    world, opposite = probe_world(data, args.out, args.reverse_augment)
    if args.ceiling:
        linear_ceiling(towers, world, opposite)
        return
    if args.overfit:
        overfit_reversals(towers, world, opposite, args.overfit, args.steps)
        return
    print(f"Probe world {world}: {len(read_jsonl(world / 'train.jsonl'))} training videos, labels {sorted(opposite)}")
    frozen = method_run("class_name", towers, world, args.out / "frozen", 0, args.seed)
    trained_folder, trained_name = args.model, f"{args.model}"
    if args.model is None:
        trained_folder, trained_name = args.out / "branch" / "final", f"branch, {args.steps} steps"
        if not trained_folder.is_dir():
            method_run(None, towers, world, args.out / "branch", args.steps, args.seed, model_overrides=MODEL)
    rows = [
        measure("frozen CLIP, class names", frozen.folder, world, opposite, args.out / "frozen_eval"),
        measure(trained_name, trained_folder, world, opposite, args.out / "branch_eval"),
    ]
    result = {"steps": args.steps, "reverse_augment": args.reverse_augment, "rows": rows}
    (args.out / "motion_probe.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    pairs = list(rows[0]["mean_margin_by_pair"])
    print(
        "\n| model | order-only AUPR (× chance) | reversal margin > 0.01 / < -0.01 | mean abs reversal margin | "
        + " | ".join(f"mean margin, {pair}" for pair in pairs)
        + " |"
    )
    print("|---|---|---|---|" + "---|" * len(pairs))
    for row in rows:
        ratio = row["order_only_aupr"] / row["chance_aupr"]
        print(
            f"| {row['model']} | {row['order_only_aupr']:.3f} ({ratio:.2f}x of {row['chance_aupr']:.3f}) | "
            f"{row['reversal_right']:.3f} / {row['reversal_backwards']:.3f} of {row['cases']} | "
            f"{row['reversal_mean_abs_margin']:.4f} logits | "
            + " | ".join(f"{row['mean_margin_by_pair'][pair]:+.4f}" for pair in pairs)
            + " |"
        )


if __name__ == "__main__":
    main()
