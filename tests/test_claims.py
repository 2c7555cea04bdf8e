"""`ovmlv claims`: which runs it makes, how it confirms close comparisons, and how it reads its verdicts.

Training and evaluation are replaced by a table of made-up results; the real runs are `make paper-tables`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ovmlv import cli
from ovmlv.arguments import EXIT_OK, EXIT_USAGE
from ovmlv.organism import budget, claims
from ovmlv.organism.claims import CLAIMS, VARIANTS, Runner
from ovmlv.organism.runs import (
    GROUPS,
    HELDOUT,
    ORDER_ONLY,
    PARAPHRASED,
    RECIPE,
    VAL,
    MethodRun,
    existing_towers,
    order_only_report,
    train_overrides,
)
from ovmlv.training.config import load_config


def fake_results(value: float) -> dict[str, Any]:
    report = {"aupr_macro": value, "peak_f1": value, "chance_aupr": 0.2}
    return {name: dict.fromkeys((*GROUPS, ORDER_ONLY), report) for name in (VAL, HELDOUT, PARAPHRASED)}


@pytest.fixture
def runner(monkeypatch, tmp_path: Path) -> tuple[Runner, list[tuple[str, int]]]:
    """A Runner whose runs score every metric at a value set per variant (0.5 unless `values` says otherwise)."""
    calls = []
    values = {"ovmlv (T=4 parallel, paper)": 0.95, "ovmlv T=4 serial": 0.93, "ovmlv T=0": 0.21}

    def run_variant(variant, towers, data, run_dir, steps, seed, alignments):
        name = next(name for name, known in VARIANTS.items() if known == variant)
        calls.append((name, seed))
        return run_dir / "final", fake_results(values.get(name, 0.5) + 0.001 * seed)

    monkeypatch.setattr(claims, "run_variant", run_variant)
    return Runner(towers=None, data=tmp_path, out=tmp_path, steps=3), calls


def test_variants_that_build_the_same_model_share_one_run() -> None:
    assert VARIANTS["ovmlv (T=4 parallel, paper)"].config_key() == claims.Variant("ovmlv", {}).config_key()
    keys = [variant.config_key() for variant in VARIANTS.values()]
    assert len(set(keys)) == len(keys), "two names for one configuration: one of them measures nothing new"
    every_variant = {name for claim in CLAIMS for name in claim.variants}
    assert every_variant <= set(VARIANTS)
    assert {name for claim in CLAIMS for pair in claim.pairs for name in pair} <= every_variant


def test_each_configuration_runs_once_per_seed(runner) -> None:
    runner, calls = runner
    runner.run([(name, 0) for claim in CLAIMS for name in claim.variants])
    assert len(calls) == len(set(calls)) == len({name for claim in CLAIMS for name in claim.variants})
    runner.run([("ovmlv T=0", 0), ("ovmlv T=0", 1)])
    assert calls[-1] == ("ovmlv T=0", 1) and calls.count(("ovmlv T=0", 0)) == 1
    assert runner.values("ovmlv T=0", claims.ORDER_ONLY_VAL) == [0.21, 0.211]


def test_table_gives_each_claim_a_verdict_and_spreads_over_seeds(runner) -> None:
    runner, _ = runner
    runner.run([(name, seed) for claim in CLAIMS for name in claim.variants for seed in (0,)])
    runner.run([(name, seed) for name in ("ovmlv (T=4 parallel, paper)", "ovmlv T=4 serial") for seed in (1, 2)])
    threshold = {"threshold": 0.3, "per_kind": {"shape": {"f1": 0.5, "peak_f1": 0.6}}, "min_f1": 0.5, "gap": 0.1}
    curve = [{"ratio": 0.0, "seen_aupr": 0.9, "unseen_aupr": 0.4}]
    table = claims.claims_table(runner, threshold, curve)
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines() if line.startswith("| ")}
    motion = rows["the temporal branch adds motion (Tab. 3a)"]
    assert "ovmlv T=0: 0.210" in motion and motion.rstrip(" |").endswith("met")  # 0.95 ≥ 0.9; 0.21 ≤ 0.2 + 0.05
    assert "ovmlv T=4 serial: 0.931 ± 0.001 (3 seeds)" in motion
    assert rows["frozen CLIP is blind to motion (§1)"].rstrip(" |").endswith("**missed**")  # 0.5 > 0.2 + 0.05
    assert "**missed** (gap 0.100)" in rows["one threshold serves actions and entities (§4.6)"]


def test_a_finished_run_is_not_run_again_and_an_interrupted_one_starts_over(monkeypatch, tmp_path: Path) -> None:
    calls = []

    def method_run(method, towers, data, run_dir, steps, seed, model_overrides=None, recipe_overrides=None):
        calls.append(run_dir)
        assert not run_dir.exists(), "an interrupted run's folder is cleared first"
        assert recipe_overrides["label_alignment.cache_dir"] == str(tmp_path / "alignments")  # shared by variants
        (run_dir / "final").mkdir(parents=True)
        return MethodRun(method, run_dir / "final", steps)

    monkeypatch.setattr(claims, "method_run", method_run)
    monkeypatch.setattr(claims, "evaluate_run", lambda folder, data, out, sets: fake_results(0.7))
    monkeypatch.setattr(claims, "set_reports", lambda eval_dir, data, sets: fake_results(0.7))  # saved scores
    variant, run_dir = VARIANTS["ovmlv T=0"], tmp_path / "run"
    (run_dir / "final").mkdir(parents=True)  # killed before its result was written
    first = claims.run_variant(variant, None, tmp_path, run_dir, 5, 0, tmp_path / "alignments")
    assert (
        claims.run_variant(variant, None, tmp_path, run_dir, 5, 0, tmp_path / "alignments")
        == first
        == (run_dir / "final", fake_results(0.7))
    )
    assert len(calls) == 1
    alignments = tmp_path / "alignments"
    claims.run_variant(variant, None, tmp_path, run_dir, 6, 0, alignments)  # another budget is another run
    assert len(calls) == 2
    monkeypatch.setattr(claims, "code_sha256", lambda: "another version of the library")
    claims.run_variant(variant, None, tmp_path, run_dir, 6, 0, alignments)  # and so is another version of the code
    assert len(calls) == 3


def test_the_code_fingerprint_changes_with_any_source_file_of_the_library(monkeypatch, tmp_path: Path) -> None:
    assert all((claims.REPO / folder / "__init__.py").is_file() for folder in claims.CODE_FOLDERS)
    for folder in claims.CODE_FOLDERS:
        (tmp_path / folder / "inner").mkdir(parents=True)
        (tmp_path / folder / "inner" / "module.py").write_text("VALUE = 1\n")
    monkeypatch.setattr(claims, "REPO", tmp_path)
    before = claims.code_sha256()
    (tmp_path / "README.md").write_text("not code")
    assert claims.code_sha256() == before
    (tmp_path / claims.CODE_FOLDERS[-1] / "inner" / "module.py").write_text("VALUE = 2\n")
    assert claims.code_sha256() != before


def test_the_llm_claim_needs_all_three_margins() -> None:
    """#22: the paper's model ≥ frozen class names + 0.10, and not below fixed LLM prompts or CoOp."""
    base = {claims.FROZEN: 0.12, "frozen CLIP, fixed LLM prompts": 0.14, "CoOp": 0.13}
    assert claims.llm_beats_baselines(base | {claims.PAPER: 0.221}, chance=0.05)
    assert not claims.llm_beats_baselines(base | {claims.PAPER: 0.219}, chance=0.05)  # short of + 0.10
    assert not claims.llm_beats_baselines(base | {"CoOp": 0.25, claims.PAPER: 0.24}, chance=0.05)  # below CoOp


def test_a_variant_trains_with_its_recipe_options(tmp_path: Path) -> None:
    """The order path's gate rates and the weight averaging reach the trainer's configuration."""
    variant = VARIANTS["ovmlv, SWA of the trained weights (Open-VCLIP++)"]
    towers = existing_towers()
    overrides = train_overrides(
        "ovmlv", towers, tmp_path, tmp_path / "run", 4, 0, variant.overrides, recipe_overrides=variant.recipe
    )
    assert load_config(RECIPE, overrides).optimizer.weight_averaging == "swa"
    order = VARIANTS["ovmlv T=4, order path (docs/design.md §4.2)"]
    config = load_config(
        RECIPE, train_overrides(order.method, towers, tmp_path, tmp_path, 4, 0, recipe_overrides=order.recipe)
    )
    assert (config.optimizer.gate_lr_scale, config.optimizer.label_gate_lr_scale) == (50.0, 1.0)


def test_order_only_counts_only_videos_that_show_one_side_of_a_pair() -> None:
    """Left-only, right-only, both and neither videos: a scorer that sees "moving" but not its direction is at
    chance, the right direction scores 1, and videos with both sides or neither do not count."""
    labels = ["moving left", "heading west", "moving right", "red star"]
    pairs = [({"moving left", "heading west"}, {"moving right"})]
    left, right = np.array([1, 1, 1, 0, 0, 0, 1, 0]), np.array([0, 0, 0, 1, 1, 1, 1, 0])
    targets = np.stack([left, left, right, np.ones(8)], axis=1)
    motion = left | right
    blind = np.stack([motion, motion, motion, np.zeros(8)], axis=1) + 0.01 * np.arange(8)[:, None]
    report = order_only_report(targets, blind, labels, pairs)
    assert report["videos"] == 6 and 0.5 < report["chance_aupr"] < 0.8  # 3 of 6: random AP lies above 0.5
    assert report["aupr_macro"] < 0.75  # the same score for both sides: only the tiny ramp orders them
    sighted = np.stack([left, left, right, np.zeros(8)], axis=1) + 0.0
    sighted[6] = [0.0, 0.0, 0.0, 0.0]  # a both-sides video scored as neither: excluded, so it cannot hurt
    assert order_only_report(targets, sighted, labels, pairs)["aupr_macro"] == 1.0
    assert order_only_report(targets, sighted, labels, [({"growing"}, {"shrinking"})]) is None


def test_close_comparisons_are_confirmed_within_the_run_budget(runner) -> None:
    runner, _ = runner
    runner.run([(name, 0) for claim in CLAIMS for name in claim.variants])
    paper_vs_serial = ("ovmlv (T=4 parallel, paper)", "ovmlv T=4 serial")  # 0.95 vs 0.93: close
    regulariser = ("regulariser 1e-6, consistency (paper K.2)", "regulariser off")  # 0.5 vs 0.5
    form = ("regulariser 0.5, task loss (default)", "regulariser 0.5, consistency")
    assert claims.close_comparisons(runner, None) == ([paper_vs_serial, regulariser, form], [])
    assert claims.close_comparisons(runner, 4) == ([paper_vs_serial], [regulariser, form])  # 4 new runs each
    assert claims.close_comparisons(runner, 0) == ([], [paper_vs_serial, regulariser, form])


def test_budget_reports_each_variant_per_budget_beside_the_frozen_reference(monkeypatch, tmp_path: Path) -> None:
    """`ovmlv budget`: one row per (variant, budget), each measure beside the untrained reference's."""

    def run_variant(variant, towers, data, run_dir, steps, seed, alignments):
        name = next(name for name, known in VARIANTS.items() if known == variant)
        return run_dir / "final", fake_results(0.3 if name == budget.REFERENCE else 0.4 + steps / 1000)

    monkeypatch.setattr(claims, "run_variant", run_variant)
    monkeypatch.setattr(budget, "existing_towers", lambda folder: None)
    argv = ["budget", "--out", str(tmp_path / "out"), "--data", str(tmp_path), "--steps", "100", "10"]
    assert cli.main([*argv, "--variants", "ovmlv T=0"]) == EXIT_OK
    rows = json.loads((tmp_path / "out" / "budget.json").read_text(encoding="utf-8"))["rows"]
    assert [(row["variant"], row["steps"]) for row in rows] == [("ovmlv T=0", 10), ("ovmlv T=0", 100)]
    assert rows[1]["values"]["order-only (val)"] == pytest.approx(0.5)
    assert rows[1]["minus_reference"]["order-only (val)"] == pytest.approx(0.2)
    table = (tmp_path / "out" / "budget.md").read_text(encoding="utf-8")
    assert "| ovmlv T=0 | 10 | 0.410 (+0.110) |" in table and "| chance | — | 0.200 |" in table
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*argv, "--variants", "no such variant"])
    assert exit_info.value.code == EXIT_USAGE


@pytest.mark.parametrize(
    "options, extra_runs",
    [
        ([], None),
        (["--extra-runs", "4"], 4),
        (["--no-extra-seeds"], 0),
        (["--extra-runs", "4", "--no-extra-seeds"], 0),
    ],
)
def test_the_command_calls_measure_claims_with_its_options(monkeypatch, tmp_path: Path, options, extra_runs) -> None:
    """`--no-extra-seeds` is a run budget of 0 extra runs; every other option is passed as given."""
    calls = []
    monkeypatch.setattr(claims, "measure_claims", lambda out, **options: calls.append((out, options)))
    argv = ["claims", "--out", str(tmp_path), "--steps", "7", "--data", str(tmp_path / "data"), "--jobs", "2"]
    assert cli.main([*argv, "--towers", str(tmp_path / "towers"), *options]) == EXIT_OK
    assert calls == [
        (
            tmp_path,
            dict(towers_dir=tmp_path / "towers", data=tmp_path / "data", steps=7, jobs=2, extra_runs=extra_runs),
        )
    ]
