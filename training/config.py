"""The training run's configuration: dataclasses, filled from a YAML file, then from command-line overrides.

```
accelerate launch training/train.py --config training/configs/paper_recipe.yaml --optimizer.lr 1e-4 --max_steps 500
```

Every field is a knob, named `--section.field` on the command line; a field whose name is unique across sections
may drop its section (`--lr`, `--max_steps`, `--output_dir`, `--resume`). Values are read as YAML (`--model.
temporal_layers 4`, `--data.train '[{manifest: a.jsonl, weight: 2}]'`), then checked against the field's type.
A bool field given without a value means true (`--resume`). The `model` section is free-form: its keys are
`OvmlvConfig` fields, checked against `OvmlvConfig`'s signature so a typo fails here, not after the towers load;
`method: coop` (or `--model.method coop`) starts from a named method's preset (`modeling_ovmlv/method_presets.py`),
which the other keys refine.
Paths in the file are relative to the working directory; video paths in a manifest are relative to the manifest.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ovmlv.yaml_files import load_yaml

CONFIGS = Path(__file__).parent / "configs"  # the shipped training and accelerate configs
DEFAULT_SPLIT = "test"  # the split a set is shown as on the model card (hub_cards/README.md)

LARGEST_NUMBER = 2**63 - 1  # torch's int64 and JSON's integers hold no more


@dataclass
class TowersConfig:
    """The pretrained towers: Hub ids or local folders."""

    clip: str = "openai/clip-vit-base-patch32"
    llm: str | None = "google/flan-t5-xl"  # None when the label encoder needs no LLM


@dataclass
class ManifestConfig:
    """One dataset: a manifest (JSONL or CSV: `video`, `labels`, optional `start`/`end` seconds and `source`).

    vocabulary: one label a line; the training vocabulary is the union over training manifests (negatives N_B are
        drawn from it). Without one, the labels the manifest uses.
    kinds: optional JSON `{label: kind}` (e.g. object / action / scene): evaluation also reports each kind.
    weight: relative sampling weight when several training manifests are mixed.
    name: how logs call this dataset; default the manifest's file stem.
    calibrate: a validation set whose scores choose the exported threshold (paper §4.6: the training datasets'
        validation splits); false for an open-vocabulary test set evaluated alongside.
    """

    manifest: str
    vocabulary: str | None = None
    kinds: str | None = None
    weight: float = 1.0
    name: str | None = None
    calibrate: bool = True

    def __post_init__(self) -> None:
        if self.weight <= 0:
            raise ValueError(f"Manifest {self.manifest}: weight must be positive, got {self.weight}.")
        self.name = self.name or Path(self.manifest).stem


@dataclass
class DataConfig:
    """Videos and labels. `mixing` is `datasets.interleave_datasets`' stopping strategy: "all_exhausted" sees every
    video of every manifest each epoch (smaller ones are oversampled to respect the weights), "first_exhausted"
    stops an epoch when the first manifest runs out."""

    train: list[ManifestConfig] = field(default_factory=list)
    validation: list[ManifestConfig] = field(default_factory=list)
    num_frames: int | None = None  # frames per training clip, segment-random; None: the processor's default (8, §4)
    classes_per_video: int = 4  # a batch of B videos is scored against 4B classes: P_B plus sampled N_B (§3.3)
    mixing: str = "all_exhausted"
    num_workers: int = 4  # DataLoader processes decoding videos
    max_consecutive_bad_videos: int = 16  # a training clip replaces an unreadable video by the next; give up after


@dataclass
class OptimizerConfig:
    """AdamW with a cosine schedule after a linear warm-up (paper supp.: lr 1e-5, 2k warm-up of 30k steps)."""

    lr: float = 1e-5
    weight_decay: float = 1e-7  # new layers
    clip_weight_decay: float = 0.0  # trainable parameters initialised from CLIP
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    max_grad_norm: float = 1.0  # 0 disables clipping
    warmup_steps: int = 2000
    max_steps: int = 30000  # optimizer steps
    # The zero-start gates' learning rate as a multiple of lr (`optimization.parameter_groups`). 10 opened the
    # branch's order path sooner (docs/design.md §4.1) but, at 100 steps on the organism, opened the label gate
    # before the prompts knew anything: seen-label AUPR 0.579 against 0.640 at 1 (frozen CLIP: 0.625).
    gate_lr_scale: float = 1.0
    # The label encoder's gate at its own multiple of lr (None: gate_lr_scale), so that the branch's gates can open
    # fast (50, with model.temporal_frame_weights) while the label gate keeps the class name's lead (docs/design.md §4.3).
    label_gate_lr_scale: float | None = None
    # The label encoder's other new weights (prompts, prefixes, connector) at their own multiple of lr (None: lr);
    # 0 keeps them as text-only alignment left them (docs/design.md §4.4).
    label_path_lr_scale: float | None = None
    # Open-VCLIP++'s weight averaging of the trained weights, applied before the final evaluation and export:
    # "none", "swa" (the mean from averaging_start_step on) or "ema" (decay ema_decay). Not under DeepSpeed.
    weight_averaging: str = "none"
    ema_decay: float = 0.99
    averaging_start_step: int | None = None  # None: after the warm-up, as Open-VCLIP++


@dataclass
class TrainingConfig:
    """The loop, its checkpoints and its logs. A step is one optimizer update of
    per_device_batch_size x gradient_accumulation_steps x processes videos."""

    output_dir: str = "outputs/train"
    seed: int = 0
    per_device_batch_size: int = 12
    gradient_accumulation_steps: int = 1
    # "auto" = bf16 on a GPU that has it, else fp16 on GPU, else no; or no/fp16/bf16. Wins over accelerate launch's.
    mixed_precision: str = "auto"
    gradient_checkpointing: bool = False  # `PreTrainedModel.activation_checkpointing_enable` on the model
    # Intra-op threads per process (torch.set_num_threads); None keeps torch's default. On a small CPU machine, 1
    # leaves the other cores to the decoding workers: spinning OpenMP threads on busy cores make steps 10-40x slower.
    cpu_threads: int | None = None
    log_every: int = 10
    checkpoint_every: int = 1000
    keep_checkpoints: int | None = 3  # newest kept; None keeps all
    resume: bool = False  # continue from the newest complete checkpoint in output_dir (start afresh if there is none)
    overwrite: bool = False  # delete a non-empty output_dir first; without it (or resume) a new run refuses one
    report_to: str = "tensorboard"  # an Accelerate tracker name, "all", or "none"
    # Seconds a collective (all-reduce, barrier) may wait for another process before the run fails: a rank that died
    # or never joined then ends the run with an error instead of leaving the others hanging. Caveat: Accelerate drops
    # a value equal to its NCCL default, 600, so 600 over gloo (CPU) gets torch's gloo default, 1800; use 599 or 601.
    ddp_timeout_s: int = 1800


@dataclass
class EvalConfig:
    """Periodic evaluation on `data.validation`: every video against the whole validation vocabulary."""

    every_steps: int = 10000  # and always after the last step; 0 = only after the last step
    per_device_batch_size: int = 16
    num_frames: int | None = None  # frames per clip; None: data.num_frames, the training clip's
    num_clips: int = 4  # the paper's 4 x 8 frames, clip embeddings averaged
    label_batch_size: int = 256  # labels per label-encoder call when embedding the vocabulary


@dataclass
class LabelAlignmentConfig:
    """Text-only steps before the first video step that fit the LLM-prompted encoder's learnt path to CLIP's reading
    of the LLM's own answer for each training label (`label_alignment.py`; docs/design.md §4.4). 0 steps: none."""

    text_steps: int = 0
    labels_per_step: int = 64
    lr_scale: float = 1.0  # the alignment's peak learning rate as a multiple of optimizer.lr
    answer_items: int = 1  # the answer's leading numbered items CLIP reads (the organism's T5 names the label first)
    max_answer_tokens: int = 40  # the LLM's greedy answer is cut here
    # Freeze the aligned path for the video steps (its gate still trains): video steps under the summed BCE pull a
    # path shared by every label toward one vector (docs/design.md §4.3), and skipping its backward pass is faster.
    freeze_after: bool = True
    # A folder of alignments shared between runs: a run whose label path starts from the same weights, with the
    # same towers, vocabulary, settings and seed as one saved there, loads it instead of aligning again (a sweep
    # over branch or optimiser settings aligns once; `label_alignment.alignment_key`).
    cache_dir: str | None = None


@dataclass
class TrainConfig:
    towers: TowersConfig = field(default_factory=TowersConfig)
    model: dict[str, Any] = field(default_factory=dict)  # OvmlvConfig overrides
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    label_alignment: LabelAlignmentConfig = field(default_factory=LabelAlignmentConfig)

    def __post_init__(self) -> None:
        from ovmlv.modeling_ovmlv import METHODS, OvmlvConfig  # torch: `ovmlv train --help` does not wait for it
        from ovmlv.processing.processing_ovmlv import DEFAULT_NUM_FRAMES, VIDEO_COUNT_LIMITS

        hints = OvmlvConfig.field_types()
        if unknown := sorted(set(self.model) - set(hints)):
            raise ValueError(f"model: unknown OvmlvConfig field(s) {unknown}; known: {sorted(hints)}.")
        self.model = {name: _coerce(value, hints[name], f"model.{name}") for name, value in self.model.items()}
        if self.model.get("method") not in (None, *METHODS):
            raise ValueError(f"model.method={self.model['method']!r} is not one of {METHODS}.")
        if self.data.num_frames is None:
            self.data.num_frames = DEFAULT_NUM_FRAMES
        if self.eval.num_frames is None:
            self.eval.num_frames = self.data.num_frames
        if self.data.mixing not in ("all_exhausted", "first_exhausted"):
            raise ValueError(f"data.mixing must be 'all_exhausted' or 'first_exhausted', got {self.data.mixing!r}.")
        if self.training.mixed_precision not in ("auto", "no", "fp16", "bf16"):
            raise ValueError(
                f"training.mixed_precision must be auto/no/fp16/bf16, got {self.training.mixed_precision!r}."
            )
        names = [spec.name for spec in self.data.validation]
        if len(set(names)) != len(names):
            raise ValueError(f"data.validation: names must be unique (they key the metrics), got {names}.")
        for name, value, limit in (
            ("data.num_frames", self.data.num_frames, "num_frames"),
            ("eval.num_frames", self.eval.num_frames, "num_frames"),
            ("eval.num_clips", self.eval.num_clips, "num_clips"),
        ):
            if not 1 <= value <= VIDEO_COUNT_LIMITS[limit]:
                raise ValueError(f"{name} must be from 1 to {VIDEO_COUNT_LIMITS[limit]}, got {value}.")
        if self.optimizer.weight_averaging not in ("none", "swa", "ema"):
            raise ValueError(
                f"optimizer.weight_averaging must be none/swa/ema, got {self.optimizer.weight_averaging!r}."
            )
        if not 0 < self.optimizer.ema_decay < 1:
            raise ValueError(f"optimizer.ema_decay must lie in (0, 1), got {self.optimizer.ema_decay}.")
        for name in ("gate_lr_scale", "label_gate_lr_scale"):
            value = getattr(self.optimizer, name)
            if value is not None and value <= 0:
                raise ValueError(f"optimizer.{name} must be positive, got {value}.")
        if self.optimizer.label_path_lr_scale is not None and self.optimizer.label_path_lr_scale < 0:
            raise ValueError(
                f"optimizer.label_path_lr_scale must be 0 or more, got {self.optimizer.label_path_lr_scale}."
            )
        alignment = self.label_alignment
        if alignment.text_steps < 0:
            raise ValueError(f"label_alignment.text_steps must be 0 or more, got {alignment.text_steps}.")
        for name in ("labels_per_step", "answer_items", "max_answer_tokens", "lr_scale"):
            if getattr(alignment, name) <= 0:
                raise ValueError(f"label_alignment.{name} must be positive, got {getattr(alignment, name)}.")
        if self.optimizer.warmup_steps > self.optimizer.max_steps:
            raise ValueError("optimizer.warmup_steps is larger than optimizer.max_steps.")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """`value` as the type `annotation` names; YAML's loose scalars (PyYAML reads `1e-5` as a string) made strict."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for inner in (arg for arg in args if arg is not type(None)):
            try:
                return _coerce(value, inner, where)
            except ValueError as err:
                errors.append(err)
        raise errors[0] if len(errors) == 1 else ValueError(f"{where}: expected {annotation}, got {value!r}.")
    if isinstance(annotation, type) and annotation.__module__ not in ("builtins", __name__):
        if not isinstance(value, annotation):  # e.g. a sub-config object (a mapping is read by the union above)
            raise ValueError(f"{where}: expected a {annotation.__name__}, got {value!r}.")
        return value
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if isinstance(value, str) and annotation is ManifestConfig:
            return ManifestConfig(manifest=value)  # a bare path is the common case
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a mapping, got {value!r}.")
        return _build(annotation, value, where)
    if origin in (list, tuple):  # tuple[X, ...]: a variable-length tuple
        values = value if isinstance(value, (list, tuple)) else [value]
        return origin(_coerce(item, args[0], f"{where}[{i}]") for i, item in enumerate(values))
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected a mapping, got {value!r}.")
        return dict(value)
    if annotation is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true or false, got {value!r}.")
        return value
    if annotation in (int, float):
        try:
            number = float(value) if isinstance(value, str) else value
        except ValueError:
            number = None
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise ValueError(f"{where}: expected a number, got {value!r}.")
        if not math.isfinite(number) or abs(number) > LARGEST_NUMBER:
            raise ValueError(f"{where}: {value!r} is out of range; give a finite number below {LARGEST_NUMBER:.0e}.")
        if annotation is int and number != int(number):
            raise ValueError(f"{where}: expected an integer, got {value!r}.")
        return annotation(number)
    if annotation is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ValueError(f"{where}: expected a string, got {value!r}.")
        return str(value)
    raise TypeError(f"{where}: no rule to read a {annotation!r}.")


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    if unknown := sorted(set(values) - names):
        raise ValueError(f"{where}: unknown field(s) {unknown}; known: {sorted(names)}.")
    return cls(**{name: _coerce(value, hints[name], f"{where}.{name}") for name, value in values.items()})


def _sections() -> dict[str, type | None]:
    """Section name -> its dataclass (None for the free-form `model` section)."""
    hints = typing.get_type_hints(TrainConfig)
    return {
        f.name: hints[f.name] if dataclasses.is_dataclass(hints[f.name]) else None
        for f in dataclasses.fields(TrainConfig)
    }


def _qualified_name(key: str) -> str:
    """`lr` -> `optimizer.lr` when exactly one section has a field `lr`; dotted keys pass through."""
    if "." in key:
        return key
    owners = [
        section
        for section, cls in _sections().items()
        if cls is not None and key in {f.name for f in dataclasses.fields(cls)}
    ]
    if len(owners) != 1:
        found = f"is in several sections: {', '.join(f'--{s}.{key}' for s in owners)}" if owners else "is no field"
        raise ValueError(f"--{key} {found}; name it as --section.field.")
    return f"{owners[0]}.{key}"


def _is_bool_field(name: str) -> bool:
    section, _, key = name.partition(".")
    cls = _sections().get(section)
    if cls is None:
        return False
    hint = typing.get_type_hints(cls).get(key)
    return hint is bool


def parse_overrides(tokens: list[str]) -> dict[str, dict[str, Any]]:
    """`--section.field value` / `--field=value` / a bare bool flag -> {section: {field: YAML-read value}}."""
    overrides: dict[str, dict[str, Any]] = {}
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if not token.startswith("--"):
            raise ValueError(f"Expected --section.field, got {token!r}.")
        key, has_value, value = token[2:].partition("=")
        name = _qualified_name(key)
        if not has_value:
            if i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
                value, i = tokens[i + 1], i + 1
            elif _is_bool_field(name):
                value = "true"
            else:
                raise ValueError(f"--{key} needs a value.")
        section, _, field_name = name.partition(".")
        if section not in _sections() or not field_name:
            raise ValueError(f"--{key}: unknown section {section!r}; sections: {sorted(_sections())}.")
        try:
            overrides.setdefault(section, {})[field_name] = load_yaml(value, f"--{key}")
        except yaml.YAMLError as err:
            raise ValueError(f"--{key} {value!r} is no YAML value ({getattr(err, 'problem', err)}).") from None
        i += 1
    return overrides


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """The YAML file (if any), then the command-line overrides on top, validated into a `TrainConfig`."""
    values: dict[str, dict[str, Any]] = {}
    if path is not None:
        try:
            values = load_yaml(Path(path).read_text(encoding="utf-8"), str(path)) or {}
        except yaml.YAMLError as err:  # a syntax error, or a tag safe_load refuses (!!python/object)
            mark = getattr(err, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
            problem = getattr(err, "problem", None) or type(err).__name__
            raise ValueError(f"{path} is not a valid config{where}: {problem}; fix the YAML and rerun.") from None
        if not isinstance(values, dict) or not all(isinstance(v, dict | None) for v in values.values()):
            raise ValueError(f"{path}: a config maps sections to fields (`optimizer:` then `  lr: 1e-5`).")
        if unknown := sorted(set(values) - set(_sections())):
            raise ValueError(f"{path}: unknown section(s) {unknown}; sections: {sorted(_sections())}.")
    values = {section: fields or {} for section, fields in values.items()}  # an empty YAML section reads as None
    for section, fields in parse_overrides(overrides or []).items():
        values[section] = {**values.get(section, {}), **fields}
    return _build(TrainConfig, values, where=str(path or "config"))


def fields_help() -> str:
    """Every overridable field with its default, for --help."""
    lines = ["Any field below overrides the config file: --section.field VALUE, or --field VALUE when unique."]
    for section, cls in _sections().items():
        if cls is None:
            lines.append(
                f"  --{section}.FIELD VALUE   any OvmlvConfig field (method, label_encoder, temporal_layers, ...)"
            )
            continue
        for spec in dataclasses.fields(cls):
            default = spec.default if spec.default is not dataclasses.MISSING else spec.default_factory()
            lines.append(f"  --{section}.{spec.name} (default: {default!r})")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    parser = argparse.ArgumentParser(
        description="Train an open-vocabulary multi-label video classifier (Gupta et al., ECCV 2024).",
        epilog=fields_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", type=Path, help="YAML file (training/configs/*.yaml)")
    args, overrides = parser.parse_known_args(argv)
    return load_config(args.config, overrides)


def add_field_arguments(
    parser: argparse.ArgumentParser, cls: type, help: dict[str, str], choices: dict[str, list[str]]
) -> None:
    """One `--field-name` flag per field of the dataclass `cls`, read as YAML and checked by the rules a config file
    follows (`none` or `null` is None where the field allows it; a list field takes several values); `from_arguments`
    builds the dataclass back."""
    hints = typing.get_type_hints(cls)
    for spec in dataclasses.fields(cls):
        flag = "--" + spec.name.replace("_", "-")
        kwargs: dict[str, Any] = {"help": help.get(spec.name), "choices": choices.get(spec.name), "dest": spec.name}
        if spec.default is dataclasses.MISSING:
            kwargs["required"] = True
        else:
            kwargs["default"] = spec.default
            if "default:" not in (kwargs["help"] or ""):
                kwargs["help"] = f"{kwargs['help'] or ''} (default: %(default)s)".lstrip()
        hint = hints[spec.name]
        if hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(hint) in (list, tuple):
            kwargs["nargs"] = "+"
        else:
            kwargs["type"] = _flag_reader(hint, flag)
        parser.add_argument(flag, **kwargs)


def _flag_reader(hint: Any, flag: str):
    """argparse's `type` for a field: text as the field's type; a string field keeps the text as typed."""
    optional = type(None) in typing.get_args(hint)
    is_text = str in (hint, *typing.get_args(hint))

    def read(text: str) -> Any:
        if optional and text.lower() in ("none", "null"):
            return None
        try:
            return _coerce(text if is_text else load_yaml(text, flag), hint, flag)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    read.__name__ = getattr(hint, "__name__", str(hint))
    return read


def from_arguments(cls: type, args: argparse.Namespace) -> Any:
    """The dataclass `cls` from the flags `add_field_arguments` made."""
    return _build(cls, {spec.name: getattr(args, spec.name) for spec in dataclasses.fields(cls)}, where="arguments")


# On `--resume`, the fields that may differ from the run's train_config.yaml, applied (and logged): how long to train
# (the cosine schedule then ends at the new max_steps), how often to log, checkpoint and evaluate, what to evaluate
# on, and how this machine runs it. Every other field shapes the trajectory the checkpoints belong to (model, towers,
# training data, optimizer, seed, batch, precision), and the optimizer and scheduler states restored from the
# checkpoint would silently keep the old values (a new lr would be recorded but not used): changing one is refused.
CHANGEABLE_ON_RESUME = frozenset(
    {
        "optimizer.max_steps",
        "training.output_dir",  # the same folder, perhaps spelled differently
        "training.resume",
        "training.overwrite",
        "training.log_every",
        "training.checkpoint_every",
        "training.keep_checkpoints",
        "training.report_to",
        "training.cpu_threads",
        "training.ddp_timeout_s",
        "training.gradient_checkpointing",
        "data.validation",
        "data.num_workers",
        "data.max_consecutive_bad_videos",
        "eval.every_steps",
        "eval.per_device_batch_size",
        "eval.num_frames",
        "eval.num_clips",
        "eval.label_batch_size",
    }
)


RUN_CONFIG_NAME = "train_config.yaml"  # the effective configuration, in the run's output_dir


def resumed_run_changes(config: TrainConfig, output_dir: str | Path) -> list[str]:
    """The changes `config` makes to the run in `output_dir` (its train_config.yaml; none without one) as
    "section.field: old -> new", each allowed on resume (`CHANGEABLE_ON_RESUME`); a ValueError names the first
    field that may not change."""
    saved_path = Path(output_dir) / RUN_CONFIG_NAME
    if not saved_path.is_file():
        return []
    before, after = load_config(saved_path).to_dict(), config.to_dict()
    changes = []
    for section, fields in after.items():
        for name in sorted(set(fields) | set(before.get(section, {}))):
            old, new = before.get(section, {}).get(name), fields.get(name)
            if old == new:
                continue
            if f"{section}.{name}" not in CHANGEABLE_ON_RESUME:
                raise ValueError(
                    f"--resume cannot change {section}.{name} ({old!r} in {saved_path}, {new!r} now): the checkpoints "
                    "were trained with the old value, and resuming restores it. Drop the change to continue the "
                    "run, or start a new run (another --output_dir, or --overwrite)."
                )
            changes.append(f"{section}.{name}: {old!r} -> {new!r}")
    return changes


def save_config(config: TrainConfig, path: str | Path) -> None:
    """The effective configuration, as YAML that `--config` reads back."""
    from ovmlv.modeling_ovmlv.atomic_files import write_text_atomically

    write_text_atomically(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
