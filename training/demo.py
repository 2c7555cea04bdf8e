"""The main job end to end, offline, on 2 CPU cores: `ovmlv demo --out outputs/demo`.

1. tiny random CLIP and T5 towers (stand-ins for CLIP B/32 and Flan-T5, so nothing is downloaded);
2. the synthetic moving-shapes benchmark (train, val, and a held-out split whose labels training never sees);
3. the paper's method trained with `configs/synthetic_tiny.yaml` through `accelerate launch`;
4. it and the frozen-CLIP frame-mean baseline evaluated per label kind, as a table in `--out`/results.md;
5. the Hub export with its model card;
6. held-out videos classified by `pipeline("zero-shot-video-classification")` loading the export.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from transformers import pipeline

from ovmlv.hub_cards import export
from ovmlv.modeling_ovmlv import OvmlvModel
from ovmlv.text_files import read_lines

from .config import ManifestConfig
from .data import read_manifest
from .evaluation import write_json
from .evaluation_files import markdown_table
from .runs import (
    GROUPS,
    HELDOUT,
    VAL,
    announce,
    build_data,
    build_towers,
    cell,
    changed_frozen_weights,
    default_steps,
    evaluate_run,
    method_run,
    train_run,
)

STEPS = 6
METHOD, BASELINE = "ovmlv", "class_name"
BASELINE_NAME = f"frozen CLIP frame mean ({BASELINE})"
NUM_CLASSIFIED = 3  # held-out videos shown at the end
TOP_K = 5


def results_table(results: dict[str, dict]) -> str:
    """Rows: model x label group; columns: macro AUPR and peak F1 (one threshold for all labels) per set."""
    columns = ["Model", "Labels", "Val AUPR (macro)", "Val peak F1", "Held-out AUPR (macro)", "Held-out peak F1"]
    rows = [
        [
            model,
            group,
            *(cell(sets[name][group], metric) for name in (VAL, HELDOUT) for metric in ("aupr_macro", "peak_f1")),
        ]
        for model, sets in results.items()
        for group in GROUPS
    ]
    return "\n\n".join(
        [
            "# Demo: the paper's method vs the frozen-CLIP frame-mean baseline on the synthetic benchmark",
            markdown_table(columns, rows),
            "direction: moving left/right/up/down (told apart only by frame order); unseen: the held-out labels, "
            "in no training video nor the training vocabulary. Peak F1: the best micro F1 at one threshold for "
            "every label of the group.",
        ]
    )


def classify_held_out(model_dir: Path, data: Path) -> None:
    """Top labels of a few held-out videos against the whole vocabulary, unseen labels included, vs the truth."""
    classifier = pipeline("zero-shot-video-classification", model=str(model_dir), trust_remote_code=True)
    vocabulary = read_lines(data / "vocab_all.txt", "vocabulary")
    records = read_manifest(ManifestConfig(manifest=str(data / "heldout.jsonl")))  # as `synthetic` names it
    for record in records.select(range(NUM_CLASSIFIED)):
        truth = set(record["labels"])
        ranked = classifier(record["video"], candidate_labels=vocabulary, top_k=TOP_K, threshold=0.0)
        print(f"\n{Path(record['video']).name}  true labels: {', '.join(sorted(truth))}")
        for entry in ranked:
            print(f"  {entry['score']:.3f} {'✓' if entry['label'] in truth else ' '} {entry['label']}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/demo"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, help="training steps (default: the recipe's max_steps)")
    parser.add_argument("--quick", action="store_true", help="a tiny budget that checks the plumbing in seconds")
    args = parser.parse_args(argv)
    out: Path = args.out
    steps = args.steps or default_steps(args.quick)

    with announce(f"1/{STEPS} Building tiny random towers (offline stand-ins for CLIP B/32 and Flan-T5)"):
        towers = build_towers(out / "towers", args.seed)
    with announce(f"2/{STEPS} Writing the synthetic moving-shapes videos"):
        data = build_data(out / "data", args.seed, args.quick)
    with announce(f"3/{STEPS} Training the paper's method ({METHOD}, {steps} steps) with accelerate launch"):
        trained = train_run(METHOD, towers, data, out / "train", steps, args.seed)
        compared, changed = changed_frozen_weights(
            OvmlvModel.from_pretrained(trained), OvmlvModel.from_towers(towers.clip, towers.llm, method=METHOD)
        )
        if changed:
            raise RuntimeError(f"Training changed {len(changed)} frozen tower weights, e.g. {changed[:3]}.")
        print(f"Frozen tower weights after training: all {compared} tensors bit-identical to the towers'.")
    with announce(f"4/{STEPS} Evaluating the frozen-CLIP frame-mean baseline and the trained model"):
        baseline = method_run(BASELINE, towers, data, out / "baseline", steps, args.seed)
        results = {
            BASELINE_NAME: evaluate_run(baseline.folder, data, out / "eval_baseline"),
            f"{METHOD}, {steps} steps": evaluate_run(trained, data, out / "eval_trained"),
        }
        table = results_table(results)
        (out / "results.md").write_text(table + "\n", encoding="utf-8")
        write_json(out / "results.json", results)
        print(f"\n{table}\n\nWritten to {out / 'results.md'}")
    with announce(f"5/{STEPS} Exporting the trained model as a Hub repo folder"):
        hub = out / "hub"
        argv = ["--model", str(trained), "--out", str(hub), "--eval", str(out / "eval_trained" / "results.json")]
        if export.main([*argv, "--overwrite"]) != 0:
            raise RuntimeError("The export failed (see the message above).")
    with announce(f"6/{STEPS} Classifying held-out videos with pipeline('zero-shot-video-classification', '{hub}')"):
        classify_held_out(hub, data)


if __name__ == "__main__":
    main()
