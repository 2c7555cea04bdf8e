"""What the frozen organism towers must know, measured (the targets of docs/organism.md).

- CLIP, zero-shot with bare class names, frame mean over 8 frames, on held-out *videos* of world v2: colour-shape
  pairs and scenes well above chance; the time-reversal pairs at chance when only frame order tells their sides
  apart (`runs.order_only_report`). (The shape target of the first world is retired: shapes are reported.)
- The same CLIP on the paraphrased copy of those videos' labels: far below the canonical words on the labels a
  frame shows (shapes, pairs, scenes), the gap that the LLM label encoder is there to close. CLIP's captions never
  use a synonym, held-out or not. Over every label the gap is smaller and only reported: most of world v2's labels
  name a motion, which a frame mean misses in any words.
- T5: a synonym's mean-pooled encoder state is nearest its canonical concept for at least 90 % of synonyms, and,
  asked whether a name is of a category, it ranks the names of its members above the other concepts' of its kind
  (AUROC, mean over categories) at 0.90 or more; held-out synonyms and categories included. The same ranking by
  encoder states alone is reported beside it: what the label encoder, which reads encoder states, starts from.
Beside the targets: the frozen organism's zero-shot AUPR per held-out kind for each zero-shot method (class names,
prompt templates, fixed LLM prompts), with chance.

The CLIP numbers come from the demo's own evaluation path (`runs.evaluate_run` on saved zero-shot models), the
T5 numbers from plain transformers (`T5ForConditionalGeneration.from_pretrained`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from transformers import AutoTokenizer, T5ForConditionalGeneration

from ovmlv.modeling_ovmlv.atomic_files import write_text_atomically
from ovmlv.training.eval_reports import markdown_table

from ..runs import HELDOUT, ORDER_ONLY, PARAPHRASED, evaluate_run, save_untrained
from ..tiny_towers import TinyTowers
from ..world import SyntheticConfig, generate_dataset
from ..world_labels import HELDOUT_CATEGORY, HELDOUT_SYNONYM, UNSEEN_COMPOSITION
from .corpus import category_candidates
from .t5_pretraining import category_answer_auroc, category_auroc, synonym_nearness

BASELINE = "class_name"
# The label kinds that CLIP's captions speak of and a single frame shows: where its not knowing synonyms is measured.
FRAME_KINDS = ("shape", "pair", "scene")
ZERO_SHOT = {"class_name": "class names", "templates": "prompt templates", "llm_fixed": "fixed LLM prompts"}
# (column title, evaluation set, label group) of the per-held-out-kind table.
HELDOUT_COLUMNS = (
    ("seen labels", HELDOUT, "seen"),
    ("seen synonyms", PARAPHRASED, "seen"),
    ("(a) unseen compositions", HELDOUT, UNSEEN_COMPOSITION),
    ("(b) held-out synonyms", PARAPHRASED, HELDOUT_SYNONYM),
    ("(c) held-out categories", HELDOUT, HELDOUT_CATEGORY),
    ("(d) order-only", HELDOUT, ORDER_ONLY),
)


@dataclass(frozen=True)
class Target:
    name: str
    rule: str  # as printed
    value: float
    met: bool


def world_concepts(world: SyntheticConfig) -> list[str]:
    return [*world.colours, *world.shapes, *world.motions, *world.scenes]


def aupr(report: dict, group: str, metric: str = "aupr_macro") -> float:
    """NaN where the set has no videos for the group (a toy run's few videos)."""
    return float("nan") if report[group] is None else round(report[group][metric], 4)


def target_rows(
    canonical: dict, paraphrased: dict, nearness: dict, ranking: dict, state_ranking: dict
) -> list[Target]:
    """The targets, from the class-name model's held-out and paraphrased reports and the T5's measures."""
    reversal, reversal_chance = aupr(canonical, ORDER_ONLY), aupr(canonical, ORDER_ONLY, "chance_aupr")
    gap = round(aupr(canonical, "canonical") - aupr(paraphrased, HELDOUT_SYNONYM), 4)
    seen_gap = round(
        sum(aupr(canonical, kind) - aupr(paraphrased, kind) for kind in FRAME_KINDS) / len(FRAME_KINDS), 4
    )
    targets = [
        Target("CLIP colour-shape pairs, AUPR", ">= 0.70", aupr(canonical, "pair"), aupr(canonical, "pair") >= 0.7),
        Target("CLIP scenes, AUPR", ">= 0.95", aupr(canonical, "scene"), aupr(canonical, "scene") >= 0.95),
        Target(
            "CLIP time-reversal pairs, order-only AUPR",
            f"<= chance + 0.05 = {reversal_chance + 0.05:.3f}",
            reversal,
            reversal <= reversal_chance + 0.05,
        ),
        Target("T5 synonyms nearest their concept", ">= 0.90", nearness["fraction"], nearness["fraction"] >= 0.9),
        Target("T5 categories: members ranked first, AUROC", ">= 0.90", ranking["mean"], ranking["mean"] >= 0.9),
        Target(
            "T5 encoder states: category nearest its members, AUROC",
            "reported (the label encoder reads these)",
            state_ranking["mean"],
            True,
        ),
        Target(
            "CLIP: canonical minus synonym AUPR, labels a frame shows (shape, pair, scene; mean)",
            ">= 0.20 (far below)",
            seen_gap,
            seen_gap >= 0.2,
        ),
        Target(
            "CLIP: canonical minus held-out-synonym AUPR, every label",
            "reported (most labels name a motion, which a frame mean cannot see in any words)",
            gap,
            True,
        ),
    ]
    return targets


def measure_targets(
    towers: TinyTowers, out_dir: Path, num_heldout: int, seed: int, methods: tuple[str, ...] = tuple(ZERO_SHOT)
) -> dict:
    """Measure every target on `num_heldout` fresh held-out videos, and the zero-shot `methods` (class names first)
    per held-out kind; writes targets.md and targets.json in `out_dir` and returns what targets.json holds."""
    world = SyntheticConfig(num_train=0, num_val=0, num_heldout=num_heldout, seed=seed)
    data = out_dir / "data"
    generate_dataset(data, world, workers=2, progress=False)
    zero_shot = {}
    for method in methods:
        if not save_untrained(method, towers, out_dir / method):
            raise RuntimeError(f"{method} has parameters to train: it is not a zero-shot baseline")
        zero_shot[method] = evaluate_run(
            out_dir / method, data, out_dir / f"eval_{method}", sets=(HELDOUT, PARAPHRASED)
        )
    canonical, paraphrased = zero_shot[BASELINE][HELDOUT], zero_shot[BASELINE][PARAPHRASED]

    t5 = T5ForConditionalGeneration.from_pretrained(towers.llm)
    t5_tokenizer = AutoTokenizer.from_pretrained(towers.llm)
    nearness = synonym_nearness(t5, t5_tokenizer, world_concepts(world))
    ranking = category_answer_auroc(t5, t5_tokenizer, category_candidates(world))
    state_ranking = category_auroc(t5, t5_tokenizer, category_candidates(world))

    targets = target_rows(canonical, paraphrased, nearness, ranking, state_ranking)
    per_kind = {
        group: {"canonical": aupr(canonical, group)}
        | {"paraphrased": aupr(paraphrased, HELDOUT_SYNONYM if group == "canonical" else group)}
        | {"chance": aupr(canonical, group, "chance_aupr")}
        for group in (
            "canonical",
            "shape",
            "pair",
            "action",
            "count",
            "scene",
            "category",
            "time-reversal",
            ORDER_ONLY,
        )
    }
    per_heldout_kind = {
        ZERO_SHOT[method]: {title: aupr(sets[name], group) for title, name, group in HELDOUT_COLUMNS}
        for method, sets in zero_shot.items()
    }
    per_heldout_kind["chance"] = {
        title: aupr(zero_shot[BASELINE][name], group, "chance_aupr") for title, name, group in HELDOUT_COLUMNS
    }
    result = {
        "num_heldout_videos": num_heldout,
        "seed": seed,
        "targets": [target.__dict__ for target in targets],
        "clip_zero_shot_per_kind": per_kind,
        "zero_shot_per_heldout_kind": per_heldout_kind,
        "t5_synonym_nearness": nearness,
        "t5_category_auroc": ranking,
        "t5_category_state_auroc": state_ranking,
    }
    write_text_atomically(out_dir / "targets.json", json.dumps(result, indent=1) + "\n")
    write_text_atomically(out_dir / "targets.md", targets_markdown(result) + "\n")
    return result


def targets_markdown(result: dict) -> str:
    """The targets table, then CLIP's zero-shot AUPR per label kind with canonical and paraphrased class names."""
    targets = markdown_table(
        ["Target", "Rule", "Measured", "Met"],
        [[t["name"], t["rule"], f"{t['value']:.3f}", "yes" if t["met"] else "NO"] for t in result["targets"]],
    )
    per_kind = markdown_table(
        ["Labels", "Canonical class names", "Paraphrased class names", "Chance"],
        [
            [group, f"{row['canonical']:.3f}", f"{row['paraphrased']:.3f}", f"{row['chance']:.3f}"]
            for group, row in result["clip_zero_shot_per_kind"].items()
        ],
    )
    columns = [title for title, *_ in HELDOUT_COLUMNS]
    heldout = markdown_table(
        ["Zero-shot model", *columns],
        [
            [model, *(f"{row[title]:.3f}" for title in columns)]
            for model, row in result["zero_shot_per_heldout_kind"].items()
        ],
    )
    return "\n\n".join(
        [
            f"Frozen organism towers on {result['num_heldout_videos']} held-out videos (seed {result['seed']}); "
            "CLIP zero-shot: bare class names, frame mean of 8 frames.",
            targets,
            "CLIP zero-shot macro AUPR per label kind, labels in canonical words and in synonyms:",
            per_kind,
            "Frozen organism, zero-shot macro AUPR per held-out kind (chance: the AUPR of a random ranking):",
            heldout,
        ]
    )
