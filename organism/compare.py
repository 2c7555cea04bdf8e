"""Every method on one benchmark and one budget, as a table shaped like the paper's Tables 1-2.

    ovmlv compare --out outputs/compare [--methods ovmlv coop class_name ...] [--steps N]
        [--data outputs/demo/data --towers organism/towers]

The towers are the model organism's (`organism/towers`) unless `--towers` names others. Each method with parameters
to train is trained with the same recipe (`training/configs/synthetic_tiny.yaml`), seed and step budget through
`accelerate launch`; zero-shot methods (nothing to train) are evaluated as built on the towers. Columns: closed-set
numbers on the validation split (all labels, then per kind; time-reversal = moving left/right, up/down,
growing/shrinking, which only frame order tells apart), open-set macro AUPR on the held-out split, over all its
labels and over the unseen ones alone, and on the held-out videos with every label written in synonyms. Writes
`--out`/results.md and results.json; runs go to `--out`/runs/{method}/.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ovmlv.modeling_ovmlv.atomic_files import write_text_atomically
from ovmlv.training.eval_loop import write_json
from ovmlv.training.eval_reports import markdown_table

from .harness_defaults import default_steps
from .runs import (
    HELDOUT,
    PARAPHRASED,
    VAL,
    MethodRun,
    announce,
    build_data,
    cell,
    evaluate_run,
    existing_towers,
    method_run,
)

# (column title, evaluation set, label group, metric)
COLUMNS = (
    ("Val AUPR", VAL, "all", "aupr_macro"),
    ("Val peak F1", VAL, "all", "peak_f1"),
    ("Val AUPR shape", VAL, "shape", "aupr_macro"),
    ("Val AUPR pair", VAL, "pair", "aupr_macro"),
    ("Val AUPR action", VAL, "action", "aupr_macro"),
    ("Val AUPR time-reversal", VAL, "time-reversal", "aupr_macro"),
    ("Held-out AUPR", HELDOUT, "all", "aupr_macro"),
    ("Held-out AUPR unseen labels", HELDOUT, "unseen", "aupr_macro"),
    ("Paraphrased AUPR", PARAPHRASED, "all", "aupr_macro"),
)


def results_table(runs: list[MethodRun], results: dict[str, dict]) -> str:
    rows = [
        [
            run.method,
            f"{run.steps} steps" if run.steps else "zero-shot",
            *(cell(results[run.method][name][group], metric) for _, name, group, metric in COLUMNS),
        ]
        for run in runs
    ]
    return "\n\n".join(
        [
            "# Methods compared on the synthetic benchmark (closed set: val; open set: held-out)",
            markdown_table(["Method", "Trained", *(title for title, *_ in COLUMNS)], rows),
            "AUPR: macro over labels with a positive; peak F1: the best micro F1 at one threshold for all labels. "
            "Unseen labels: in no training video nor the training vocabulary. Paraphrased: the held-out videos, every "
            "label written with synonyms that only the T5 knows.",
        ]
    )


def compare_methods(
    out: Path,
    methods: Sequence[str],
    steps: int | None,
    data: Path | None,
    towers_folder: Path,
    seed: int,
    quick: bool,
) -> None:
    """Train (where there is anything to train) and evaluate each method, then write the table; `data` None
    writes the synthetic world into `out`/data, `steps` None is the recipe's."""
    steps = steps or default_steps(quick)

    towers = existing_towers(towers_folder)
    if not data:
        with announce("Writing the synthetic moving-shapes videos"):
            data = build_data(out / "data", seed, quick)

    runs, results = [], {}
    methods = list(dict.fromkeys(methods))  # each once: a method's run folder is its name
    for i, method in enumerate(methods, start=1):
        with announce(f"{i}/{len(methods)} {method}: training ({steps} steps) if it has parameters, evaluating"):
            run = method_run(method, towers, data, out / "runs" / method, steps, seed)
            runs.append(run)
            results[run.method] = evaluate_run(run.folder, data, out / "runs" / method / "eval")
    table = results_table(runs, results)
    write_text_atomically(out / "results.md", table + "\n")
    trained_steps = {run.method: run.steps for run in runs}
    write_json(out / "results.json", {"seed": seed, "trained_steps": trained_steps, "methods": results})
    print(f"\n{table}\n\nWritten to {out / 'results.md'} and results.json")
