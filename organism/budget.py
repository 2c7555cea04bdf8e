"""`ovmlv budget`: whether the claims that miss at the claims table's step budget move with more training.

    ovmlv budget --out outputs/budget --steps 100 300 1000 [--variants NAME ...] [--data DIR] [--jobs 2]

`ovmlv claims` trains every variant for one small budget. A claim that misses there is either a question of budget
or a fault of the method, and only more steps tell them apart. This trains the variants the missed claims hinge on
for each budget, with the claims' recipe, data and seed, and reports the claims' measures side by side: seen-label
AUPR (val), order-only AUPR (the motion claim), unseen-label AUPR (the zero-shot claim) and paraphrased AUPR (the
LLM claim), each beside the frozen CLIP's class-name reference measured in the same run. The runs of a budget live
in `--out`/steps_N/runs, laid out as `ovmlv claims --out X --steps N` lays out X/runs: copy a claims run there and
it is reused, and a killed run continues where it stopped. Writes `--out`/budget.md and budget.json.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from ovmlv.modeling_ovmlv.atomic_files import write_text_atomically
from ovmlv.training.eval_reports import markdown_table

from .claims import ALL_SEEN, ORDER_ONLY_VAL, PARAPHRASED_ALL, UNSEEN, Runner, chance_level
from .harness_defaults import BUDGET_REFERENCE as REFERENCE
from .runs import build_data, existing_towers

MEASURES = {  # column title: where the claims table reads it
    "seen (val)": ALL_SEEN,
    "order-only (val)": ORDER_ONLY_VAL,
    "unseen (held-out)": UNSEEN,
    "paraphrased": PARAPHRASED_ALL,
}


def budget_rows(
    runners: dict[int, Runner], variants: list[str], reference: dict[str, float]
) -> list[dict[str, object]]:
    """One row per (variant, budget): each measure, and its difference to the frozen reference's."""
    rows = []
    for steps, runner in sorted(runners.items()):
        for name in variants:
            values = {title: runner.values(name, metric)[0] for title, metric in MEASURES.items()}
            rows.append(
                {
                    "variant": name,
                    "steps": steps,
                    "values": values,
                    "minus_reference": {title: values[title] - reference[title] for title in MEASURES},
                }
            )
    return rows


def budget_table(rows: list[dict[str, object]], reference: dict[str, float], chance: dict[str, float]) -> str:
    header = ["variant", "steps", *(f"{title} (− frozen)" for title in MEASURES)]
    cells = [
        [
            row["variant"],
            str(row["steps"]),
            *(f"{row['values'][t]:.3f} ({row['minus_reference'][t]:+.3f})" for t in MEASURES),
        ]
        for row in rows
    ]
    cells.append([f"{REFERENCE} (reference, untrained)", "—", *(f"{reference[t]:.3f}" for t in MEASURES)])
    cells.append(["chance", "—", *(f"{chance[t]:.3f}" for t in MEASURES)])
    return markdown_table(header, cells)


def run_budgets(
    out: Path, steps_list: Sequence[int], variants: Sequence[str], data: Path | None, towers_folder: Path, jobs: int
) -> None:
    """Train `variants` at each budget of `steps_list` (the frozen reference once), then write the table; `data`
    None writes the synthetic world into `out`/data."""
    data = data or build_data(out / "data", seed=0, quick=False)
    towers = existing_towers(towers_folder)
    runners = {}
    for steps in steps_list:
        runner = Runner(towers, data, out / f"steps_{steps}", steps, jobs)
        frozen = () if runners else (REFERENCE,)  # nothing to train: evaluated once, with the first budget
        runner.run([(name, 0) for name in (*frozen, *variants)])
        runners[steps] = runner
    first = runners[steps_list[0]]
    reference = {title: first.values(REFERENCE, metric)[0] for title, metric in MEASURES.items()}
    chance = {title: chance_level(first, metric) for title, metric in MEASURES.items()}
    rows = budget_rows(runners, variants, reference)
    table = budget_table(rows, reference, chance)
    write_text_atomically(out / "budget.md", f"# The missed claims' measures by training budget\n\n{table}\n")
    summary = {"rows": rows, "reference": reference, "chance": chance}
    write_text_atomically(out / "budget.json", json.dumps(summary, indent=1) + "\n")
    print(f"\n{table}\n\nWritten to {out / 'budget.md'} and budget.json")
