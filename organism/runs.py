"""One method's run on the synthetic world, as the demo and the comparison runner both do it.

Why a module: every method must see the same towers, data and recipe (`training/configs/synthetic_tiny.yaml`), and
the demo, `compare` and `claims` must mean the same thing by "train" and "evaluate". The towers are the model
organism's (`organism/towers`: a tiny CLIP and T5 pretrained on the world, see docs/organism.md) unless a folder is
given. Training goes through `accelerate launch -m ovmlv.training.train` in a subprocess (Accelerate owns the
process) with only the folders, the method and the step budget overridden; evaluation calls the library's
`evaluate_saved_model` with the recipe's evaluation settings, on its three sets: val (closed vocabulary), heldout
(every label, the unseen ones included) and paraphrased (the held-out videos, every label written with synonyms).
The tables then read the saved scores per label group: shapes, colour-shape pairs, actions, scenes, the
time-reversal pairs (only frame order tells them apart) and the unseen labels.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from ovmlv.modeling_ovmlv import OvmlvModel
from ovmlv.processing import OvmlvProcessor
from ovmlv.text_files import read_lines
from ovmlv.training.config import ManifestConfig, TrainConfig, load_config
from ovmlv.training.evaluate import EvalManifest, EvaluateOptions, evaluate_saved_model
from ovmlv.training.metrics import average_precision, multilabel_report, random_ranking_precision

from .harness_defaults import ORGANISM_TOWERS, RECIPE, REPO
from .tiny_towers import TinyTowers, build_tiny_towers
from .world import SMALL_WORLD, TIME_REVERSAL_PAIRS, SyntheticConfig, generate_dataset
from .world_labels import HELDOUT_CATEGORY, HELDOUT_SYNONYM, UNSEEN_COMPOSITION

# At CLIP's default init, random towers give near-identical features for every input: nothing to learn from.
TOWER_INITIALIZER_FACTOR = 3.0
# --quick: enough to run every step end to end in seconds, not to learn anything; a small world's vocabulary.
QUICK_DATA = {"num_train": 20, "num_val": 10, "num_heldout": 10, **SMALL_WORLD}
# The recipe's validation sets: closed vocabulary; open (unseen labels); the held-out videos' labels in synonyms.
VAL, HELDOUT, PARAPHRASED = "val", "heldout", "paraphrased"
LABEL_KINDS = ("shape", "pair", "action", "count", "scene", "category")  # the rows of a per-kind table
# The held-out kinds of world v2 (heldout.json): (a), (b), (c); "unseen" is (a) and (c), the canonical ones.
HELDOUT_KINDS = (UNSEEN_COMPOSITION, HELDOUT_SYNONYM, HELDOUT_CATEGORY)
GROUPS = ("all", "canonical", *LABEL_KINDS, "time-reversal", "unseen", "seen", *HELDOUT_KINDS)
ORDER_ONLY = "order-only"  # a report beside GROUPS: see `order_only_report`


@contextlib.contextmanager
def announce(title: str) -> Iterator[None]:
    """Print what starts, then how long it took."""
    print(f"\n{title}", flush=True)
    start = time.perf_counter()
    yield
    print(f"   ({time.perf_counter() - start:.1f} s)", flush=True)


def recipe() -> TrainConfig:
    return load_config(RECIPE)


def build_towers(out_dir: Path, seed: int) -> TinyTowers:
    """Tiny random towers (the unit tests' kind), scaled so that their features differ between inputs."""
    return build_tiny_towers(out_dir, seed=seed, initializer_factor=TOWER_INITIALIZER_FACTOR)


def existing_towers(folder: Path = ORGANISM_TOWERS) -> TinyTowers:
    """Towers in one folder as clip/ and t5/: written by `build_towers` or `ovmlv organism`; by default the
    committed organism."""
    return TinyTowers(clip=folder / "clip", llm=folder / "t5")


def build_data(out_dir: Path, seed: int, quick: bool) -> Path:
    generate_dataset(out_dir, SyntheticConfig(seed=seed, **(QUICK_DATA if quick else {})), workers=2)
    return out_dir


def _rebased(spec: ManifestConfig, data: Path) -> dict[str, Any]:
    """The recipe's manifest entry with its files taken from `data` (the recipe names outputs/demo/data)."""
    values = dataclasses.asdict(spec)
    for key in ("manifest", "vocabulary", "kinds"):
        if values[key] is not None:
            values[key] = str(data.resolve() / Path(values[key]).name)
    return values


def train_run(
    method: str | None,
    towers: TinyTowers,
    data: Path,
    output_dir: Path,
    steps: int,
    seed: int,
    model_overrides: dict[str, Any] | None = None,
    recipe_overrides: dict[str, Any] | None = None,
) -> Path:
    """Train `method` (None: the `model_overrides` alone) with the recipe, `model_overrides` (OvmlvConfig fields) and
    `recipe_overrides` (the recipe's own options, e.g. "optimizer.weight_averaging") on top, into `output_dir` (which
    must hold no other run); returns its exported folder."""
    launch_training(
        train_overrides(
            method, towers, data, output_dir, steps, seed, model_overrides, recipe_overrides=recipe_overrides
        )
    )
    return output_dir / "final"


def launch_training(overrides: list[str], overwrite: bool = False) -> None:
    """The recipe with `overrides` (`train_overrides`) through `accelerate launch`, its output streamed.
    `overwrite`: replace a run already in the output folder (otherwise that is an error)."""
    launch = [sys.executable, "-m", "accelerate.commands.launch"]  # `accelerate launch`, without the other commands
    launch += ["--num_processes", "1", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    launch += ["--num_cpu_threads_per_process", str(run_threads())]  # OMP threads, as many as the trainer's torch's
    command = [*launch, "--cpu", "-m", "ovmlv.training.train", "--config", str(RECIPE), *overrides]
    subprocess.run([*command, *(["--training.overwrite", "true"] if overwrite else [])], cwd=REPO, check=True)


def run_threads() -> int:
    """Threads for a run's trainer and its evaluation: the recipe's `training.cpu_threads`, never more than this
    process has (`torch.get_num_threads()`; a `--jobs N` worker gets its share of the cores). Threads beyond the
    free cores are worse than none: on busy cores OpenMP's waiting threads spin, and a step of the demo's recipe
    took 17-22 s with 2 threads where it takes 1.9 s on idle cores (5-8 s with 1 thread under the same load)."""
    return min(recipe().training.cpu_threads or torch.get_num_threads(), torch.get_num_threads())


def train_overrides(
    method: str | None,
    towers: TinyTowers,
    data: Path,
    output_dir: Path,
    steps: int,
    seed: int,
    model_overrides: dict[str, Any] | None = None,
    validate: bool = True,
    recipe_overrides: dict[str, Any] | None = None,
) -> list[str]:
    """The trainer's options that turn the recipe into this run: towers, method, data folder, output, seed, steps,
    and any other recipe option in `recipe_overrides` ({"optimizer.gate_lr_scale": 50, ...}). `validate=False`
    leaves out the recipe's validation sets: no evaluation during or after training and no calibrated threshold,
    for a caller that evaluates (and calibrates) the exported model itself, once."""
    config = recipe()
    model = {"method": method} if method is not None else {}
    overrides = {
        "towers.clip": str(towers.clip.resolve()),
        "towers.llm": str(towers.llm.resolve()),
        **{f"model.{name}": value for name, value in {**model, **(model_overrides or {})}.items()},
        "data.train": [_rebased(spec, data) for spec in config.data.train],
        "data.validation": [_rebased(spec, data) for spec in config.data.validation] if validate else [],
        "training.output_dir": str(output_dir.resolve()),
        "training.seed": seed,
        "optimizer.max_steps": steps,
        "optimizer.warmup_steps": min(config.optimizer.warmup_steps, steps),  # a short budget still warms up
        # and aligns its label encoder for at most two text steps a video step (the recipe: 200 for 100)
        "label_alignment.text_steps": min(config.label_alignment.text_steps, 2 * steps),
        "training.cpu_threads": run_threads(),
        **(recipe_overrides or {}),
    }
    return [
        item
        for name, value in overrides.items()
        for item in (f"--{name}", value if isinstance(value, str) else yaml_scalar(value))
    ]


def finished_run(output_dir: Path, overrides: list[str]) -> bool:
    """Whether `output_dir` holds a finished run (final/ and its summary) of exactly the recipe with `overrides`."""
    saved = output_dir / "train_config.yaml"
    if not (output_dir / "final" / "config.json").is_file() or not (output_dir / "train_summary.json").is_file():
        return False
    settings = [load_config(path, overrides if path == RECIPE else []).to_dict() for path in (RECIPE, saved)]
    for values in settings:
        values["training"].update(resume=False, overwrite=False)
    return settings[0] == settings[1]


def yaml_scalar(value: Any) -> str:
    """`value` as YAML flow text that the trainer reads back as the same value (PyYAML reads `1e-06` as text,
    `1.0e-06` as a float)."""
    return yaml.safe_dump(value, default_flow_style=True, width=math.inf).removesuffix("\n...\n").strip()


def changed_frozen_weights(trained: OvmlvModel, untrained: OvmlvModel) -> tuple[int, list[str]]:
    """(how many frozen tensors were compared, the names of those that differ) between a trained model and the
    same configuration freshly built on the same towers: training must leave every frozen weight bit-identical."""
    fresh = dict(untrained.named_parameters())
    frozen = {name: p for name, p in trained.named_parameters() if not p.requires_grad}
    return len(frozen), [name for name, p in frozen.items() if not torch.equal(p, fresh[name])]


@dataclass(frozen=True)
class MethodRun:
    method: str | None
    folder: Path  # the model to evaluate, saved with its processor
    steps: int  # optimizer steps trained; 0 for a zero-shot method


def save_untrained(
    method: str | None, towers: TinyTowers, folder: Path, model_overrides: dict[str, Any] | None = None
) -> bool:
    """Save `method` (with the recipe's model fields, then `model_overrides`) as built on the towers, for zero-shot
    evaluation; False (nothing saved) if it has parameters to train. The recipe's fields give it the trained models'
    scoring (temperature, starting bias, category members) with the bias fixed: nothing of it is trained."""
    fields = {**recipe().model, "learnable_bias": False, **(model_overrides or {})}
    model = OvmlvModel.from_towers(towers.clip, towers.llm, method=method, **fields)
    if any(parameter.requires_grad for parameter in model.parameters()):
        return False
    model.save_pretrained(folder)
    OvmlvProcessor.from_towers(towers.clip, towers.llm).save_pretrained(folder)
    return True


def method_run(
    method: str | None,
    towers: TinyTowers,
    data: Path,
    run_dir: Path,
    steps: int,
    seed: int,
    model_overrides: dict[str, Any] | None = None,
    recipe_overrides: dict[str, Any] | None = None,
) -> MethodRun:
    """`method` (with `model_overrides`) trained with the recipe (and `recipe_overrides`) for `steps`, or saved
    untrained when it has nothing to train."""
    if save_untrained(method, towers, run_dir / "untrained", model_overrides):
        return MethodRun(method, run_dir / "untrained", steps=0)
    folder = train_run(method, towers, data, run_dir, steps, seed, model_overrides, recipe_overrides)
    return MethodRun(method, folder, steps)


def label_groups(data: Path) -> dict[str, set[str]]:
    """The labels each table row reports on (see GROUPS). A group of canonical labels comes with their paraphrases
    written with held-out synonyms, so that it means the same concepts in the held-out set (canonical words) and in
    its paraphrased copy (held-out synonyms); "seen" is the
    training vocabulary, "canonical" the labels in canonical words only, and each held-out kind is the labels
    heldout.json gives it."""
    kinds: dict[str, str] = json.loads((data / "labels.json").read_text(encoding="utf-8"))
    heldout: dict[str, str] = json.loads((data / "heldout.json").read_text(encoding="utf-8"))
    world = SyntheticConfig.of_folder(data)
    canonical_kinds = world.label_kinds
    canonical = {
        "all": set(canonical_kinds),
        "shape": set(world.shapes),
        "pair": set(world.entities),
        **{kind: {label for label, k in canonical_kinds.items() if k == kind} for kind in LABEL_KINDS[2:]},
        "time-reversal": {label for pair in TIME_REVERSAL_PAIRS for label in pair} & set(kinds),
        "unseen": set(world.unseen_labels),
    }
    seen = set(read_lines(data / "vocab_train.txt", "vocabulary"))
    # Paraphrases with held-out synonyms only: the held-out set's vocabulary also holds the seen-synonym ones, and a
    # per-kind row there reads canonical words.
    paraphrases = {written: label for written, label in world.paraphrases.items() if written not in seen}
    groups = {
        group: members | {written for written, label in paraphrases.items() if label in members}
        for group, members in canonical.items()
    }
    groups["all"] = set(canonical_kinds) | set(world.paraphrases)  # every label, whatever the set
    groups["canonical"] = set(canonical_kinds)  # without paraphrases
    groups["seen"] = seen
    return groups | {kind: {label for label, k in heldout.items() if k == kind} for kind in HELDOUT_KINDS}


def reversal_pairs(data: Path) -> list[tuple[set[str], set[str]]]:
    """Each time-reversal pair of the world as (one side's labels, the other's), each with its paraphrases."""
    world = SyntheticConfig.of_folder(data)

    def side(label: str) -> set[str]:
        return {label} | {written for written, meaning in world.paraphrases.items() if meaning == label}

    return [(side(first), side(second)) for first, second in TIME_REVERSAL_PAIRS]


def order_only_report(
    targets: np.ndarray, scores: np.ndarray, labels: list[str], pairs: list[tuple[set[str], set[str]]]
) -> dict[str, float] | None:
    """How well frame order alone is read: for each time-reversal pair, on the videos that show exactly one of its
    two sides (moving left or moving right, not both, not neither), the AUPR of each label of either side at
    telling its side from the other; macro over labels, with `chance_aupr` (the same for random rankings: on a few
    dozen videos that is several points above the share of positives, about 0.5). A frame-mean model cannot beat chance here, whatever it knows about motion kinds: every frame of
    "moving left" could be a frame of "moving right". None if no pair has videos of both sides."""
    precisions, shares, videos = [], [], 0
    for sides in pairs:
        columns = [[i for i, label in enumerate(labels) if label in side] for side in sides]
        if not all(columns):
            continue
        shown = [targets[:, side].any(axis=1) for side in columns]
        rows = shown[0] ^ shown[1]
        if not (shown[0] & rows).any() or not (shown[1] & rows).any():
            continue
        videos += int(rows.sum())
        for side, side_columns in zip(shown, columns, strict=True):
            for column in side_columns:
                precisions.append(average_precision(side[rows], scores[rows, column]))
                shares.append(random_ranking_precision(int(side[rows].sum()), int(rows.sum())))
    if not precisions:
        return None
    return {"aupr_macro": float(np.mean(precisions)), "chance_aupr": float(np.mean(shares)), "videos": videos}


def group_reports(
    scores_file: Path, groups: dict[str, set[str]], pairs: list[tuple[set[str], set[str]]]
) -> dict[str, dict[str, float] | None]:
    """multilabel_report over each group's columns of one set's saved scores, with `chance_aupr` (the macro AUPR
    a uniformly random ranking gets on average, `random_ranking_precision`), and the `ORDER_ONLY` report of the
    reversal `pairs`; None where the set has none."""
    saved = np.load(scores_file)
    labels = saved["labels"].tolist()
    reports = {ORDER_ONLY: order_only_report(saved["targets"], saved["scores"], labels, pairs)}
    for group, members in groups.items():
        columns = [i for i, label in enumerate(labels) if label in members]
        targets = saved["targets"][:, columns]
        positives = targets.sum(axis=0)
        reports[group] = (
            multilabel_report(targets, saved["scores"][:, columns])
            | {"chance_aupr": float(np.mean([random_ranking_precision(k, len(targets)) for k in positives if k]))}
            if columns and positives.any()
            else None
        )
    return reports


def evaluate_run(
    model_dir: Path, data: Path, out_dir: Path, sets: tuple[str, ...] | None = None
) -> dict[str, dict[str, dict[str, float] | None]]:
    """`evaluate_saved_model` on the recipe's validation sets (or those named in `sets`), with the recipe's
    evaluation settings, as training evaluates; its files and scores go to `out_dir`; {set: {group: report}}."""
    config = recipe()
    validation = [spec for spec in config.data.validation if sets is None or spec.name in sets]
    torch.set_num_threads(run_threads())  # one decoding worker shares the cores, as in training
    options = EvaluateOptions(
        num_frames=config.eval.num_frames,
        num_clips=config.eval.num_clips,
        batch_size=config.eval.per_device_batch_size,
        label_batch_size=config.eval.label_batch_size,
        num_workers=config.data.num_workers,
        save_scores=True,
    )
    manifests = [EvalManifest(ManifestConfig(**_rebased(spec, data))) for spec in validation]
    evaluate_saved_model(str(model_dir), out_dir, manifests, options)
    return set_reports(out_dir, data, [spec.name for spec in validation])


def set_reports(eval_dir: Path, data: Path, sets: list[str]) -> dict[str, dict[str, dict[str, float] | None]]:
    """{set: {group: report}} from the scores an evaluation saved in `eval_dir`/scores."""
    groups, pairs = label_groups(data), reversal_pairs(data)
    return {name: group_reports(eval_dir / "scores" / f"{name}.npz", groups, pairs) for name in sets}


def cell(report: dict[str, float] | None, metric: str) -> str:
    """A table cell: the metric as a fraction, or a dash where there is none (no column, or no positive)."""
    value = None if report is None else report[metric]
    return "–" if value is None or not math.isfinite(value) else f"{value:.3f}"
