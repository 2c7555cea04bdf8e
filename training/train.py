"""Train an open-vocabulary multi-label video classifier (Gupta et al., ECCV 2024) with Accelerate.

    ovmlv train --config paper_recipe [--section.field VALUE ...]          # checks the config, then launches:
    accelerate launch training/train.py --config training/configs/paper_recipe.yaml [--section.field VALUE ...]
    accelerate launch --config_file training/configs/accelerate_zero2.yaml training/train.py --config ...

`main` reads as the run's steps, each a function below in that order: build (model and processor) -> start (the
Accelerator, the output folder) -> load the data -> prepare (optimizer and schedule, `accelerator.prepare`) -> resume
-> loop (accumulate, clip, step, log, checkpoint, evaluate) -> evaluate -> publish (final/). Each step scores B
videos per process against P_B ∪ N_B (paper §3.3, `training/batching.py`) with the weighted BCE of the model. Outputs
in `training.output_dir`:
checkpoints/step_N/ (accelerate state, trainable weights only), logs/ (tensorboard), eval_step_N.json,
final/ (`save_pretrained` model + processor + the training vocabulary's label bank; the pipeline loads it),
train_config.yaml (the effective config) and train_summary.json. A new run needs an empty (or new) output_dir:
`--resume` continues the run in it, `--overwrite` deletes it first.

Exact resume: the data order depends on (seed, epoch) only (Accelerate's seedable sampler), the frames of a clip on
(seed, epoch, index), negatives on (seed, process, micro-batch); torch/numpy/python RNG states travel in the
checkpoint, and evaluation runs in a forked RNG, so an interrupted and resumed run ends with the same weights as an
uninterrupted one. Checkpoints and final/ appear only once complete, so a kill at any moment loses at most the steps
since the last checkpoint (`training/checkpointing.py`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import datasets
import torch
import transformers
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import (
    DataLoaderConfiguration,
    InitProcessGroupKwargs,
    ProjectConfiguration,
    gather_object,
    set_seed,
)
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from ovmlv.arguments import EXIT_OK, run_reporting_errors
from ovmlv.modeling_ovmlv import LabelBank, OvmlvModel
from ovmlv.modeling_ovmlv.atomic_files import remove_folder, write_atomically, write_folder_atomically
from ovmlv.modeling_ovmlv.file_locks import locked
from ovmlv.modeling_ovmlv.label_limits import check_label_lengths
from ovmlv.processing import OvmlvProcessor
from ovmlv.training.batching import Vocabulary, negative_label_rng, sample_label_batch
from ovmlv.training.checkpointing import (
    check_output_dir,
    claim_output_dir,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    save_trainable_weights_only,
)
from ovmlv.training.config import (
    RUN_CONFIG_NAME,
    OptimizerConfig,
    TrainConfig,
    TrainingConfig,
    parse_args,
    resumed_run_changes,
    save_config,
)
from ovmlv.training.data import VideoClips, collate_clips, load_training_data
from ovmlv.training.eval_loop import EvalResult, EvalSet, build_eval_set, evaluate_all, write_json
from ovmlv.training.label_alignment import align_label_encoder, alignment_key, learnt_path
from ovmlv.training.metrics import deployment_threshold
from ovmlv.training.optimization import WeightAverage, parameter_groups

logger = get_logger(__name__)
ALIGNMENT_REPORT = "label_alignment.json"  # what the text-only alignment did, beside train_summary.json
ALIGNED_WEIGHTS = "label_alignment.safetensors"  # the aligned label path, frozen for the video steps


def resolve_mixed_precision(choice: str) -> str:
    """ "auto": bf16 where the GPU has it, fp16 on other GPUs, none on CPU. The train config is the one source of
    truth: its choice is passed to the Accelerator, which takes it over `accelerate launch --mixed_precision`."""
    if choice != "auto":
        return choice
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"


def deepspeed_on_cpu() -> bool:
    return os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true" and not torch.cuda.is_available()


def main(argv: list[str] | None = None) -> dict:
    """One run, as the steps below: build, start, load the data, prepare, (resume,) loop, evaluate, publish."""
    config: TrainConfig = parse_args(argv)
    train_cfg = config.training
    output_dir = Path(train_cfg.output_dir)
    # Every process checks before any writes: a new run never mixes its files with an old run's.
    check_output_dir(output_dir, resume=train_cfg.resume, overwrite=train_cfg.overwrite)
    changes = resumed_run_changes(config, output_dir) if train_cfg.resume else []  # refused ones fail here
    set_seed(train_cfg.seed)
    if train_cfg.cpu_threads is not None:
        torch.set_num_threads(train_cfg.cpu_threads)

    model, processor = build(config)
    accelerator = start_accelerator(train_cfg, output_dir)
    run_lock = claim_output_dir(accelerator, output_dir)  # held until the run ends
    start_output_dir(config, accelerator, output_dir, changes)
    data = load_data(config, accelerator, model, processor)
    align_labels(config, accelerator, model, processor, data.vocabulary, output_dir)
    run = prepare(config, output_dir, accelerator, model, processor, data)
    progress = resume(run)
    loop(run, progress)
    evaluate_final(run, progress)
    summary = publish(run, progress)
    # Every rank done before any tears down: a rank that destroys the process group while collectives it took part
    # in (ZeRO-3 prefetches) are still in flight can abort at exit.
    accelerator.wait_for_everyone()
    accelerator.end_training()
    if run_lock is not None:
        run_lock.release()
    return summary


@dataclass
class RunData:
    """The training clips and their loader, the vocabulary negatives come from, and the validation sets."""

    train_clips: VideoClips
    train_dataloader: DataLoader
    vocabulary: Vocabulary
    eval_sets: list[EvalSet]


@dataclass
class TrainingRun:
    """What the steps after `prepare` share: the prepared model, data, optimizer and schedule."""

    config: TrainConfig
    output_dir: Path
    accelerator: Accelerator
    model: torch.nn.Module  # wrapped for DDP/DeepSpeed; `accelerator.unwrap_model` gives the OvmlvModel
    processor: OvmlvProcessor
    data: RunData
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    average: WeightAverage | None  # Open-VCLIP++'s weight averaging, when the config asks for it


@dataclass
class Progress:
    """Where the run stands: optimizer steps done (in all runs, this one), bad videos met, the last evaluation."""

    completed_steps: int = 0
    steps_this_run: int = 0
    skipped_videos: int = 0
    last_eval: dict[str, EvalResult] = field(default_factory=dict)
    last_eval_step: int | None = None
    last_eval_labels: LabelBank | None = None  # the labels the last evaluation encoded, at last_eval_step


def build(config: TrainConfig) -> tuple[OvmlvModel, OvmlvProcessor]:
    """The model on its pretrained towers, new layers initialised as the method says (same seed, same weights in
    every process), and the processor saved with it.

    Built before the Accelerator: under DeepSpeed ZeRO-3 an Accelerator makes transformers build every model
    partitioned (zero.Init), while `from_towers` copies whole CLIP weights into ours; `prepare` partitions later.
    """
    # The branch learns one temporal position per frame of a training clip, unless the config says otherwise.
    model_fields = {"temporal_positions": config.data.num_frames, **config.model}
    model = OvmlvModel.from_towers(config.towers.clip, config.towers.llm, **model_fields)
    if config.training.gradient_checkpointing:
        model.activation_checkpointing_enable()
    # Saved with the model: the pipeline and the commands then serve it as it was evaluated (and calibrated).
    processor = OvmlvProcessor.for_model(
        model,
        config.towers.clip,
        config.towers.llm,
        num_frames=config.eval.num_frames,
        num_clips=config.eval.num_clips,
    )
    return model, processor


def start_accelerator(train_cfg: TrainingConfig, output_dir: Path) -> Accelerator:
    """Processes, mixed precision, accumulation, trackers; one data order for every process; logs from the first."""
    accelerator = Accelerator(
        gradient_accumulation_steps=train_cfg.gradient_accumulation_steps,
        mixed_precision=resolve_mixed_precision(train_cfg.mixed_precision),
        log_with=None if train_cfg.report_to == "none" else train_cfg.report_to,
        project_config=ProjectConfiguration(project_dir=str(output_dir), logging_dir=str(output_dir / "logs")),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=train_cfg.seed),
        # DeepSpeed without GPUs (DS_ACCELERATOR=cpu) needs gloo named; Accelerate would pick NCCL.
        kwargs_handlers=[
            InitProcessGroupKwargs(
                **({"backend": "gloo"} if deepspeed_on_cpu() else {}),
                timeout=timedelta(seconds=train_cfg.ddp_timeout_s),
            )
        ],
    )
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    logger.info(accelerator.state, main_process_only=False)
    if not accelerator.is_local_main_process:
        datasets.utils.logging.set_verbosity_error()
        datasets.utils.logging.disable_progress_bar()
        transformers.utils.logging.set_verbosity_error()
    return accelerator


def start_output_dir(config: TrainConfig, accelerator: Accelerator, output_dir: Path, changes: list[str]) -> None:
    """The run's folder, emptied first under `--overwrite`, with the effective config in it; resumed changes said."""
    for change in changes:
        logger.info(f"Resuming with a changed {change}")
    if accelerator.is_main_process:
        if config.training.overwrite and output_dir.exists():
            remove_folder(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, output_dir / RUN_CONFIG_NAME)
    accelerator.wait_for_everyone()


def load_data(config: TrainConfig, accelerator: Accelerator, model: OvmlvModel, processor: OvmlvProcessor) -> RunData:
    """Mixed training manifests decoded in workers; validation sets scored against their whole vocabulary. Every
    label must fit the text tower with the encoder's prompt: a long one fails now, not at the step that draws it."""
    data_cfg, seed = config.data, config.training.seed
    with accelerator.main_process_first():  # the first process fills the datasets cache, the others read it
        train_data = load_training_data(data_cfg, seed=seed)
        eval_sets = [
            build_eval_set(spec, processor, config.eval, data_cfg.num_workers) for spec in data_cfg.validation
        ]
    train_clips = VideoClips(
        train_data.records,
        processor,
        data_cfg.num_frames,
        sampling="segment_random",
        seed=seed,
        max_consecutive_bad=data_cfg.max_consecutive_bad_videos,
    )
    train_dataloader = DataLoader(
        train_clips,
        batch_size=config.training.per_device_batch_size,
        shuffle=True,
        drop_last=True,  # every step has B videos per process, hence 4B classes
        num_workers=data_cfg.num_workers,
        collate_fn=collate_clips,
        generator=torch.Generator().manual_seed(seed),  # iterators never draw from the global RNG
    )
    vocabulary = train_data.vocabulary
    logger.info(f"{len(train_clips)} training videos, vocabulary of {len(vocabulary)} labels")
    check_label_lengths(vocabulary.labels, processor, model.config, where="the training vocabulary")
    for eval_set in eval_sets:
        check_label_lengths(
            eval_set.vocabulary.labels, processor, model.config, where=f"validation set {eval_set.name!r}"
        )
    return RunData(train_clips, train_dataloader, vocabulary, eval_sets)


def align_labels(
    config: TrainConfig,
    accelerator: Accelerator,
    model: OvmlvModel,
    processor: OvmlvProcessor,
    vocabulary: Vocabulary,
    output_dir: Path,
) -> None:
    """`label_alignment.text_steps` text-only steps on the training vocabulary (`label_alignment.py`), before
    `prepare`: DeepSpeed copies the weights it optimises when it wraps the model. Every process aligns alike (same
    seed), or loads the same alignment from `label_alignment.cache_dir`. With `freeze_after` the aligned path is then
    frozen: the video steps train its gate only, and skip the backward pass through the LLM and the text tower;
    checkpoints hold trainable weights only, so the aligned path is saved beside them (`ALIGNED_WEIGHTS`) and a
    resumed run loads it. Without it, the path trains on and a resumed run takes it from its checkpoint. A label
    encoder without an LLM-prompted path (CoOp, class names, ...) has nothing to align: a recipe shared by several
    methods may keep the setting."""
    settings = config.label_alignment
    if not settings.text_steps:
        return
    encoder = model.label_encoder
    if not hasattr(encoder, "prompted_embedding"):
        logger.info(f"label_alignment: the {model.config.label_encoder!r} label encoder has no LLM path to align")
        return
    resumed = config.training.resume and latest_checkpoint(output_dir, accelerator.num_processes) is not None
    path = learnt_path(model)
    if resumed and not settings.freeze_after:
        return
    if resumed and (output_dir / ALIGNED_WEIGHTS).is_file():
        load_aligned_path(path, output_dir / ALIGNED_WEIGHTS)
    else:
        model.to(accelerator.device)
        report = aligned_or_cached(config, model, processor, vocabulary, path, accelerator.is_local_main_process)
        logger.info(
            f"Label encoder aligned to the LLM's answers in {report['steps']} text steps ({report['seconds']:.0f} s): "
            f"mean cosine of its learnt path to CLIP's reading of them {report['cosine_before']:.3f} -> "
            f"{report['cosine_after']:.3f}"
        )
        if accelerator.is_main_process:
            write_json(output_dir / ALIGNMENT_REPORT, report)
            if settings.freeze_after:
                save_aligned_path(path, output_dir / ALIGNED_WEIGHTS)
        accelerator.wait_for_everyone()
    if settings.freeze_after:
        for parameter in path.values():
            parameter.requires_grad_(False)


def aligned_or_cached(
    config: TrainConfig,
    model: OvmlvModel,
    processor: OvmlvProcessor,
    vocabulary: Vocabulary,
    path: dict[str, torch.nn.Parameter],
    progress: bool,
) -> dict:
    """Align the label path, or load the same alignment from `label_alignment.cache_dir` (one process at a time
    aligns a given key: a second run waits for it, then loads); returns the alignment's report."""
    settings = config.label_alignment
    align = functools.partial(
        align_label_encoder,
        model,
        processor,
        vocabulary.labels,
        settings,
        lr=config.optimizer.lr,
        seed=config.training.seed,
        progress=progress,
    )
    if settings.cache_dir is None:
        return dataclasses.asdict(align())
    towers = (config.towers.clip, config.towers.llm)
    key = alignment_key(model, vocabulary.labels, settings, config.optimizer.lr, config.training.seed, towers)
    weights, report_file = (Path(settings.cache_dir) / f"{key}{suffix}" for suffix in (".safetensors", ".json"))
    with locked(weights):
        if weights.is_file() and report_file.is_file():
            load_aligned_path(path, weights)
            return json.loads(report_file.read_text(encoding="utf-8")) | {"loaded_from": str(weights)}
        report = dataclasses.asdict(align())
        save_aligned_path(path, weights)
        write_json(report_file, report)
        return report


def save_aligned_path(path: dict[str, torch.nn.Parameter], file: Path) -> None:
    weights = {name: parameter.detach().cpu().contiguous() for name, parameter in path.items()}
    write_atomically(file, lambda temporary: save_file(weights, temporary))


def load_aligned_path(path: dict[str, torch.nn.Parameter], file: Path) -> None:
    """Copy a saved alignment into the label path; one made for another label encoder is an error that says so."""
    saved = load_file(file)
    if saved.keys() != path.keys() or any(saved[name].shape != p.shape for name, p in path.items()):
        raise ValueError(
            f"{file} does not hold this label encoder's weights: it was made with another model. Resume with the "
            "run's own settings, or start a new run (another --output_dir, or --overwrite)."
        )
    with torch.no_grad():
        for name, parameter in path.items():
            parameter.copy_(saved[name])
    logger.info(f"Aligned label encoder loaded from {file}")


def optimizer_and_schedule(
    model: OvmlvModel, optim_cfg: OptimizerConfig, num_processes: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """AdamW over the parameter groups, and the warm-up + cosine schedule. Accelerate steps a prepared scheduler
    once per process, hence the scaling."""
    label_gate_scale, label_path_scale = optim_cfg.label_gate_lr_scale, optim_cfg.label_path_lr_scale
    optimizer = torch.optim.AdamW(
        parameter_groups(
            model,
            optim_cfg.weight_decay,
            optim_cfg.clip_weight_decay,
            optim_cfg.lr * optim_cfg.gate_lr_scale,
            None if label_gate_scale is None else optim_cfg.lr * label_gate_scale,
            None if label_path_scale is None else optim_cfg.lr * label_path_scale,
        ),
        lr=optim_cfg.lr,
        betas=(optim_cfg.adam_beta1, optim_cfg.adam_beta2),
        eps=optim_cfg.adam_epsilon,
    )
    scheduler = get_cosine_schedule_with_warmup(
        optimizer,
        num_warmup_steps=optim_cfg.warmup_steps * num_processes,
        num_training_steps=optim_cfg.max_steps * num_processes,
    )
    return optimizer, scheduler


def prepare(
    config: TrainConfig,
    output_dir: Path,
    accelerator: Accelerator,
    model: OvmlvModel,
    processor: OvmlvProcessor,
    data: RunData,
) -> TrainingRun:
    """Optimizer and schedule, then `accelerator.prepare`: wrap for DDP/DeepSpeed, shard the data, move to the
    device; the weight average, when asked for, is registered to travel in checkpoints."""
    optim_cfg = config.optimizer
    optimizer, scheduler = optimizer_and_schedule(model, optim_cfg, accelerator.num_processes)
    if accelerator.state.deepspeed_plugin is not None:  # DeepSpeed clips inside its engine: "auto" takes our norm
        accelerator.state.deepspeed_plugin.fill_match(
            "gradient_clipping", must_match=False, gradient_clipping=optim_cfg.max_grad_norm
        )
    model, optimizer, data.train_dataloader, scheduler = accelerator.prepare(
        model, optimizer, data.train_dataloader, scheduler
    )
    for eval_set in data.eval_sets:
        eval_set.dataloader = accelerator.prepare_data_loader(eval_set.dataloader)
    save_trainable_weights_only(accelerator)
    average = None
    if optim_cfg.weight_averaging != "none":
        if accelerator.state.deepspeed_plugin is not None:
            raise ValueError("optimizer.weight_averaging is not supported under DeepSpeed; set it to 'none'.")
        start = optim_cfg.warmup_steps if optim_cfg.averaging_start_step is None else optim_cfg.averaging_start_step
        average = WeightAverage(
            accelerator.unwrap_model(model), optim_cfg.weight_averaging, optim_cfg.ema_decay, start
        )
        accelerator.register_for_checkpointing(average)  # saved and restored with every checkpoint
    return TrainingRun(config, output_dir, accelerator, model, processor, data, optimizer, scheduler, average)


def resume(run: TrainingRun) -> Progress:
    """Step 0, or under `--resume` the newest complete checkpoint's step with its weights, optimizer and RNG."""
    if not run.config.training.resume:
        return Progress()
    checkpoint = latest_checkpoint(run.output_dir, run.accelerator.num_processes)
    if checkpoint is None:
        logger.warning(f"No complete checkpoint in {run.output_dir}; starting from step 0")
        return Progress()
    completed_steps = load_checkpoint(run.accelerator, run.model, checkpoint)
    logger.info(f"Resumed from {checkpoint} at step {completed_steps}")
    return Progress(completed_steps=completed_steps)


def loop(run: TrainingRun, progress: Progress) -> None:
    """Epochs of micro-batches until `max_steps`: accumulate, clip, step; log, checkpoint and evaluate on optimizer
    steps. A resumed run skips the micro-batches its epoch already took."""
    config, accelerator = run.config, run.accelerator
    accelerator.init_trackers("ovmlv", config=tracker_hparams(config))
    micro_batches_per_epoch = len(run.data.train_dataloader)
    if micro_batches_per_epoch == 0:
        raise ValueError(
            f"Not one full batch of {config.training.per_device_batch_size} videos per process in "
            f"{len(run.data.train_clips)} training videos: lower training.per_device_batch_size."
        )
    accumulation = config.training.gradient_accumulation_steps
    epoch, step_in_epoch = divmod(progress.completed_steps, math.ceil(micro_batches_per_epoch / accumulation))
    running = new_running_totals()
    bar = tqdm(
        total=config.optimizer.max_steps,
        initial=progress.completed_steps,
        desc="train",
        disable=not accelerator.is_local_main_process,
    )
    run.model.train()
    while progress.completed_steps < config.optimizer.max_steps:
        run.data.train_dataloader.set_epoch(epoch)
        run.data.train_clips.set_epoch(epoch)
        skip = step_in_epoch * accumulation
        batches = (
            accelerator.skip_first_batches(run.data.train_dataloader, skip) if skip else run.data.train_dataloader
        )
        step_in_epoch = 0
        for micro_batch, batch in enumerate(batches, start=skip):
            train_micro_batch(run, batch, epoch * micro_batches_per_epoch + micro_batch, running)
            if accelerator.sync_gradients and after_optimizer_step(run, progress, running, epoch, bar):
                break
        epoch += 1
    bar.close()


def train_micro_batch(run: TrainingRun, batch: dict, micro_step: int, running: dict[str, float]) -> None:
    """One micro-batch: B videos against P_B ∪ N_B (each class once), backward, and on an optimizer step clip,
    step and schedule; its loss, classes and bad videos added to `running`."""
    config, accelerator = run.config, run.accelerator
    with accelerator.accumulate(run.model):
        label_batch = sample_label_batch(
            batch["labels"],
            run.data.vocabulary,
            config.data.classes_per_video,
            rng=negative_label_rng(config.training.seed, accelerator.process_index, micro_step),
        )
        label_inputs = run.processor.label_inputs(label_batch.labels)
        outputs = run.model(
            pixel_values_videos=batch["pixel_values_videos"],
            labels=label_batch.targets.to(accelerator.device),
            **{name: tensor.to(accelerator.device) for name, tensor in label_inputs.items()},
        )
        accelerator.backward(outputs.loss)
        if accelerator.sync_gradients and config.optimizer.max_grad_norm > 0:
            accelerator.clip_grad_norm_(run.model.parameters(), config.optimizer.max_grad_norm)
        run.optimizer.step()
        run.scheduler.step()
        run.optimizer.zero_grad()
    running["loss"] += outputs.loss.item()
    running["micro_batches"] += 1
    running["classes"] += len(label_batch.labels)
    running["skipped"] += int(batch["num_skipped_videos"])


def after_optimizer_step(
    run: TrainingRun, progress: Progress, running: dict[str, float], epoch: int, bar: tqdm
) -> bool:
    """Count the step, update the weight average; log, checkpoint and evaluate when due. True after the last step."""
    config, accelerator = run.config, run.accelerator
    progress.completed_steps += 1
    step = progress.completed_steps
    if run.average is not None:
        run.average.update(step)
    progress.steps_this_run += 1
    running["steps"] += 1
    bar.update(1)
    last_step = step == config.optimizer.max_steps
    if step % config.training.log_every == 0 or last_step:
        metrics, skipped = summarise(running, accelerator, run.scheduler.get_last_lr()[0])
        progress.skipped_videos += skipped
        bar.set_postfix(loss=f"{metrics['train/loss']:.4f}")
        metrics.update({"train/skipped_videos": progress.skipped_videos, "train/epoch": epoch})
        accelerator.log(metrics, step=step)
    if step % config.training.checkpoint_every == 0 or last_step:
        save_checkpoint(accelerator, run.output_dir, step, config.training.keep_checkpoints)
    if run.data.eval_sets and config.eval.every_steps > 0 and step % config.eval.every_steps == 0:
        evaluate(run, progress)
    return last_step


def evaluate(run: TrainingRun, progress: Progress) -> None:
    """Every validation set against its whole vocabulary, at the current step (eval_step_N.json)."""
    evaluated = evaluate_all(
        run.model,
        run.processor,
        run.data.eval_sets,
        run.accelerator,
        run.config.eval,
        progress.completed_steps,
        run.output_dir,
    )
    progress.last_eval, progress.last_eval_labels = evaluated.results, evaluated.label_bank
    progress.last_eval_step = progress.completed_steps


def evaluate_final(run: TrainingRun, progress: Progress) -> None:
    """The weights exported, evaluated: the weight average applied first, then an evaluation unless the last step
    just had one."""
    if run.average is not None:  # the averaged weights are the ones evaluated, calibrated and exported
        run.average.apply()
        progress.last_eval_step = None
    if run.data.eval_sets and progress.last_eval_step != progress.completed_steps:
        evaluate(run, progress)


def publish(run: TrainingRun, progress: Progress) -> dict:
    """final/: the model (with the training vocabulary's label bank and the calibrated threshold) and its processor,
    written atomically; train_summary.json. Returns the summary."""
    accelerator, eval_sets = run.accelerator, run.data.eval_sets
    unwrapped = accelerator.unwrap_model(run.model)
    calibration = [
        (progress.last_eval[s.name].targets, progress.last_eval[s.name].scores) for s in eval_sets if s.calibrate
    ]
    if calibration:  # the threshold that maximises the minimum peak F1 over those sets (paper §4.6)
        threshold, min_f1 = deployment_threshold(calibration)
        unwrapped.config.deployment_config.threshold = threshold
        unwrapped.config.deployment_config.threshold_calibrated_on = [
            spec.name for spec in eval_sets if spec.calibrate
        ]
        logger.info(f"Calibrated threshold {threshold:.4f} (min peak F1 over validation sets {min_f1:.4f})")
    state_dict = accelerator.get_state_dict(run.model)  # collective under ZeRO-3
    unwrapped.eval()
    bank = training_label_bank(run, progress)
    if accelerator.is_main_process:
        unwrapped.label_bank = bank
        with write_folder_atomically(run.output_dir / "final") as folder:  # a kill leaves the old final/ or none
            unwrapped.save_pretrained(folder, state_dict=state_dict, safe_serialization=True)
            run.processor.save_pretrained(folder)
    summary = run_summary(
        accelerator,
        unwrapped,
        progress.completed_steps,
        progress.steps_this_run,
        progress.skipped_videos,
        progress.last_eval_step,
    )
    if accelerator.is_main_process:
        write_json(run.output_dir / "train_summary.json", summary)
    return summary


def training_label_bank(run: TrainingRun, progress: Progress) -> LabelBank:
    """The training vocabulary's label bank for the exported model: the embeddings the final evaluation scored
    (and calibrated the threshold on) where it encoded these weights, so no label is encoded twice; else encoded."""
    labels = run.data.vocabulary.labels
    evaluated = progress.last_eval_labels if progress.last_eval_step == progress.completed_steps else None
    if evaluated is not None and all(label in evaluated for label in labels):
        return LabelBank(labels, evaluated.embeddings_for(labels), evaluated.fingerprint)
    model = run.accelerator.unwrap_model(run.model)
    return LabelBank.build(model, run.processor, labels, run.config.eval.label_batch_size, progress=False)


def new_running_totals() -> dict[str, float]:
    """What each process adds up between two log lines."""
    return {"loss": 0.0, "micro_batches": 0, "classes": 0, "skipped": 0, "steps": 0, "since": time.perf_counter()}


def summarise(running: dict[str, float], accelerator: Accelerator, lr: float) -> tuple[dict[str, float], int]:
    """Mean loss and classes per micro-batch since the last log, over processes, and the bad videos met; resets
    `running`."""
    totals = torch.tensor(
        [running["loss"], running["micro_batches"], running["classes"], running["skipped"]],
        dtype=torch.float64,
        device=accelerator.device,
    )
    loss, micro_batches, classes, skipped = accelerator.reduce(totals, "sum").tolist()
    metrics = {
        "train/loss": loss / micro_batches,
        "train/classes_per_batch": classes / micro_batches,
        "train/lr": lr,
        "train/seconds_per_step": (time.perf_counter() - running["since"]) / running["steps"],
    }
    running.update(new_running_totals())
    return metrics, int(skipped)


def run_summary(
    accelerator: Accelerator,
    model: torch.nn.Module,
    completed_steps: int,
    steps_this_run: int,
    skipped_videos: int,
    last_eval_step: int | None,
) -> dict:
    """What the run did, per process: steps taken and a hash of its trainable weights (equal when in sync), and
    how many values it hashed (the whole count: ZeRO-3 shards are gathered first)."""
    digest, values = hashlib.sha256(), 0
    trainable = [(name, parameter) for name, parameter in model.named_parameters() if parameter.requires_grad]
    with whole_parameters(accelerator, [parameter for _, parameter in trainable]):
        for name, parameter in trainable:
            digest.update(name.encode())
            digest.update(parameter.detach().float().cpu().numpy().tobytes())
            values += parameter.numel()
    process = {"rank": accelerator.process_index, "steps_this_run": steps_this_run}
    processes = gather_object([{**process, "trainable_sha256": digest.hexdigest(), "trainable_values": values}])
    return {
        "completed_steps": completed_steps,
        "num_processes": accelerator.num_processes,
        "distributed_type": str(accelerator.distributed_type),
        "skipped_videos": skipped_videos,
        "last_eval_step": last_eval_step,
        "processes": processes,
    }


def whole_parameters(accelerator: Accelerator, parameters: list[torch.nn.Parameter]):
    """A context in which `parameters` hold their whole values on every process: under DeepSpeed ZeRO-3 each
    process keeps only a shard outside its module's forward (every process must enter it: it is a collective)."""
    plugin = accelerator.state.deepspeed_plugin
    if plugin is None or plugin.zero_stage != 3:
        return contextlib.nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters(parameters)


def tracker_hparams(config: TrainConfig) -> dict[str, float | int | str | bool]:
    """The config as flat `section/field` scalars (tensorboard's hparams accept nothing else)."""
    flat = {}
    for section, fields in config.to_dict().items():
        for name, value in fields.items():
            flat[f"{section}/{name}"] = value if isinstance(value, (int, float, str, bool)) else json.dumps(value)
    return flat


def run_launched() -> int:
    """The trainer as `ovmlv train` launches it: a user's mistake or a full disk is one line per process, exit 1."""
    main()
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(run_reporting_errors("train", run_launched))
