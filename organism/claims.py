"""`ovmlv claims`: the paper's claims measured on the model organism, one row per claim with its target.

    ovmlv claims --out outputs/claims [--steps N] [--data DIR] [--towers DIR]

Every variant is trained with the same recipe (`training/configs/synthetic_tiny.yaml`), data, step budget and seed
through `accelerate launch`, or evaluated as built when it has nothing to train, then scored on the organism's three
sets (val: closed vocabulary; held-out: every label, the unseen ones included; paraphrased: the held-out videos with
every label written in synonyms). A comparison whose two sides differ by less than `CLOSE` is run again with two
more seeds and reported as mean ± standard deviation (within `--extra-runs`; the table names any left at one seed).
Writes `--out`/claims.md (the README's table) and claims.json.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import shutil
import statistics
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ovmlv.modeling_ovmlv import OvmlvConfig
from ovmlv.modeling_ovmlv.atomic_files import write_text_atomically
from ovmlv.modeling_ovmlv.method_presets import method_overrides
from ovmlv.training.eval_reports import markdown_table
from ovmlv.training.metrics import multilabel_report

from .harness_defaults import ORGANISM_TOWERS, REPO, default_steps
from .runs import (
    HELDOUT,
    LABEL_KINDS,
    ORDER_ONLY,
    PARAPHRASED,
    RECIPE,
    VAL,
    announce,
    build_data,
    evaluate_run,
    existing_towers,
    label_groups,
    method_run,
    set_reports,
)
from .tiny_towers import TinyTowers
from .world_labels import HELDOUT_CATEGORY, HELDOUT_SYNONYM, UNSEEN_COMPOSITION

CLOSE = 0.05  # a difference under this is confirmed over three seeds
EXTRA_SEEDS = (1, 2)
PATCH_RATIOS = (0.0, 0.25, 0.5, 0.75, 1.0)
SETS = (VAL, HELDOUT, PARAPHRASED)
RESULT_FILE = "claims_run.json"
CODE_FOLDERS = ("modeling_ovmlv", "processing", "training", "organism")  # what a run's result depends on
PAPER = "ovmlv (T=4 parallel, paper)"  # the default model, which every claim about "the trained model" reads
FROZEN = "frozen CLIP, class names"  # its zero-shot start


@dataclass(frozen=True)
class Variant:
    """A model configuration: a named method's preset with `overrides` on top (method None: the fields alone)."""

    method: str | None
    overrides: dict[str, Any] = field(default_factory=dict)
    recipe: dict[str, Any] = field(default_factory=dict)  # the recipe's own options: {"optimizer.gate_lr_scale": 50}

    def config_key(self) -> str:
        """The configuration it builds and how it trains, as text: variants that train the same model the same way
        share one run."""
        model = method_overrides(self.method, **self.overrides)
        return json.dumps({"model": model, "recipe": self.recipe} if self.recipe else model, sort_keys=True)


VARIANTS: dict[str, Variant] = {
    FROZEN: Variant("class_name"),
    "frozen CLIP, templates": Variant("templates"),
    "frozen CLIP, fixed LLM prompts": Variant("llm_fixed"),
    PAPER: Variant("ovmlv"),
    "ovmlv, the paper's start (no zero-start gates)": Variant("ovmlv", {"start_at_zero_shot": False}),
    "ovmlv T=0": Variant("ovmlv_no_temporal"),
    "ovmlv T=4 serial": Variant("ovmlv", {"temporal_mode": "serial"}),
    "ovmlv T=4, branch-frame pooling": Variant("ovmlv", {"temporal_pooling": "branch_frames"}),
    "ovmlv T=4, no direction head (docs/design.md §4.6)": Variant("ovmlv", {"direction_dims": 0}),
    "ovmlv T=4, order path (docs/design.md §4.2)": Variant(
        "ovmlv",
        {"temporal_frame_weights": True, "temporal_position_std": 1.0},
        {"optimizer.gate_lr_scale": 50.0, "optimizer.label_gate_lr_scale": 1.0},
    ),
    "ovmlv, SWA of the trained weights (Open-VCLIP++)": Variant("ovmlv", {}, {"optimizer.weight_averaging": "swa"}),
    "ovmlv, EMA of the trained weights": Variant("ovmlv", {}, {"optimizer.weight_averaging": "ema"}),
    "branch + class names": Variant(None, {"label_encoder": "class_name", "temporal_layers": 4}),
    "branch + templates": Variant(None, {"label_encoder": "templates", "temporal_layers": 4}),
    "branch + fixed LLM prompts": Variant(None, {"label_encoder": "llm_fixed", "temporal_layers": 4}),
    "no prefixes (instruction only)": Variant("ovmlv", {"llm_adapter": "none"}),
    "frozen prefixes": Variant("ovmlv", {"freeze_prefixes": True}),
    "linear connector": Variant("ovmlv", {"connector": "linear"}),
    "MLP connector": Variant("ovmlv", {"connector": "mlp"}),
    "LoRA instead of prefixes": Variant("ovmlv", {"llm_adapter": "lora"}),
    "regulariser off": Variant("ovmlv", {"weight_interpolation_loss_weight": 0.0}),
    "regulariser 1e-6, consistency (paper K.2)": Variant(
        "ovmlv", {"weight_interpolation_loss_weight": 1e-6, "weight_interpolation_form": "consistency"}
    ),
    "regulariser 0.5, task loss (default)": Variant(
        "ovmlv", {"weight_interpolation_loss_weight": 0.5, "weight_interpolation_form": "task_loss"}
    ),
    "regulariser 0.5, consistency": Variant(
        "ovmlv", {"weight_interpolation_loss_weight": 0.5, "weight_interpolation_form": "consistency"}
    ),
    "vision backbone unfrozen": Variant("ovmlv", {"freeze_vision_backbone": False}),
    "vision backbone unfrozen, SWA": Variant(
        "ovmlv", {"freeze_vision_backbone": False}, {"optimizer.weight_averaging": "swa"}
    ),
    "CoOp": Variant("coop"),
    "CoOp, 16 random context vectors": Variant("coop", {"context_length": 16, "context_init": None}),
    "DualCoOp": Variant("dualcoop"),
    "ViFi-CLIP": Variant("vifi_clip"),
    "ViLT-CLIP": Variant("vilt_clip"),
}
# Where a claim reads its number: (evaluation set, label group, metric).
ORDER_ONLY_VAL = (VAL, ORDER_ONLY, "aupr_macro")
ALL_SEEN = (VAL, "all", "aupr_macro")
UNSEEN = (HELDOUT, "unseen", "aupr_macro")
UNSEEN_COMPOSITIONS = (HELDOUT, UNSEEN_COMPOSITION, "aupr_macro")
HELDOUT_SYNONYMS = (PARAPHRASED, HELDOUT_SYNONYM, "aupr_macro")
HELDOUT_CATEGORIES = (HELDOUT, HELDOUT_CATEGORY, "aupr_macro")
PARAPHRASED_ALL = (PARAPHRASED, "all", "aupr_macro")


@dataclass
class Claim:
    """A row of the table: the paper's claim, the variants it compares, where it reads them, and its target as a
    test of the measured values {variant: mean} (with the chance level where it matters)."""

    claim: str
    variants: tuple[str, ...]
    metric: tuple[str, str, str]
    target: str
    met: Callable[[dict[str, float], float], bool]
    pairs: tuple[tuple[str, str], ...] = ()  # comparisons confirmed over three seeds when close


LLM_BASELINES = (FROZEN, "frozen CLIP, fixed LLM prompts", "CoOp")


def llm_beats_baselines(v: dict[str, float], chance: float) -> bool:
    """#22's LLM claim: the paper's model ≥ frozen class names + 0.10, and ≥ fixed LLM prompts and CoOp."""
    return v[PAPER] >= v[FROZEN] + 0.10 and v[PAPER] >= max(v[name] for name in LLM_BASELINES[1:])


CLAIMS = (
    Claim(
        "frozen CLIP is blind to motion (§1)",
        (FROZEN,),
        ORDER_ONLY_VAL,
        "order-only AUPR ≤ chance + 0.05",
        lambda v, chance: v[FROZEN] <= chance + 0.05,
    ),
    Claim(
        "the temporal branch adds motion (Tab. 3a)",
        (
            "ovmlv T=0",
            PAPER,
            "ovmlv T=4 serial",
            "ovmlv T=4, branch-frame pooling",
            "ovmlv T=4, no direction head (docs/design.md §4.6)",
            "ovmlv T=4, order path (docs/design.md §4.2)",
        ),
        ORDER_ONLY_VAL,
        "T=4 order-only AUPR ≥ 0.80; T=0 ≤ chance + 0.05",
        lambda v, chance: v[PAPER] >= 0.80 and v["ovmlv T=0"] <= chance + 0.05,
        ((PAPER, "ovmlv T=4 serial"),),
    ),
    Claim(
        "training beats its zero-shot start: seen labels",
        (
            FROZEN,
            PAPER,
            "ovmlv, SWA of the trained weights (Open-VCLIP++)",
            "ovmlv T=4, order path (docs/design.md §4.2)",
        ),
        ALL_SEEN,
        "trained ≥ frozen class names + 0.05",
        lambda v, chance: v[PAPER] >= v[FROZEN] + 0.05,
        ((PAPER, FROZEN),),
    ),
    Claim(
        "training keeps its zero-shot start: unseen compositions",
        (FROZEN, PAPER, "ovmlv, SWA of the trained weights (Open-VCLIP++)"),
        UNSEEN_COMPOSITIONS,
        "trained ≥ frozen class names − 0.01",
        lambda v, chance: v[PAPER] >= v[FROZEN] - 0.01,
        ((PAPER, FROZEN),),
    ),
    Claim(
        "LLM prompting helps held-out synonyms (Tab. 2, 4)",
        (*LLM_BASELINES, PAPER),
        HELDOUT_SYNONYMS,
        "llm_prompted ≥ class names + 0.10, ≥ fixed LLM prompts, ≥ CoOp",
        llm_beats_baselines,
        tuple((PAPER, name) for name in LLM_BASELINES[1:]),
    ),
    Claim(
        "LLM prompting helps held-out categories (Tab. 2, 4)",
        (*LLM_BASELINES, PAPER),
        HELDOUT_CATEGORIES,
        "llm_prompted ≥ class names + 0.10, ≥ fixed LLM prompts, ≥ CoOp",
        llm_beats_baselines,
        tuple((PAPER, name) for name in LLM_BASELINES[1:]),
    ),
    Claim(
        "learnable prefixes + prompt transformer matter (Tab. 4, 10)",
        (
            PAPER,
            "no prefixes (instruction only)",
            "frozen prefixes",
            "linear connector",
            "MLP connector",
            "LoRA instead of prefixes",
        ),
        PARAPHRASED_ALL,
        "the paper's form best, or explained",
        lambda v, chance: v[PAPER] >= max(v.values()),
        tuple(
            (PAPER, other)
            for other in ("no prefixes (instruction only)", "frozen prefixes", "linear connector", "MLP connector")
        ),
    ),
    Claim(
        "regularised fine-tuning keeps zero-shot skill (Tab. 3b)",
        (
            FROZEN,
            "regulariser off",
            "regulariser 1e-6, consistency (paper K.2)",
            "regulariser 0.5, task loss (default)",
            "regulariser 0.5, consistency",
            "vision backbone unfrozen",
        ),
        UNSEEN,
        "unseen-label AUPR ≥ frozen zero-shot − 0.02 (paper recipe); visibly lower unfrozen",
        lambda v, chance: (
            v["regulariser 1e-6, consistency (paper K.2)"] >= v[FROZEN] - 0.02
            and v["vision backbone unfrozen"] < v["regulariser 1e-6, consistency (paper K.2)"] - CLOSE
        ),
        (
            ("regulariser 1e-6, consistency (paper K.2)", "regulariser off"),
            ("regulariser 0.5, task loss (default)", "regulariser 0.5, consistency"),
        ),
    ),
    Claim(
        "weight averaging keeps zero-shot skill (Open-VCLIP++)",
        (
            PAPER,
            "ovmlv, SWA of the trained weights (Open-VCLIP++)",
            "ovmlv, EMA of the trained weights",
            "vision backbone unfrozen",
            "vision backbone unfrozen, SWA",
        ),
        UNSEEN,
        "SWA ≥ no averaging on unseen labels",
        lambda v, chance: v["ovmlv, SWA of the trained weights (Open-VCLIP++)"] >= v[PAPER],
        (("ovmlv, SWA of the trained weights (Open-VCLIP++)", PAPER),),
    ),
    Claim(
        "baselines (Tab. 1-2)",
        ("CoOp", "DualCoOp", "ViFi-CLIP", "ViLT-CLIP", PAPER),
        ALL_SEEN,
        "ovmlv best on all-labels AUPR",
        lambda v, chance: v[PAPER] >= max(v.values()),
        tuple((PAPER, other) for other in ("CoOp", "DualCoOp", "ViFi-CLIP", "ViLT-CLIP")),
    ),
)


def read(results: dict[str, Any], metric: tuple[str, str, str]) -> float:
    set_name, group, name = metric
    report = results[set_name][group]
    return float("nan") if report is None else float(report[name])


def code_sha256() -> str:
    """SHA-256 of the library's Python source that a run goes through (`CODE_FOLDERS`): a finished run is reused only
    by the code that made it, so a table never mixes runs of two versions."""
    digest = hashlib.sha256()
    for path in sorted(path for folder in CODE_FOLDERS for path in (REPO / folder).rglob("*.py")):
        digest.update(f"{path.relative_to(REPO)}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def run_variant(
    variant: Variant, towers: TinyTowers, data: Path, run_dir: Path, steps: int, seed: int, alignments: Path
) -> tuple[Path, dict[str, Any]]:
    """Train (or build) one variant and evaluate it on `SETS`: (its model folder, {set: {group: report}}).
    Variants whose label path is the same share its text-only alignment through the cache folder `alignments`.

    A finished run leaves `RESULT_FILE` in its folder (written last, atomically) and is not run again while its
    variant, budget, seed, recipe file and library code stay the same: a killed `ovmlv claims` continues where it
    stopped, and its reports are read again from the saved scores. A run folder without it is an interrupted run;
    it starts over.
    """
    done = run_dir / RESULT_FILE
    recipe_sha256 = hashlib.sha256(RECIPE.read_bytes()).hexdigest()
    record = {"variant": variant.config_key(), "steps": steps, "seed": seed, "recipe_sha256": recipe_sha256}
    record["code_sha256"] = code_sha256()
    if done.is_file():
        saved = json.loads(done.read_text(encoding="utf-8"))
        if saved == record | {"folder": saved.get("folder")}:
            return run_dir / saved["folder"], set_reports(run_dir / "eval", data, list(SETS))
    if run_dir.exists():
        shutil.rmtree(run_dir)
    recipe_overrides = {"label_alignment.cache_dir": str(alignments.resolve()), **variant.recipe}
    run = method_run(variant.method, towers, data, run_dir, steps, seed, variant.overrides, recipe_overrides)
    results = evaluate_run(run.folder, data, run_dir / "eval", sets=SETS)
    write_text_atomically(done, json.dumps(record | {"folder": run.folder.name}, indent=1) + "\n")
    return run.folder, results


class Runner:
    """Runs each configuration once per seed (variants building the same model share it), `jobs` at a time, and
    keeps the results."""

    def __init__(self, towers: TinyTowers, data: Path, out: Path, steps: int, jobs: int = 1) -> None:
        self.towers, self.data, self.out, self.steps, self.jobs = towers, data, out, steps, jobs
        self.results: dict[tuple[str, int], dict[str, Any]] = {}  # (config key, seed) -> evaluation results
        self.folders: dict[tuple[str, int], Path] = {}

    def run(self, runs: list[tuple[str, int]]) -> None:
        """Run every (variant name, seed) not run yet; with `jobs` > 1 in that many processes at once (each
        training subprocess and evaluation gets its share of this process's threads)."""
        pending: dict[tuple[str, int], tuple[str, int]] = {}
        for name, seed in runs:
            key = (VARIANTS[name].config_key(), seed)
            if key not in self.results:
                pending.setdefault(key, (name, seed))
        arguments = {
            key: (
                VARIANTS[name],
                self.towers,
                self.data,
                self.out / "runs" / f"{slug(name)}_seed{seed}",
                self.steps,
                seed,
                self.out / "alignments",
            )
            for key, (name, seed) in pending.items()
        }
        if self.jobs == 1:
            for key, (name, seed) in pending.items():
                with announce(f"{name} (seed {seed}): training {self.steps} steps if it has parameters, evaluating"):
                    self.folders[key], self.results[key] = run_variant(*arguments[key])
            return
        print(
            f"{len(pending)} runs, {self.jobs} at a time: {', '.join(f'{n} (seed {s})' for n, s in pending.values())}"
        )
        share = max(1, torch.get_num_threads() // self.jobs)  # each run's threads (`runs.run_threads`)
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(self.jobs, spawn, initializer=torch.set_num_threads, initargs=(share,)) as pool:
            futures = {pool.submit(run_variant, *arguments[key]): key for key in pending}
            for done, future in enumerate(as_completed(futures), start=1):
                key = futures[future]
                self.folders[key], self.results[key] = future.result()
                name, seed = pending[key]
                print(f"[{done}/{len(pending)}] done: {name} (seed {seed})", flush=True)

    def values(self, name: str, metric: tuple[str, str, str]) -> list[float]:
        """The metric of every seed run so far of `name`'s configuration."""
        config = VARIANTS[name].config_key()
        return [read(results, metric) for (key, _), results in sorted(self.results.items()) if key == config]

    def folder(self, name: str, seed: int = 0) -> Path:
        return self.folders[(VARIANTS[name].config_key(), seed)]


def close_comparisons(runner: Runner, run_budget: int | None) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The compared pairs whose seed-0 values differ by less than `CLOSE`: (those to confirm with `EXTRA_SEEDS`,
    those left at one seed because the new runs they need exceed `run_budget`; None: no limit). Pairs are taken
    one per claim in turn (each claim's first pair, then each claim's second, ...), so a budget spreads over claims.
    """
    rounds = max(len(claim.pairs) for claim in CLAIMS)
    ordered = [(claim, claim.pairs[i]) for i in range(rounds) for claim in CLAIMS if i < len(claim.pairs)]
    confirmed, unconfirmed, planned = [], [], set()
    for claim, pair in ordered:
        first, second = (runner.values(name, claim.metric)[0] for name in pair)
        if abs(first - second) >= CLOSE:
            continue
        new = {(VARIANTS[name].config_key(), seed) for name in pair for seed in EXTRA_SEEDS} - planned
        new -= set(runner.results)
        if run_budget is None or len(planned) + len(new) <= run_budget:
            confirmed.append(pair)
            planned |= new
        else:
            unconfirmed.append(pair)
    return confirmed, unconfirmed


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def formatted(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f} ({len(values)} seeds)"


def chance_level(runner: Runner, metric: tuple[str, str, str]) -> float:
    """The macro AUPR of a random ranking on the metric's set and group (any run's labels give it)."""
    set_name, group, _ = metric
    results = next(iter(runner.results.values()))
    return float(results[set_name][group]["chance_aupr"])


def threshold_row(runner: Runner, name: str) -> dict[str, Any]:
    """One threshold for every kind (§4.6): F1 per label kind at the model's deployment threshold (calibrated on
    val) against each kind's own best threshold."""
    eval_dir = runner.folder(name).parent / "eval"  # run_dir/final or run_dir/untrained, and run_dir/eval
    threshold = json.loads((eval_dir / "report.json").read_text(encoding="utf-8"))["deployment"]["threshold"]
    saved = np.load(eval_dir / "scores" / f"{VAL}.npz")
    labels = saved["labels"].tolist()
    groups = label_groups(runner.data)
    per_kind = {}
    for kind in LABEL_KINDS:
        columns = [i for i, label in enumerate(labels) if label in groups[kind]]
        if columns:
            report = multilabel_report(saved["targets"][:, columns], saved["scores"][:, columns], threshold)
            per_kind[kind] = {"f1": report["f1"], "peak_f1": report["peak_f1"]}
    gap = max(kind["peak_f1"] - kind["f1"] for kind in per_kind.values())
    return {
        "threshold": threshold,
        "per_kind": per_kind,
        "min_f1": min(k["f1"] for k in per_kind.values()),
        "gap": gap,
    }


def patching_curve(runner: Runner, name: str) -> list[dict[str, float]]:
    """Test-time patching (Open-VCLIP): the trained branch moved toward CLIP by each ratio; seen-label AUPR (val)
    against unseen-label AUPR (held-out)."""
    curve = []
    for ratio in PATCH_RATIOS:
        folder = runner.out / "patching" / f"ratio_{ratio:.2f}"
        done = folder / RESULT_FILE
        if done.is_file() and json.loads(done.read_text(encoding="utf-8"))["source"] == str(runner.folder(name)):
            results = set_reports(folder / "eval", runner.data, [VAL, HELDOUT])
        else:
            if folder.exists():
                shutil.rmtree(folder)
            shutil.copytree(runner.folder(name), folder)
            config = OvmlvConfig.from_pretrained(folder)
            config.deployment_config.temporal_patch_ratio = ratio
            write_text_atomically(folder / "config.json", config.to_json_string())
            with announce(f"test-time patching, ratio {ratio}"):
                results = evaluate_run(folder, runner.data, folder / "eval", sets=(VAL, HELDOUT))
            write_text_atomically(done, json.dumps({"source": str(runner.folder(name))}) + "\n")
        curve.append({"ratio": ratio, "seen_aupr": read(results, ALL_SEEN), "unseen_aupr": read(results, UNSEEN)})
    return curve


def claims_table(
    runner: Runner,
    threshold: dict[str, Any],
    curve: list[dict[str, float]],
    unconfirmed: list[tuple[str, str]] = (),
) -> str:
    rows = []
    for claim in CLAIMS:
        means = {name: statistics.mean(runner.values(name, claim.metric)) for name in claim.variants}
        chance = chance_level(runner, claim.metric)
        measured = "; ".join(f"{name}: {formatted(runner.values(name, claim.metric))}" for name in claim.variants)
        set_name, group, _ = claim.metric
        rows.append(
            [
                claim.claim,
                f"{set_name} / {group} (chance {chance:.3f})",
                measured,
                claim.target,
                "met" if claim.met(means, chance) else "**missed**",
            ]
        )
    kinds = "; ".join(
        f"{kind}: {v['f1']:.3f} (own best {v['peak_f1']:.3f})" for kind, v in threshold["per_kind"].items()
    )
    rows.append(
        [
            "one threshold serves actions and entities (§4.6)",
            f"val, F1 at the deployment threshold {threshold['threshold']:.3f}",
            f"min F1 {threshold['min_f1']:.3f}; {kinds}",
            "gap to per-kind thresholds ≤ 0.05",
            "met" if threshold["gap"] <= 0.05 else f"**missed** (gap {threshold['gap']:.3f})",
        ]
    )
    curve_rows = [[f"{p['ratio']:.2f}", f"{p['seen_aupr']:.3f}", f"{p['unseen_aupr']:.3f}"] for p in curve]
    return "\n\n".join(
        [
            f"# The paper's claims on the model organism ({runner.steps} training steps a run)",
            markdown_table(["claim (paper)", "measured on", "measured", "target", "verdict"], rows),
            (
                "Comparisons closer than 0.05 at seed 0 left at one seed (the run budget, `--extra-runs`): "
                + "; ".join(f"{a} vs {b}" for a, b in unconfirmed)
            )
            if unconfirmed
            else f"Every comparison closer than {CLOSE} at seed 0 is reported over 3 seeds.",
            "## Test-time patching (the trained branch moved toward CLIP)",
            markdown_table(["ratio", "seen-label AUPR (val)", "unseen-label AUPR (held-out)"], curve_rows),
        ]
    )


def measure_claims(
    out: Path,
    *,
    towers_dir: Path = ORGANISM_TOWERS,
    data: Path | None = None,
    steps: int | None = None,
    jobs: int = 1,
    extra_runs: int | None = None,
) -> None:
    """Measure every claim into `out` with the towers in `towers_dir`, on the world in `data` (None: write one),
    training `steps` steps a run (None: the recipe's), `jobs` runs at once; at most `extra_runs` more runs confirm
    close comparisons over three seeds (None: all of them; 0: one seed only)."""
    data = data or build_data(out / "data", seed=0, quick=False)
    runner = Runner(existing_towers(towers_dir), data, out, steps or default_steps(quick=False), jobs)
    runner.run([(name, 0) for claim in CLAIMS for name in claim.variants])
    confirmed, unconfirmed = close_comparisons(runner, extra_runs)
    runner.run([(name, seed) for pair in confirmed for name in pair for seed in EXTRA_SEEDS])
    threshold = threshold_row(runner, PAPER)
    curve = patching_curve(runner, PAPER)
    table = claims_table(runner, threshold, curve, unconfirmed)
    write_text_atomically(out / "claims.md", table + "\n")
    measured = {
        name: {
            str(seed): runner.results[(VARIANTS[name].config_key(), seed)]
            for seed in (0, *EXTRA_SEEDS)
            if (VARIANTS[name].config_key(), seed) in runner.results
        }
        for name in VARIANTS
        if (VARIANTS[name].config_key(), 0) in runner.results
    }
    summary = {"steps": runner.steps, "variants": measured, "threshold": threshold, "patching": curve}
    summary["close_at_one_seed"] = [list(pair) for pair in unconfirmed]
    write_text_atomically(out / "claims.json", json.dumps(summary, indent=1, default=float) + "\n")
    print(f"\n{table}\n\nWritten to {out / 'claims.md'} and claims.json")
