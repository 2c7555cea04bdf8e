"""The training script end to end on tiny towers and synthetic videos: config, parameter groups, outputs that the
pipeline loads, an interrupted run that resumes to the very same weights, and two real processes (DDP over gloo,
and DeepSpeed ZeRO-2 where DeepSpeed is installed)."""

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.utils import DeepSpeedPlugin
from safetensors import safe_open
from safetensors.torch import load_file

from ovmlv.modeling_ovmlv import OvmlvModel
from ovmlv.modeling_ovmlv.label_bank import embed_labels
from ovmlv.organism.runs import changed_frozen_weights
from ovmlv.processing import OvmlvProcessor
from ovmlv.training import train
from ovmlv.training.checkpointing import CHECKPOINTS_DIR
from ovmlv.training.config import RUN_CONFIG_NAME, load_config, resumed_run_changes, save_config
from ovmlv.training.optimization import WeightAverage, parameter_groups
from tests.numerics import assert_same_report, assert_trained_alike
from tests.process_state import reset_accelerate_state

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "training" / "configs"
# The paper's model at toy sizes: LLM-prompted labels and a temporal branch with its weight regulariser.
TINY_MODEL = {
    "label_encoder": "llm_prompted",
    "num_prefixes": 1,
    "num_attributes": 1,
    "attribute_length": 2,
    "prompt_transformer_layers": 1,
    "temporal_layers": 1,
}


def tiny_config(path: Path, towers, data: Path, output_dir: Path) -> Path:
    """A YAML config for 4 steps of batch 2 on 2-frame clips, evaluated every 2 steps."""
    config = {
        "towers": {"clip": str(towers.clip), "llm": str(towers.llm)},
        "model": TINY_MODEL,
        "data": {
            "train": [{"manifest": str(data / "train.jsonl"), "vocabulary": str(data / "vocab_train.txt")}],
            "validation": [
                {
                    "manifest": str(data / "val.jsonl"),
                    "vocabulary": str(data / "vocab_all.txt"),
                    "kinds": str(data / "labels.json"),
                    "name": "val",
                }
            ],
            "num_frames": 2,
            "num_workers": 0,
        },
        "optimizer": {"lr": 1e-3, "warmup_steps": 1, "max_steps": 4},
        "training": {
            "output_dir": str(output_dir),
            "per_device_batch_size": 2,
            "log_every": 1,
            "checkpoint_every": 2,
            "keep_checkpoints": None,
            "report_to": "none",
            "cpu_threads": 1,
        },
        "eval": {"every_steps": 2, "per_device_batch_size": 4, "num_frames": 2, "num_clips": 1},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def test_config_file_then_command_line(tmp_path: Path) -> None:
    config = load_config(
        CONFIGS / "paper_recipe.yaml",
        [
            "--optimizer.lr",
            "3e-4",
            "--max_steps=5000",
            "--model.temporal_layers",
            "2",
            "--resume",
            "--data.train",
            "x.jsonl",
        ],
    )
    assert config.optimizer.lr == 3e-4 and config.optimizer.max_steps == 5000  # `--field` when the name is unique
    assert config.optimizer.warmup_steps == 2000 and config.optimizer.weight_decay == 1e-7  # YAML's 1.0e-7 too
    assert config.model == {
        "label_encoder": "llm_prompted",
        "temporal_layers": 2,  # the command line over the file's 4
        "temporal_mode": "parallel",
        "temporal_pooling": "clip_frames",
        "weight_interpolation_max": 0.5,
        "weight_interpolation_loss_weight": 1e-6,
        "weight_interpolation_form": "consistency",
    }
    assert config.training.resume is True  # a bare bool flag
    assert [spec.manifest for spec in config.data.train] == ["x.jsonl"]
    assert config.towers.llm == "google/flan-t5-xl" and config.training.per_device_batch_size == 12

    (tmp_path / "lr.yaml").write_text("optimizer:\n  lr: 1e-5\n")  # PyYAML reads 1e-5 as a string
    assert load_config(tmp_path / "lr.yaml").optimizer.lr == 1e-5
    for argv, message in [
        (["--per_device_batch_size", "4"], "in several sections"),
        (["--optimizer.learning_rate", "1"], "unknown field"),
        (["--model.temporal_layer", "1"], "unknown OvmlvConfig field"),
        (["--max_steps", "ten"], "expected a number"),
        (["--max_steps"], "needs a value"),
        (["--data.num_frames", "100000"], "data.num_frames must be from 1 to 128, got 100000"),
        (["--eval.num_clips", "20000"], "eval.num_clips must be from 1 to 16, got 20000"),
    ]:
        with pytest.raises(ValueError, match=message):
            load_config(None, argv)


def test_yaml_aliases_are_refused_in_one_line(tmp_path: Path) -> None:
    """A "billion laughs" config (each level repeats the one below) would take gigabytes to expand."""
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]" for i in range(8)]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("model:\n" + "".join(f"  {line}\n" for line in levels))
    with pytest.raises(ValueError, match=r"bomb.yaml, line 3: YAML aliases \(\*name\) are not accepted"):
        load_config(bomb)
    with pytest.raises(ValueError, match="--data.train, line 1: YAML aliases"):
        load_config(None, ["--data.train", "[&m {manifest: a.jsonl}, *m]"])


def test_a_second_run_into_a_locked_output_dir_fails_naming_the_first(tmp_path: Path, towers, synthetic: Path):
    from ovmlv.modeling_ovmlv.file_locks import LockedError, locked

    out = tmp_path / "run"
    config = tiny_config(tmp_path / "config.yaml", towers, synthetic, out)
    with locked(out):  # a first `train --resume` is running
        with pytest.raises(LockedError, match=rf"{out} is being written by process {os.getpid()} "):
            train.main(["--config", str(config), "--resume"])
        launched = subprocess.run(
            [sys.executable, "-m", "ovmlv", "train", "--config", str(config), "--resume"],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert launched.returncode == 1 and launched.stderr.count("\n") == 1, launched.stderr
    assert launched.stderr.startswith(f"ovmlv train: error: {out} is being written by process {os.getpid()}")
    assert not out.exists()  # nothing written


def test_resume_refuses_a_changed_hyperparameter_in_one_line(tmp_path: Path, towers, synthetic: Path) -> None:
    """Resuming restores the optimizer and scheduler: a new lr would be recorded in train_config.yaml, not used."""
    out = tmp_path / "run"
    config = tiny_config(tmp_path / "config.yaml", towers, synthetic, out)
    out.mkdir()
    save_config(load_config(config), out / RUN_CONFIG_NAME)  # the run being resumed
    assert resumed_run_changes(load_config(config, ["--max_steps", "8", "--log_every", "2"]), out) == [
        "optimizer.max_steps: 4 -> 8",
        "training.log_every: 1 -> 2",
    ]
    refusal = r"--resume cannot change optimizer.lr \(0.001 in .*train_config.yaml, 0.5 now\)"
    with pytest.raises(ValueError, match=refusal):
        train.main(["--config", str(config), "--resume", "--lr", "0.5"])
    launched = subprocess.run(
        [sys.executable, "-m", "ovmlv", "train", "--config", str(config), "--resume", "--model.temporal_layers", "2"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert launched.returncode == 1 and launched.stderr.count("\n") == 1, launched.stderr
    assert launched.stderr.startswith("ovmlv train: error: --resume cannot change model.temporal_layers (1 in ")
    assert sorted(p.name for p in out.iterdir()) == [RUN_CONFIG_NAME]  # nothing else written


def test_shipped_configs_parse() -> None:
    for name in ("paper_recipe.yaml", "synthetic_tiny.yaml"):
        load_config(CONFIGS / name)
    launchers = {name: load_config_from_file(str(CONFIGS / name)) for name in CONFIGS.glob("accelerate_*.yaml")}
    assert {str(config.distributed_type) for config in launchers.values()} == {
        "DistributedType.NO",
        "DistributedType.MULTI_GPU",
        "DistributedType.DEEPSPEED",
    }
    for stage in (2, 3):
        launcher = load_config_from_file(str(CONFIGS / f"accelerate_zero{stage}.yaml"))
        ds_config = REPO / launcher.deepspeed_config["deepspeed_config_file"]
        plugin = DeepSpeedPlugin(hf_ds_config=str(ds_config), zero3_init_flag=False)
        assert plugin.zero_stage == stage and plugin.hf_ds_config.is_zero3() == (stage == 3)
        # Accelerate fills these from the run; the rest must be numbers (our model config has no hidden_size).
        autos = {key for key, value in json.loads(ds_config.read_text()).items() if value == "auto"}
        assert autos == {
            "gradient_accumulation_steps",
            "gradient_clipping",
            "train_micro_batch_size_per_gpu",
            "train_batch_size",
        }


def test_parameter_groups_follow_the_recipe(towers) -> None:
    model = OvmlvModel.from_towers(towers.clip, towers.llm, **TINY_MODEL, learnable_temperature=True)
    groups = {group["name"]: group for group in parameter_groups(model, 1e-7, 0.0)}
    assert groups["new_layers"]["weight_decay"] == 1e-7 and groups["clip_initialised"]["weight_decay"] == 0.0
    names = {id(p): name for name, p in model.named_parameters()}
    in_groups = {names[id(p)]: group for group in groups.values() for p in group["params"]}
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert set(in_groups) == trainable  # every trainable parameter once, no frozen one
    clip_initialised = {name for name, group in in_groups.items() if group["name"] == "clip_initialised"}
    assert clip_initialised == model.clip_initialised_parameter_names() != set()
    assert "score_head.logit_scale" in in_groups and in_groups["score_head.logit_scale"]["name"] == "new_layers"
    assert not any(name.startswith("video_encoder.vision_tower.") for name in in_groups)

    frozen = OvmlvModel.from_towers(towers.clip, label_encoder="class_name", temporal_layers=0)
    with pytest.raises(ValueError, match="no trainable parameters"):
        parameter_groups(frozen, 1e-7, 0.0)


def test_the_zero_start_gates_get_their_own_learning_rate_and_no_decay(towers) -> None:
    model = OvmlvModel.from_towers(towers.clip, towers.llm, **TINY_MODEL)
    groups = {group["name"]: group for group in parameter_groups(model, 1e-7, 0.0, gate_lr=0.02)}
    names = {id(p): name for name, p in model.named_parameters()}
    gates = {names[id(p)] for group in ("gates", "label_gates") for p in groups[group]["params"]}
    assert gates == {"label_encoder.label_gate", "video_encoder.temporal_branch.tmp_gate"}
    assert groups["gates"]["lr"] == groups["label_gates"]["lr"] == 0.02  # one rate unless the label's is given
    assert groups["gates"]["weight_decay"] == groups["label_gates"]["weight_decay"] == 0.0
    assert "lr" not in groups["new_layers"]  # the optimizer's own rate


def test_the_label_gate_can_open_at_its_own_rate_beside_the_branchs_gates(towers) -> None:
    model = OvmlvModel.from_towers(towers.clip, towers.llm, **TINY_MODEL)
    groups = {group["name"]: group for group in parameter_groups(model, 1e-7, 0.0, gate_lr=0.1, label_gate_lr=0.002)}
    names = {id(p): name for name, p in model.named_parameters()}
    assert [names[id(p)] for p in groups["label_gates"]["params"]] == ["label_encoder.label_gate"]
    assert [names[id(p)] for p in groups["gates"]["params"]] == ["video_encoder.temporal_branch.tmp_gate"]
    assert (groups["gates"]["lr"], groups["label_gates"]["lr"]) == (0.1, 0.002)


def test_the_label_path_has_its_own_rate_and_zero_keeps_it_as_it_is(towers) -> None:
    model = OvmlvModel.from_towers(towers.clip, towers.llm, **TINY_MODEL)
    names = {id(p): name for name, p in model.named_parameters()}
    groups = {group["name"]: group for group in parameter_groups(model, 1e-7, 0.0, label_path_lr=2e-4)}
    path = {names[id(p)] for p in groups["label_path"]["params"]}
    assert path and all(name.startswith("label_encoder.") and "gate" not in name for name in path)
    assert groups["label_path"]["lr"] == 2e-4 and not path & {names[id(p)] for p in groups["new_layers"]["params"]}
    kept = {group["name"]: group for group in parameter_groups(model, 1e-7, 0.0, label_path_lr=0.0)}
    trained = {names[id(p)] for group in kept.values() for p in group["params"]}
    assert "label_path" not in kept and not trained & path and "label_encoder.label_gate" in trained
    with pytest.raises(ValueError, match="optimizer.label_path_lr_scale must be 0 or more, got -1"):
        load_config(None, ["--optimizer.label_path_lr_scale", "-1"])


def test_the_label_gates_rate_defaults_to_the_gates_and_must_be_positive() -> None:
    assert load_config(None, []).optimizer.label_gate_lr_scale is None
    assert load_config(None, ["--optimizer.label_gate_lr_scale", "0.5"]).optimizer.label_gate_lr_scale == 0.5
    with pytest.raises(ValueError, match="optimizer.label_gate_lr_scale must be positive, got 0"):
        load_config(None, ["--optimizer.label_gate_lr_scale", "0"])


@pytest.mark.parametrize("kind", ["swa", "ema"])
def test_weight_average_follows_its_formula_from_the_start_step_and_round_trips(kind) -> None:
    model = torch.nn.Linear(2, 1)
    model.bias.requires_grad_(False)  # frozen weights are not averaged
    average = WeightAverage(model, kind, decay=0.5, start_step=2)
    seen = []
    for step in range(1, 5):
        with torch.no_grad():
            model.weight.fill_(float(step))
        average.update(step)
        seen.append(float(step))
    averaged = seen[1:]  # steps 2, 3, 4
    expected = sum(averaged) / 3 if kind == "swa" else 0.5 * (0.5 * 2.0 + 0.5 * 3.0) + 0.5 * 4.0
    copy = WeightAverage(model, kind, decay=0.5, start_step=2)
    copy.load_state_dict(average.state_dict())
    copy.apply()
    assert torch.equal(model.weight, torch.full((1, 2), expected)) and list(average.average) == ["weight"]


def test_gradient_checkpointing_changes_memory_not_gradients(towers, processor) -> None:
    model = OvmlvModel.from_towers(towers.clip, towers.llm, **TINY_MODEL, weight_interpolation_loss_weight=0.0)
    inputs = processor.label_inputs(["red circle", "moving left", "rotating"])
    pixels, targets = torch.randn(2, 2, 3, 32, 32), torch.tensor([[1.0, 0, 1], [0, 1, 0]])

    def loss_and_grads() -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad()
        loss = model(pixel_values_videos=pixels, labels=targets, **inputs).loss
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in model.parameters() if p.requires_grad]

    model.train()
    loss, grads = loss_and_grads()
    model.activation_checkpointing_enable()
    checkpointed_loss, checkpointed_grads = loss_and_grads()
    assert torch.allclose(loss, checkpointed_loss)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads, checkpointed_grads, strict=True))


def test_training_run_writes_what_the_pipeline_loads(tmp_path: Path, towers, synthetic: Path) -> None:
    from transformers import pipeline

    out = tmp_path / "run"
    config = tiny_config(tmp_path / "config.yaml", towers, synthetic, out)
    summary = train.main(["--config", str(config), "--report_to", "tensorboard"])

    assert summary["completed_steps"] == 4 and summary["processes"][0]["steps_this_run"] == 4
    assert sorted(p.name for p in (out / CHECKPOINTS_DIR).iterdir()) == ["step_2", "step_4"]
    trained = OvmlvModel.from_towers(towers.clip, towers.llm, **TINY_MODEL)
    with safe_open(out / CHECKPOINTS_DIR / "step_4" / "model.safetensors", framework="pt") as saved:
        assert set(saved.keys()) == {name for name, p in trained.named_parameters() if p.requires_grad}  # no towers
    assert list((out / "logs").rglob("events.out.tfevents.*"))

    report = json.loads((out / "eval_step_4.json").read_text())["datasets"]["val"]
    assert report["num_videos"] == 4 and 0 <= report["aupr_macro"] <= 1 and 0 <= report["peak_f1"] <= 1
    assert set(report["per_kind"]) == {"entity", "action", "count", "scene", "category"}  # world v2's kinds
    assert (out / "eval_step_2.json").exists()

    model = OvmlvModel.from_pretrained(out / "final")
    compared, changed = changed_frozen_weights(model, trained)  # `trained`: the same towers, untrained
    assert compared > 100 and changed == []  # every frozen weight bit-identical
    training_vocabulary = (synthetic / "vocab_train.txt").read_text().split("\n")
    assert model.label_bank.labels == [label for label in training_vocabulary if label]
    # The bank is the final evaluation's encoding of these weights, not a second one: the same within float noise.
    fresh = embed_labels(model.label_bank.labels, model.eval(), OvmlvProcessor.from_pretrained(out / "final"))
    torch.testing.assert_close(model.label_bank.embeddings, fresh, rtol=1e-5, atol=1e-6)
    assert model.config.deployment_config.threshold != 0.5  # calibrated on validation (max-min peak F1)
    classifier = pipeline("zero-shot-video-classification", model=str(out / "final"), trust_remote_code=True)
    first = json.loads((synthetic / "heldout.jsonl").read_text().splitlines()[0])
    ranked = classifier(str(synthetic / first["video"]), candidate_labels=["blue circle", "rotating"], threshold=0.0)
    assert {entry["label"] for entry in ranked} == {"blue circle", "rotating"}


def test_a_model_trained_at_16_frames_serves_16(tmp_path: Path, towers, synthetic: Path) -> None:
    """Served = trained: the run saves its frame count (evaluation follows the training clip unless told), its
    clips and sampling in the processor, and one temporal position per training frame; the pipeline and
    `ovmlv evaluate` then use them by default."""
    from transformers import pipeline

    from ovmlv import cli

    out = tmp_path / "run"
    config = yaml.safe_load(tiny_config(tmp_path / "config.yaml", towers, synthetic, out).read_text())
    config["data"]["num_frames"] = 16
    config["eval"] = {"every_steps": 0, "per_device_batch_size": 4, "num_clips": 2}  # num_frames: the data's
    config["optimizer"].update(max_steps=1)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    train.main(["--config", str(tmp_path / "config.yaml")])

    final = out / "final"
    saved = json.loads((final / "processor_config.json").read_text())
    assert (saved["num_frames"], saved["num_clips"], saved["sampling"]) == (16, 2, "uniform")
    assert OvmlvModel.from_pretrained(final).config.temporal_config.temporal_positions == 16
    classifier = pipeline("zero-shot-video-classification", model=str(final), trust_remote_code=True)
    first = json.loads((synthetic / "val.jsonl").read_text().splitlines()[0])
    pixels = classifier.preprocess(str(synthetic / first["video"]))["pixel_values_videos"]
    assert pixels.shape[:3] == (1, 2, 16)  # (videos, clips, frames)
    argv = ["evaluate", "--model", final, "--out", tmp_path / "eval", "--manifest", synthetic / "val.jsonl"]
    assert cli.main([str(arg) for arg in [*argv, "--num-workers", "0", "--no-save-threshold"]]) == 0
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert (report["num_frames"], report["num_clips"]) == (16, 2)


class Preempted(Exception):
    """Stands for the job being killed right after a checkpoint."""


def test_interrupted_run_resumes_to_the_same_weights(
    tmp_path: Path, towers, synthetic: Path, monkeypatch, caplog
) -> None:
    # Gradient accumulation 2: 4 micro-batches of 2 videos per epoch = 2 steps, so step 3 resumes mid-epoch. The
    # weight average (steps 2-4) is exported: the resumed run must restore the average of steps 2 and 3.
    overrides = ["--gradient_accumulation_steps", "2", "--checkpoint_every", "3"]
    overrides += ["--weight_averaging", "swa", "--averaging_start_step", "2"]
    reference = tmp_path / "uninterrupted"
    train.main(["--config", str(tiny_config(tmp_path / "a.yaml", towers, synthetic, reference)), *overrides])
    reset_accelerate_state()

    resumed = tmp_path / "interrupted"
    config = str(tiny_config(tmp_path / "b.yaml", towers, synthetic, resumed))
    killed_after_first_checkpoint(monkeypatch, ["--config", config, *overrides])
    with caplog.at_level(logging.INFO):
        summary = train.main(["--config", config, *overrides, "--resume", "--eval.label_batch_size", "64"])
    assert "Resuming with a changed eval.label_batch_size: 256 -> 64" in caplog.text  # applied, and said

    assert summary["processes"][0]["steps_this_run"] == 1  # steps 1-3 before the kill, step 4 after
    expected, actual = (
        load_file(reference / "final" / "model.safetensors"),
        load_file(resumed / "final" / "model.safetensors"),
    )
    assert_trained_alike(actual, expected)
    last = load_file(reference / CHECKPOINTS_DIR / "step_4" / "model.safetensors")  # the live weights at step 4
    assert last.keys() < expected.keys() and not all(torch.equal(expected[name], last[name]) for name in last)
    assert_same_report(
        json.loads((resumed / "eval_step_4.json").read_text()),
        json.loads((reference / "eval_step_4.json").read_text()),
    )


def killed_after_first_checkpoint(monkeypatch, argv: list[str]) -> None:
    """Run the trainer with `argv` and preempt it right after it saves its first checkpoint."""
    save_checkpoint = train.save_checkpoint

    def save_then_die(accelerator, output_dir, step, keep):
        save_checkpoint(accelerator, output_dir, step, keep)
        raise Preempted

    monkeypatch.setattr(train, "save_checkpoint", save_then_die)
    with pytest.raises(Preempted):
        train.main(argv)
    monkeypatch.undo()
    reset_accelerate_state()


def test_a_resumed_run_keeps_the_frozen_aligned_label_path(tmp_path: Path, towers, synthetic: Path, monkeypatch):
    """Checkpoints hold trainable weights only: the aligned path, frozen for the video steps, is saved beside them
    once, and a resumed run loads it instead of aligning again (Adam's first steps make two alignments differ)."""
    out = tmp_path / "run"
    config = str(tiny_config(tmp_path / "a.yaml", towers, synthetic, out))
    overrides = ["--label_alignment.text_steps", "2", "--checkpoint_every", "1", "--max_steps", "2"]
    killed_after_first_checkpoint(monkeypatch, ["--config", config, *overrides])
    aligned = load_file(out / train.ALIGNED_WEIGHTS)
    assert aligned and all(name.startswith(("prefixes", "connector.")) for name in aligned)
    assert json.loads((out / train.ALIGNMENT_REPORT).read_text())["steps"] == 2
    first_checkpoint = load_file(out / CHECKPOINTS_DIR / "step_1" / "model.safetensors")
    assert not any(name.startswith("label_encoder.") and "gate" not in name for name in first_checkpoint)
    train.main(["--config", config, *overrides, "--resume"])
    final = load_file(out / "final" / "model.safetensors")
    assert all(torch.equal(final[f"label_encoder.{name}"], weight) for name, weight in aligned.items())


def test_runs_that_differ_outside_the_label_path_share_one_cached_alignment(tmp_path: Path, towers, synthetic: Path):
    """`label_alignment.cache_dir`: the first run aligns and saves; a run that differs only in its video steps loads
    the same weights instead of aligning again; one whose label path differs aligns its own."""
    cache = tmp_path / "alignments"
    overrides = ["--label_alignment.text_steps", "2", "--label_alignment.cache_dir", str(cache), "--max_steps", "1"]

    def run(name: str, *more: str) -> Path:
        out = tmp_path / name
        train.main(
            ["--config", str(tiny_config(tmp_path / f"{name}.yaml", towers, synthetic, out)), *overrides, *more]
        )
        reset_accelerate_state()
        return out

    first, second = run("first"), run("second", "--optimizer.gate_lr_scale", "3")
    assert len(list(cache.glob("*.safetensors"))) == 1
    assert "loaded_from" not in json.loads((first / train.ALIGNMENT_REPORT).read_text())
    assert json.loads((second / train.ALIGNMENT_REPORT).read_text())["loaded_from"].startswith(str(cache))
    aligned = [load_file(out / train.ALIGNED_WEIGHTS) for out in (first, second)]
    assert all(torch.equal(aligned[0][name], aligned[1][name]) for name in aligned[0])
    run("third", "--training.seed", "1")
    assert len(list(cache.glob("*.safetensors"))) == 2


def test_an_alignment_made_for_another_label_encoder_is_refused(tmp_path: Path, towers):
    one, other = (
        OvmlvModel.from_towers(towers.clip, towers.llm, **(TINY_MODEL | {"num_prefixes": n})) for n in (1, 2)
    )
    saved = tmp_path / "aligned.safetensors"
    train.save_aligned_path({n: p for n, p in one.label_encoder.named_parameters() if p.requires_grad}, saved)
    path = {n: p for n, p in other.label_encoder.named_parameters() if p.requires_grad}
    with pytest.raises(ValueError, match="does not hold this label encoder's weights: it was made with another model"):
        train.load_aligned_path(path, saved)


LAUNCH_TIMEOUT_S = 300  # 15-25 s here; CI machines can be several times slower


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """Every live process under `pid`. torch's launcher starts each rank in a session of its own, so killing the
    launcher's process group would leave the ranks running (and holding the log files) after a timeout."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        below = children.get(todo.pop(), [])
        found += below
        todo += below
    return found


def launch_two_processes(accelerate_config: Path, train_config: Path, env: dict[str, str], machines: int = 1) -> dict:
    """`ovmlv train` (`accelerate launch`) two ranks on loopback, on one machine or as two machines of one process
    each (two launches, `machine_rank` 0 and 1, sharing the output folder as machines share storage); a hang fails
    the test in minutes, with every rank's log."""
    port = str(free_port())
    commands = []
    for machine in range(machines):
        launcher = load_config_from_file(str(accelerate_config)).to_dict()
        launcher.update(num_machines=machines, machine_rank=machine)
        machine_config = train_config.with_name(f"{train_config.stem}_machine{machine}.yaml")
        machine_config.write_text(yaml.safe_dump(launcher))
        commands.append(
            [
                *(sys.executable, "-m", "ovmlv", "train", "--launch-config", str(machine_config)),
                *("--main-process-ip", "127.0.0.1", "--main-process-port", port, "--config", str(train_config)),
                *("--eval.every_steps", "0", "--training.ddp_timeout_s", "120"),  # a stuck rank errors out first
            ]
        )
    # gloo binds where the host name resolves; a CI machine's name may not resolve to this machine.
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "PYTHONUNBUFFERED": "1", **env}
    logs = [train_config.with_name(f"{train_config.stem}_machine{machine}.log") for machine in range(machines)]
    for code, log in zip(run_together(commands, env, logs, LAUNCH_TIMEOUT_S), logs, strict=True):
        assert code == 0, log.read_text()[-3000:]
    return json.loads(
        (Path(yaml.safe_load(train_config.read_text())["training"]["output_dir"]) / "train_summary.json").read_text()
    )


def run_together(commands: list[list[str]], env: dict[str, str], logs: list[Path], timeout_s: float) -> list[int]:
    """Run `commands` at once from the repository root, each into its log; their exit codes. Past `timeout_s`
    every process they started is killed and the test fails with the logs' ends."""
    processes = []
    for command, log in zip(commands, logs, strict=True):
        with log.open("w") as output:
            processes.append(subprocess.Popen(command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT))
    try:
        for process in processes:
            process.wait(timeout=timeout_s)  # the launches finish together: one wait bounds them all
    except subprocess.TimeoutExpired:
        for pid in [pid for process in processes for pid in [*descendants(process.pid), process.pid]]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for process in processes:
            process.wait()
        ends = "\n".join(f"{log}:\n{log.read_text()[-1500:]}" for log in logs)
        pytest.fail(f"{len(commands)} launches did not finish in {timeout_s} s; their logs end:\n{ends}")
    return [process.returncode for process in processes]


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory, towers, synthetic: Path) -> tuple[Path, dict]:
    """One machine, two processes (DDP over gloo): its output folder and summary."""
    folder = tmp_path_factory.mktemp("ddp")
    summary = launch_two_processes(
        CONFIGS / "accelerate_cpu_2proc.yaml",
        tiny_config(folder / "ddp.yaml", towers, synthetic, folder / "out"),
        {"ACCELERATE_USE_CPU": "true"},
    )
    return folder / "out", summary


def test_two_processes_train_in_step(two_process_run) -> None:
    out, summary = two_process_run
    assert summary["num_processes"] == 2 and summary["distributed_type"] == "DistributedType.MULTI_CPU"
    ranks = summary["processes"]
    assert [rank["rank"] for rank in ranks] == [0, 1] and all(rank["steps_this_run"] == 4 for rank in ranks)
    assert ranks[0]["trainable_sha256"] == ranks[1]["trainable_sha256"]  # gradients were averaged every step
    assert {p.name for p in (out / CHECKPOINTS_DIR / "step_4").glob("random_states_*")} == {
        "random_states_0.pkl",
        "random_states_1.pkl",
    }


def test_two_machines_train_as_one_machine_with_two_processes(tmp_path: Path, towers, synthetic, two_process_run):
    """Two `accelerate launch` (machine_rank 0 and 1, one process each) on this host, sharing the output folder as
    machines share storage: global ranks 0 and 1, each a local main process. The run equals the one-machine run,
    and the main process of the main machine alone writes checkpoints and final/ (a second writer would collide on
    the staging folder's rename)."""
    reference_out, reference = two_process_run
    out = tmp_path / "out"
    summary = launch_two_processes(
        CONFIGS / "accelerate_cpu_2proc.yaml",
        tiny_config(tmp_path / "machines.yaml", towers, synthetic, out),
        {"ACCELERATE_USE_CPU": "true"},
        machines=2,
    )
    assert summary["num_processes"] == 2 and [rank["rank"] for rank in summary["processes"]] == [0, 1]
    assert summary["processes"][0]["trainable_sha256"] == summary["processes"][1]["trainable_sha256"]
    assert_trained_alike(
        load_file(out / "final" / "model.safetensors"), load_file(reference_out / "final" / "model.safetensors")
    )
    for step in ("step_2", "step_4"):
        files = sorted(p.name for p in (out / CHECKPOINTS_DIR / step).iterdir())
        assert files == sorted(p.name for p in (reference_out / CHECKPOINTS_DIR / step).iterdir())
    assert sorted(p.name for p in (out / CHECKPOINTS_DIR).iterdir()) == ["step_2", "step_4"]  # no staging left
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == []


OP_BUILD_TIMEOUT_S = 600  # about 40 s here
BUILD_SHARED_MEMORY_OP = """
from deepspeed.accelerator import get_accelerator
builder = get_accelerator().create_op_builder("ShareMemCommBuilder")
if builder is not None and builder.is_compatible():
    builder.load()
"""


@pytest.fixture(scope="session")
def deepspeed_cpu_env(tmp_path_factory) -> dict[str, str]:
    """The environment of a DeepSpeed launch on CPU. DeepSpeed compiles its shared-memory collective op on first use;
    two ranks compiling it at once under a launch's bound were too slow on CI, and a compile killed midway leaves a
    lock in the shared extensions cache that stalls every later one forever. So the op is compiled once, before any
    launch, into this test session's own cache, under a bound of its own."""
    pytest.importorskip("deepspeed")
    env = {"DS_ACCELERATOR": "cpu", "TORCH_EXTENSIONS_DIR": str(tmp_path_factory.mktemp("torch_extensions"))}
    try:
        subprocess.run(
            [sys.executable, "-c", BUILD_SHARED_MEMORY_OP],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=OP_BUILD_TIMEOUT_S,
            check=True,
        )
    except subprocess.CalledProcessError as error:
        pytest.fail(f"DeepSpeed's shared-memory op did not compile:\n{error.stderr[-3000:]}")
    return env


@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_zero_on_cpu(tmp_path: Path, towers, synthetic: Path, deepspeed_cpu_env, stage: int) -> None:
    """Two ranks under DeepSpeed ZeRO-2 and ZeRO-3. ZeRO-3 runs with `stage3_param_persistence_threshold: 0`: every
    parameter, however small, is partitioned and gathered only when its module is called, so a weight read outside
    its module's forward (or a partitioned weight hashed) shows up here, as it would at real sizes on GPUs."""
    launcher = load_config_from_file(str(CONFIGS / f"accelerate_zero{stage}.yaml")).to_dict()
    deepspeed_config = json.loads((CONFIGS / f"ds_zero{stage}.json").read_text())
    if stage == 3:
        deepspeed_config["zero_optimization"]["stage3_param_persistence_threshold"] = 0
    (tmp_path / "ds.json").write_text(json.dumps(deepspeed_config))
    launcher.update(num_processes=2, deepspeed_config={**launcher["deepspeed_config"]})
    launcher["deepspeed_config"]["deepspeed_config_file"] = str(tmp_path / "ds.json")
    (tmp_path / "zero.yaml").write_text(yaml.safe_dump(launcher))
    out = tmp_path / "zero"
    summary = launch_two_processes(
        tmp_path / "zero.yaml", tiny_config(tmp_path / "z.yaml", towers, synthetic, out), deepspeed_cpu_env
    )
    assert summary["distributed_type"] == "DistributedType.DEEPSPEED" and summary["num_processes"] == 2
    assert summary["processes"][0]["trainable_sha256"] == summary["processes"][1]["trainable_sha256"]
    trained = OvmlvModel.from_pretrained(out / "final")
    trainable_values = sum(p.numel() for p in trained.parameters() if p.requires_grad)
    assert all(process["trainable_values"] == trainable_values for process in summary["processes"])
    assert trained.label_bank is not None
    untrained = OvmlvModel.from_towers(towers.clip, towers.llm, **TINY_MODEL)
    compared, changed = changed_frozen_weights(trained, untrained)
    assert compared > 0 and not changed  # the towers came back whole and untouched
    prefixes = trained.label_encoder.prefixes
    assert prefixes.shape == untrained.label_encoder.prefixes.shape and not torch.equal(
        prefixes, untrained.label_encoder.prefixes
    )
