"""What the frozen organism towers must know, measured (the targets of docs/organism.md).

- CLIP, zero-shot with bare class names, frame mean over 8 frames, on held-out *videos* of the world: shapes,
  colour-shape pairs and scenes well above chance; the time-reversal pairs at chance when only frame order
  tells their sides apart (`runs.order_only_report`).
- The same CLIP on the paraphrased copy of those videos' labels (synonyms only; no LLM): far below the canonical
  words, the gap that the LLM label encoder is there to close.
- T5: a synonym's mean-pooled encoder state is nearest its canonical concept for at least 90 % of synonyms.

The CLIP numbers come from the demo's own evaluation path (`runs.evaluate_run` on a saved `class_name` model), the
T5 numbers from plain transformers (`T5ForConditionalGeneration.from_pretrained`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from transformers import AutoTokenizer, T5ForConditionalGeneration

from ovmlv.modeling_ovmlv.atomic_files import write_text_atomically

from ..evaluation_files import markdown_table
from ..runs import HELDOUT, ORDER_ONLY, PARAPHRASED, evaluate_run, save_untrained
from ..synthetic import SyntheticConfig, generate_dataset
from ..tiny_towers import TinyTowers
from .t5_pretraining import synonym_nearness

BASELINE = "class_name"


@dataclass(frozen=True)
class Target:
    name: str
    rule: str  # as printed
    value: float
    met: bool


def world_concepts(world: SyntheticConfig) -> list[str]:
    return [*world.colours, *world.shapes, *world.motions, *world.scenes]


def measure_targets(towers: TinyTowers, out_dir: Path, num_heldout: int, seed: int) -> dict:
    """Measure every target on `num_heldout` fresh held-out videos; writes targets.md and targets.json in `out_dir`
    and returns what targets.json holds."""
    world = SyntheticConfig(num_train=0, num_val=0, num_heldout=num_heldout, seed=seed)
    data = out_dir / "data"
    generate_dataset(data, world, workers=2, progress=False)
    if not save_untrained(BASELINE, towers, out_dir / BASELINE):
        raise RuntimeError(f"{BASELINE} has parameters to train: it is not a zero-shot baseline")
    clip = evaluate_run(out_dir / BASELINE, data, out_dir / "eval", sets=(HELDOUT, PARAPHRASED))
    canonical, paraphrased = clip[HELDOUT], clip[PARAPHRASED]

    t5 = T5ForConditionalGeneration.from_pretrained(towers.llm)
    nearness = synonym_nearness(t5, AutoTokenizer.from_pretrained(towers.llm), world_concepts(world))

    def aupr(report: dict, group: str, metric: str = "aupr_macro") -> float:
        """NaN where the set has no videos for the group (a toy run's few videos)."""
        return float("nan") if report[group] is None else round(report[group][metric], 4)

    reversal, reversal_chance = aupr(canonical, ORDER_ONLY), aupr(canonical, ORDER_ONLY, "chance_aupr")
    gap = round(aupr(canonical, "all") - aupr(paraphrased, "all"), 4)
    targets = [
        Target("CLIP shapes, AUPR", ">= 0.85", aupr(canonical, "shape"), aupr(canonical, "shape") >= 0.85),
        Target("CLIP colour-shape pairs, AUPR", ">= 0.70", aupr(canonical, "pair"), aupr(canonical, "pair") >= 0.7),
        Target("CLIP scenes, AUPR", ">= 0.95", aupr(canonical, "scene"), aupr(canonical, "scene") >= 0.95),
        Target(
            "CLIP time-reversal pairs, order-only AUPR",
            f"<= chance + 0.05 = {reversal_chance + 0.05:.3f}",
            reversal,
            reversal <= reversal_chance + 0.05,
        ),
        Target("T5 synonyms nearest their concept", ">= 0.90", nearness["fraction"], nearness["fraction"] >= 0.9),
        Target("CLIP all labels: canonical minus paraphrased AUPR", ">= 0.20 (far below)", gap, gap >= 0.2),
    ]
    per_kind = {
        group: {"canonical": aupr(canonical, group), "paraphrased": aupr(paraphrased, group)}
        | {"chance": aupr(canonical, group, "chance_aupr")}
        for group in ("all", "shape", "pair", "action", "scene", "time-reversal", ORDER_ONLY, "unseen")
    }
    result = {
        "num_heldout_videos": num_heldout,
        "seed": seed,
        "targets": [target.__dict__ for target in targets],
        "clip_zero_shot_per_kind": per_kind,
        "t5_synonym_nearness": nearness,
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
    return "\n\n".join(
        [
            f"Frozen organism towers on {result['num_heldout_videos']} held-out videos (seed {result['seed']}); "
            "CLIP zero-shot: bare class names, frame mean of 8 frames.",
            targets,
            "CLIP zero-shot macro AUPR per label kind, labels in canonical words and in synonyms:",
            per_kind,
        ]
    )
