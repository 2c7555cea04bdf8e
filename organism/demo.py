"""The main job end to end, offline, on 2 CPU cores: `ovmlv demo --out outputs/demo`.

1. the model organism's towers (`organism/towers`: a tiny CLIP and T5 pretrained here on the synthetic
   world, stand-ins for CLIP B/32 and Flan-T5; docs/organism.md);
2. the synthetic world's videos: train, val, and a held-out split with labels training never sees, also written
   with synonyms only;
3. the paper's method trained with `training/configs/synthetic_tiny.yaml` through `accelerate launch`;
4. it and the frozen organism's zero-shot baselines (class names, prompt templates; frame mean) evaluated, as
   tables per label kind and per held-out kind in `--out`/results.md;
5. the Hub export with its model card;
6. held-out videos classified by `pipeline("zero-shot-video-classification")` loading the export, beside their
   true labels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from transformers import pipeline

from ovmlv.arguments import CommandError
from ovmlv.hub_cards.eval_results import read_eval_results
from ovmlv.hub_cards.export import export_model
from ovmlv.modeling_ovmlv import OvmlvModel
from ovmlv.modeling_ovmlv.atomic_files import write_text_atomically
from ovmlv.text_files import read_lines
from ovmlv.training.config import ManifestConfig
from ovmlv.training.data import read_manifest
from ovmlv.training.eval_loop import write_json
from ovmlv.training.eval_reports import markdown_table
from ovmlv.training.metrics import average_precision

from .harness_defaults import DEMO_OUT, ORGANISM_TOWERS, QUICK_OUT, default_steps
from .runs import (
    HELDOUT,
    LABEL_KINDS,
    ORDER_ONLY,
    PARAPHRASED,
    VAL,
    announce,
    build_data,
    cell,
    changed_frozen_weights,
    evaluate_run,
    existing_towers,
    finished_run,
    launch_training,
    method_run,
    recipe,
    train_overrides,
)
from .world_labels import HELDOUT_CATEGORY, HELDOUT_SYNONYM, UNSEEN_COMPOSITION

STEPS = 6
METHOD = "ovmlv"
BASELINES = {"class_name": "frozen organism, class names", "templates": "frozen organism, prompt templates"}
REFERENCE = "class_name"  # the frozen model the printed videos compare the trained one with
NUM_CLASSIFIED = 4  # held-out videos shown at the end
MAX_SHOWN = 10  # predicted labels printed per video
# (column title, evaluation set, label group, metric) of the per-held-out-kind table: world v2's (a), (b), (c), (d),
# then how well each held-out video's ranking of every label finds its true ones (what a reader of the pipeline's
# output for one video sees)
HELDOUT_COLUMNS = (
    ("(a) unseen compositions, AUPR", HELDOUT, UNSEEN_COMPOSITION, "aupr_macro"),
    ("(b) held-out synonyms, AUPR", PARAPHRASED, HELDOUT_SYNONYM, "aupr_macro"),
    ("(c) held-out categories, AUPR", HELDOUT, HELDOUT_CATEGORY, "aupr_macro"),
    ("(d) order-only, val AUPR", VAL, ORDER_ONLY, "aupr_macro"),
    ("(d) order-only, held-out AUPR", HELDOUT, ORDER_ONLY, "aupr_macro"),
    ("held-out, AUPR per video", HELDOUT, "all", "aupr_samples"),
    ("paraphrased, AUPR per video", PARAPHRASED, "all", "aupr_samples"),
)


def results_table(results: dict[str, dict]) -> str:
    """Two tables: per label kind (val and held-out AUPR, held-out peak F1), and per held-out kind; each with the
    AUPR of a random ranking as a first row."""
    chance = next(iter(results.values()))  # the same sets and labels for every model
    kind_columns = ["Model", "Labels", "Val AUPR (macro)", "Held-out AUPR (macro)", "Held-out peak F1"]

    def kind_row(model: str, sets: dict, group: str, metric: str = "aupr_macro") -> list[str]:
        values = [cell(sets[name][group], metric) for name in (VAL, HELDOUT)]
        return [model, group, *values, "–" if metric == "chance_aupr" else cell(sets[HELDOUT][group], "peak_f1")]

    kind_rows = [kind_row("chance", chance, group, "chance_aupr") for group in ("all", *LABEL_KINDS)]
    kind_rows += [kind_row(model, sets, group) for model, sets in results.items() for group in ("all", *LABEL_KINDS)]
    heldout_rows = [
        [
            "chance",
            *(
                cell(chance[name][group], "chance_aupr") if metric == "aupr_macro" else "–"
                for _, name, group, metric in HELDOUT_COLUMNS
            ),
        ]
    ]
    heldout_rows += [
        [model, *(cell(sets[name][group], metric) for _, name, group, metric in HELDOUT_COLUMNS)]
        for model, sets in results.items()
    ]
    return "\n\n".join(
        [
            "# Demo: the paper's method vs the frozen organism's zero-shot baselines on the synthetic world",
            "## Per label kind",
            markdown_table(kind_columns, kind_rows),
            'shape: a bare shape ("star"); pair: a colour-shape pair ("red star"); action: a label naming a motion '
            '("red star moving left"); count: "two stars"; scene: a background; category: a label naming a category '
            '("warm-coloured polygon"). Held-out: videos each showing an unseen composition, scored against every '
            "canonical label. Peak F1: the best micro F1 at one threshold for every label of the group.",
            "## Per held-out kind",
            markdown_table(["Model", *(title for title, *_ in HELDOUT_COLUMNS)], heldout_rows),
            '(a) labels naming a colour-shape or shape-motion pair that no training video shows ("blue circle", '
            '"star rotating"); (b) the held-out videos\' training labels written with synonyms that training never '
            'uses and only the T5 knows ("navy star"); (c) labels naming a category that only the T5 knows and '
            'training never uses ("curved shape"); (d) the time-reversal pairs (moving left/right, up/down, '
            "growing/shrinking), scored on the videos that show one side of a pair: only frame order tells the sides "
            "apart. Per video: the AP of each video's ranking of every label, averaged over the videos (the other "
            "columns rank each label's videos). Chance: the AUPR of a random ranking.",
        ]
    )


def classify_held_out(model_dir: Path, data: Path, reference_dir: Path) -> None:
    """Labels above the calibrated threshold for a few held-out videos, scored against the whole vocabulary (unseen
    labels included), beside the true labels: the best `MAX_SHOWN`, then what all of them found and missed, and how
    well the trained model and the frozen reference in `reference_dir` each rank every label for that video."""
    classifier = pipeline("zero-shot-video-classification", model=str(model_dir), trust_remote_code=True)
    reference = pipeline("zero-shot-video-classification", model=str(reference_dir), trust_remote_code=True)
    vocabulary = read_lines(data / "vocab_all.txt", "vocabulary")
    records = read_manifest(ManifestConfig(manifest=str(data / "heldout.jsonl")))  # as `synthetic` names it
    threshold = classifier.model.config.deployment_config.threshold
    print(f"(labels scoring at least the calibrated threshold {threshold:.3f}; ✓ true, ✗ false)")
    for record in records.select(range(NUM_CLASSIFIED)):
        truth = set(record["labels"])
        predicted = classifier(record["video"], candidate_labels=vocabulary)
        found = {entry["label"] for entry in predicted}
        print(f"\n{Path(record['video']).name}  true labels: {', '.join(sorted(truth))}")
        for entry in predicted[:MAX_SHOWN]:
            print(f"  {entry['score']:.3f} {'✓' if entry['label'] in truth else '✗'} {entry['label']}")
        if len(predicted) > MAX_SHOWN:
            print(f"  ... and {len(predicted) - MAX_SHOWN} more above the threshold")
        missed = ", ".join(sorted(truth - found)) or "-"
        print(
            f"  {len(found & truth)} of {len(truth)} true labels found among {len(found)} predicted; missed: {missed}"
        )
        trained, frozen = (
            ranking_precision(model(record["video"], candidate_labels=vocabulary, threshold=0.0), truth)
            for model in (classifier, reference)
        )
        print(
            f"  every label ranked for this video, average precision: trained {trained:.3f}, frozen CLIP with class "
            f"names {frozen:.3f}"
        )


def ranking_precision(ranked: list[dict], truth: set[str]) -> float:
    """Average precision of one video's labels as the pipeline ranked them (every label, best first)."""
    hits = np.array([entry["label"] in truth for entry in ranked], dtype=float)
    return average_precision(hits, -np.arange(len(hits), dtype=float))


def run_demo(
    out: Path | None = None,
    *,
    towers_dir: Path = ORGANISM_TOWERS,
    steps: int | None = None,
    seed: int = 0,
    quick: bool = False,
    fresh: bool = False,
) -> None:
    """Run the six steps into `out` (None: `DEMO_OUT`, or `QUICK_OUT` when `quick`) with the towers in `towers_dir`,
    training `steps` steps (None: the recipe's, or `QUICK_STEPS` when `quick`) from `seed`; `quick` also writes a
    small world. A finished training run of the same settings in `out` is reused unless `fresh`."""
    out = out or (QUICK_OUT if quick else DEMO_OUT)
    steps = steps or default_steps(quick=quick)

    with announce(f"1/{STEPS} Loading the towers from {towers_dir} (stand-ins for CLIP B/32 and Flan-T5)"):
        towers = existing_towers(towers_dir)
        if not (towers.clip / "config.json").is_file() or not (towers.llm / "config.json").is_file():
            raise CommandError(f"No towers in {towers_dir}: make them with `ovmlv organism --out DIR`.")
    world = "the synthetic world's videos" + (" (a small world: --quick)" if quick else "")
    with announce(f"2/{STEPS} Writing {world}"):
        data = build_data(out / "data", seed, quick)
    with announce(f"3/{STEPS} Training the paper's method ({METHOD}, {steps} steps) with accelerate launch"):
        # Step 4 evaluates the trained model and calibrates its threshold: the trainer does not evaluate it first.
        overrides = train_overrides(METHOD, towers, data, out / "train", steps, seed, validate=False)
        if not fresh and finished_run(out / "train", overrides):
            trained = out / "train" / "final"
            print(f"Reusing the finished run in {out / 'train'} (same settings; --fresh trains again).")
        else:
            if (out / "train").exists():
                print(f"{out / 'train'} holds an unfinished run or other settings: training afresh over it.")
            launch_training(overrides, overwrite=True)
            trained = out / "train" / "final"
        compared, changed = changed_frozen_weights(
            OvmlvModel.from_pretrained(trained),
            OvmlvModel.from_towers(towers.clip, towers.llm, **{"method": METHOD, **recipe().model}),
        )
        if changed:
            raise RuntimeError(f"Training changed {len(changed)} frozen tower weights, e.g. {changed[:3]}.")
        print(f"Frozen tower weights after training: all {compared} tensors bit-identical to the towers'.")
    with announce(f"4/{STEPS} Evaluating the frozen organism's zero-shot baselines and the trained model"):
        results, folders = {}, {}
        for method, name in BASELINES.items():
            folders[method] = method_run(method, towers, data, out / method, steps, seed).folder
            results[name] = evaluate_run(folders[method], data, out / f"eval_{method}")
        results[f"{METHOD}, {steps} steps"] = evaluate_run(trained, data, out / "eval_trained")
        table = results_table(results)
        write_text_atomically(out / "results.md", table + "\n")
        write_json(out / "results.json", results)
        print(f"\n{table}\n\nWritten to {out / 'results.md'}")
    with announce(f"5/{STEPS} Exporting the trained model as a Hub repo folder"):
        hub, eval_report = out / "hub", read_eval_results(out / "eval_trained" / "results.json")
        repo_id = f"your-username/{hub.resolve().name}"  # as `ovmlv export` names a repo it does not push
        print(f"Exported {export_model(trained, hub, repo_id, eval_report=eval_report, overwrite=True)}")
    with announce(f"6/{STEPS} Classifying held-out videos with pipeline('zero-shot-video-classification', '{hub}')"):
        classify_held_out(hub, data, reference_dir=folders[REFERENCE])
