"""The embedded demo and the comparison runner end to end at a tiny budget (`--quick`) on the committed organism
towers: every step runs, training goes through `accelerate launch`, the tables hold the numbers `training.evaluate`
reports, and the export loads and classifies held-out videos beside their true labels."""

import contextlib
import io
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from ovmlv.arguments import EXIT_OK
from ovmlv.cli import main
from ovmlv.organism import compare, demo
from ovmlv.organism.harness_defaults import QUICK_STEPS, default_steps
from ovmlv.organism.runs import (
    GROUPS,
    HELDOUT,
    LABEL_KINDS,
    ORDER_ONLY,
    PARAPHRASED,
    QUICK_DATA,
    VAL,
    existing_towers,
    finished_run,
    recipe,
    run_threads,
    train_overrides,
)
from ovmlv.organism.world import SyntheticConfig
from ovmlv.training.metrics import random_ranking_precision
from tests.process_state import reset_accelerate_state, torch_threads


@pytest.fixture(autouse=True, scope="module")
def _leave_no_state():
    """Evaluation builds an Accelerator and sets torch's thread count in this process; undo both afterwards."""
    with torch_threads():
        yield
    reset_accelerate_state()


def run(command: str, *argv) -> str:
    """Run `ovmlv COMMAND ...` and return what it printed (the training subprocess prints to the real stdout)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main([command, *(str(arg) for arg in argv)]) == EXIT_OK
    return printed.getvalue()


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("demo")
    return out, run("demo", "--out", out, "--quick")


def test_quick_demo_runs_every_step(quick_demo) -> None:
    out, printed = quick_demo
    for step in range(1, demo.STEPS + 1):
        assert f"\n{step}/{demo.STEPS} " in printed
    assert len(re.findall(r"^   \(\d+\.\d s\)$", printed, flags=re.MULTILINE)) == demo.STEPS  # each step's time
    assert "organism/towers" in printed  # the default towers

    assert len((out / "data" / "train.jsonl").read_text().splitlines()) == QUICK_DATA["num_train"]
    summary = json.loads((out / "train" / "train_summary.json").read_text())
    assert summary["completed_steps"] == QUICK_STEPS and summary["num_processes"] == 1
    trained = json.loads((out / "train" / "final" / "config.json").read_text())
    assert trained["method"] == "ovmlv"
    # Evaluated once, in step 4, which calibrated the threshold on val: the trainer did not evaluate first.
    calibrated_on = trained["deployment_config"]["threshold_calibrated_on"]
    assert calibrated_on == [VAL] and not list((out / "train").glob("eval_step_*.json"))

    results = json.loads((out / "results.json").read_text())
    kinds = SyntheticConfig.of_folder(out / "data").label_kinds  # canonical labels: the held-out set's scene row
    videos = [json.loads(line)["labels"] for line in (out / "data" / "heldout.jsonl").read_text().splitlines()]
    scenes = Counter(label for labels in videos for label in labels if kinds.get(label) == "scene")
    scene_chance = np.mean([random_ranking_precision(count, len(videos)) for count in scenes.values()])
    assert list(results) == [*demo.BASELINES.values(), f"ovmlv, {QUICK_STEPS} steps"]
    for model, eval_dir in zip(results, ("eval_class_name", "eval_templates", "eval_trained"), strict=True):
        report = json.loads((out / eval_dir / "report.json").read_text())["datasets"]
        for name in (VAL, HELDOUT, PARAPHRASED):  # the "all" group is the whole vocabulary: evaluate's own numbers
            assert results[model][name]["all"]["aupr_macro"] == pytest.approx(report[name]["aupr_macro"])
            assert results[model][name]["all"]["peak_f1"] == pytest.approx(report[name]["peak_f1"])
        assert 0 <= results[model][VAL]["time-reversal"]["aupr_macro"] <= 1
        assert results[model][VAL]["unseen"] is None  # the validation vocabulary holds no held-out label
        assert 0 <= results[model][HELDOUT]["unseen"]["aupr_macro"] <= 1
        for name, kind in (
            (HELDOUT, "unseen composition"),
            (HELDOUT, "held-out category"),
            (PARAPHRASED, "held-out synonym"),
        ):
            assert 0 <= results[model][name][kind]["aupr_macro"] <= 1 and results[model][VAL][kind] is None
        assert results[model][HELDOUT]["scene"]["chance_aupr"] == pytest.approx(scene_chance)

    table = (out / "results.md").read_text()
    assert "| Model | Labels | Val AUPR (macro) | Held-out AUPR (macro) | Held-out peak F1 |" in table
    assert (
        "| Model | (a) unseen compositions, AUPR | (b) held-out synonyms, AUPR | (c) held-out categories, AUPR |"
        in table
    )
    assert "| held-out, AUPR per video | paraphrased, AUPR per video |" in table
    for model in results:
        row = next(line for line in table.splitlines() if line.startswith(f"| {model} | ") and line.count("|") == 9)
        per_video = [results[model][name]["all"]["aupr_samples"] for name in (HELDOUT, PARAPHRASED)]
        assert row.endswith(" | ".join(f"{value:.3f}" for value in per_video) + " |")
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| Model")]
    assert len(rows) == (1 + len(results)) * (1 + len(LABEL_KINDS)) + (1 + len(results))  # chance rows included
    assert table in printed

    hub = out / "hub"
    assert {"README.md", "model.safetensors", "label_bank.safetensors"} <= {p.name for p in hub.iterdir()}
    assert "zero-shot-video-classification" in json.loads((hub / "config.json").read_text())["custom_pipelines"]
    heldout = [json.loads(line) for line in (out / "data" / "heldout.jsonl").read_text().splitlines()]
    for index in range(demo.NUM_CLASSIFIED):
        assert f"heldout_{index:05d}.mp4  true labels: {', '.join(heldout[index]['labels'])}\n" in printed
    found = re.findall(
        r"^  (\d+) of (\d+) true labels found among \d+ predicted; missed: ", printed, flags=re.MULTILINE
    )
    assert [int(total) for _, total in found] == [len(record["labels"]) for record in heldout[: demo.NUM_CLASSIFIED]]
    beside = re.findall(
        r"^  every label ranked for this video, average precision: trained ([\d.]+), frozen CLIP with class names "
        r"([\d.]+)$",
        printed,
        flags=re.MULTILINE,
    )
    assert len(beside) == demo.NUM_CLASSIFIED and all(0 < float(value) <= 1 for pair in beside for value in pair)


def test_a_videos_ranking_precision_is_the_average_precision_of_its_ranked_labels() -> None:
    ranked = [{"label": label} for label in ("red star", "blue ring", "star", "ring")]
    assert demo.ranking_precision(ranked, {"red star", "star"}) == pytest.approx((1 + 2 / 3) / 2)
    assert demo.ranking_precision(ranked, {"ring"}) == pytest.approx(1 / 4)


def test_compare_trains_and_evaluates_each_method(quick_demo, tmp_path: Path) -> None:
    demo_out, _ = quick_demo
    out = tmp_path / "compare"
    printed = run(
        "compare", *("--out", out, "--methods", "class_name", "coop", "--steps", 2, "--data", demo_out / "data")
    )

    results = json.loads((out / "results.json").read_text())
    assert results["trained_steps"] == {"class_name": 0, "coop": 2}
    assert json.loads((out / "runs" / "coop" / "train_summary.json").read_text())["completed_steps"] == 2
    assert not (out / "runs" / "class_name" / "final").exists()  # zero-shot: evaluated untrained
    # Same towers, data and untrained method as the demo's class-name baseline: the same numbers.
    baseline = json.loads((demo_out / "results.json").read_text())[demo.BASELINES["class_name"]]
    assert results["methods"]["class_name"] == baseline
    assert set(baseline[HELDOUT]) == {*GROUPS, ORDER_ONLY}

    table = (out / "results.md").read_text()
    assert "| Method | Trained | Val AUPR | Val peak F1 | Val AUPR shape | Val AUPR pair |" in table
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| Method")]
    assert [row.split(" | ")[:2] for row in rows] == [["| class_name", "zero-shot"], ["| coop", "2 steps"]]
    cells = rows[0].strip("| ").split(" | ")[2:]
    assert cells[0] == f"{baseline[VAL]['all']['aupr_macro']:.3f}" and len(cells) == len(compare.COLUMNS)
    assert table in printed


class StopAfterTraining(Exception):
    pass


def test_the_demo_reruns_reusing_a_finished_run_of_the_same_settings(quick_demo, monkeypatch, capsys) -> None:
    """A second `ovmlv demo` into the same folder reuses the finished training run (and says so); other settings
    train afresh over it. The steps after training are the first run's code: stopped here, they cost a minute."""
    out, _ = quick_demo
    monkeypatch.setattr(demo, "launch_training", lambda *args, **kwargs: pytest.fail("trained again"))
    monkeypatch.setattr(demo, "changed_frozen_weights", lambda *args: (_ for _ in ()).throw(StopAfterTraining()))
    with pytest.raises(StopAfterTraining):
        main(["demo", "--out", str(out), "--quick"])
    assert f"Reusing the finished run in {out / 'train'} (same settings; --fresh trains again)." in (
        capsys.readouterr().out
    )
    settings = {"towers": existing_towers(), "data": out / "data", "output_dir": out / "train", "validate": False}
    assert finished_run(out / "train", train_overrides("ovmlv", steps=QUICK_STEPS, seed=0, **settings))
    assert not finished_run(out / "train", train_overrides("ovmlv", steps=QUICK_STEPS + 1, seed=0, **settings))
    assert not finished_run(out / "train", train_overrides("ovmlv", steps=QUICK_STEPS, seed=1, **settings))
    assert not finished_run(
        out / "train", train_overrides("ovmlv", steps=QUICK_STEPS, seed=0, **settings | {"validate": True})
    )


def test_demo_help_shows_the_defaults_and_quick_has_its_own_folder(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "(default: outputs/demo, or outputs/demo_quick with --quick)" in shown
    assert f"(default: the recipe's, {default_steps(quick=False)}; {QUICK_STEPS} with --quick)" in shown
    assert "(default: 0)" in shown and "organism/towers)" in shown
    assert default_steps(quick=False) == recipe().optimizer.max_steps == 100  # the README's "the demo's recipe"


@pytest.mark.parametrize("available", [1, 8])
def test_a_run_takes_the_recipes_threads_but_never_more_than_its_process_has(available, tmp_path) -> None:
    """Threads beyond the free cores make steps many times slower (OpenMP spins): a `--jobs 2` worker holds one."""
    expected = min(recipe().training.cpu_threads, available)
    with torch_threads(available):
        overrides = train_overrides("ovmlv", existing_towers(), tmp_path, tmp_path / "train", 1, 0)
        assert run_threads() == expected
    assert overrides[overrides.index("--training.cpu_threads") + 1] == str(expected)
