"""Train an open-vocabulary multi-label video classifier (Gupta et al., ECCV 2024) with Accelerate.

    ovmlv train --config paper_recipe [--section.field VALUE ...]          # checks the config, then launches:
    accelerate launch training/train.py --config training/configs/paper_recipe.yaml [--section.field VALUE ...]
    accelerate launch --config_file training/configs/accelerate_zero2.yaml training/train.py --config ...

Reads top to bottom: config -> Accelerator -> data -> model -> optimizer and schedule -> prepare -> (resume) ->
loop (accumulate, clip, step, log, checkpoint, evaluate) -> export. Each step scores B videos per process against
P_B ∪ N_B (paper §3.3, `training/batching.py`) with the weighted BCE of the model. Outputs in `training.output_dir`:
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
import hashlib
import json
import logging
import math
import os
import sys
import time
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
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from ovmlv.arguments import EXIT_OK, run_reporting_errors
from ovmlv.modeling_ovmlv import LabelBank, OvmlvModel
from ovmlv.modeling_ovmlv.atomic_files import remove_folder, write_folder_atomically
from ovmlv.modeling_ovmlv.label_limits import check_label_lengths
from ovmlv.processing import OvmlvProcessor
from ovmlv.training.batching import negative_label_rng, sample_label_batch
from ovmlv.training.checkpointing import (
    check_output_dir,
    claim_output_dir,
    latest_checkpoint,
    load_checkpoint,
    save_checkpoint,
    save_trainable_weights_only,
)
from ovmlv.training.config import RUN_CONFIG_NAME, TrainConfig, parse_args, resumed_run_changes, save_config
from ovmlv.training.data import VideoClips, collate_clips, load_training_data
from ovmlv.training.evaluation import EvalResult, build_eval_set, evaluate_all, write_json
from ovmlv.training.metrics import deployment_threshold
from ovmlv.training.optimization import WeightAverage, parameter_groups

logger = get_logger(__name__)


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
    config: TrainConfig = parse_args(argv)
    train_cfg, optim_cfg, data_cfg, eval_cfg = config.training, config.optimizer, config.data, config.eval
    output_dir = Path(train_cfg.output_dir)
    # Every process checks before any writes: a new run never mixes its files with an old run's.
    check_output_dir(output_dir, resume=train_cfg.resume, overwrite=train_cfg.overwrite)
    changes = resumed_run_changes(config, output_dir) if train_cfg.resume else []  # refused ones fail here
    set_seed(train_cfg.seed)
    if train_cfg.cpu_threads is not None:
        torch.set_num_threads(train_cfg.cpu_threads)

    # 1. Model: pretrained towers, new layers initialised as the method says (same seed, same weights everywhere).
    # Built before the Accelerator: under DeepSpeed ZeRO-3 an Accelerator makes transformers build every model
    # partitioned (zero.Init), while `from_towers` copies whole CLIP weights into ours; `prepare` partitions later.
    # The branch learns one temporal position per frame of a training clip, unless the config says otherwise.
    model_fields = {"temporal_positions": data_cfg.num_frames, **config.model}
    model = OvmlvModel.from_towers(config.towers.clip, config.towers.llm, **model_fields)
    if train_cfg.gradient_checkpointing:
        model.activation_checkpointing_enable()
    # Saved with the model: the pipeline and the commands then serve it as it was evaluated (and calibrated).
    processor = OvmlvProcessor.from_towers(
        config.towers.clip,
        config.towers.llm,
        label_input_names=(*model.label_encoder.input_names, *model.label_encoder.loss_input_names),
        num_frames=eval_cfg.num_frames,
        num_clips=eval_cfg.num_clips,
    )

    # 2. Accelerator: processes, mixed precision, accumulation, trackers; one data order for every process.
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
    run_lock = claim_output_dir(accelerator, output_dir)  # held until the run ends
    for change in changes:
        logger.info(f"Resuming with a changed {change}")
    if accelerator.is_main_process:
        if train_cfg.overwrite and output_dir.exists():
            remove_folder(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, output_dir / RUN_CONFIG_NAME)
    accelerator.wait_for_everyone()

    # 3. Data: mixed training manifests decoded in workers; validation sets scored against their whole vocabulary.
    with accelerator.main_process_first():  # the first process fills the datasets cache, the others read it
        train_data = load_training_data(data_cfg, seed=train_cfg.seed)
        eval_sets = [build_eval_set(spec, processor, eval_cfg, data_cfg.num_workers) for spec in data_cfg.validation]
    train_clips = VideoClips(
        train_data.records,
        processor,
        data_cfg.num_frames,
        sampling="segment_random",
        seed=train_cfg.seed,
        max_consecutive_bad=data_cfg.max_consecutive_bad_videos,
    )
    train_dataloader = DataLoader(
        train_clips,
        batch_size=train_cfg.per_device_batch_size,
        shuffle=True,
        drop_last=True,  # every step has B videos per process, hence 4B classes
        num_workers=data_cfg.num_workers,
        collate_fn=collate_clips,
        generator=torch.Generator().manual_seed(train_cfg.seed),  # iterators never draw from the global RNG
    )
    vocabulary = train_data.vocabulary
    logger.info(f"{len(train_clips)} training videos, vocabulary of {len(vocabulary)} labels")
    # Every label must fit the text tower with the encoder's prompt: fail now, not at the step that draws it.
    check_label_lengths(vocabulary.labels, processor, model.config, where="the training vocabulary")
    for eval_set in eval_sets:
        check_label_lengths(
            eval_set.vocabulary.labels, processor, model.config, where=f"validation set {eval_set.name!r}"
        )

    # 4. Optimizer and schedule. Accelerate steps a prepared scheduler once per process, hence the scaling.
    optimizer = torch.optim.AdamW(
        parameter_groups(
            model, optim_cfg.weight_decay, optim_cfg.clip_weight_decay, optim_cfg.lr * optim_cfg.gate_lr_scale
        ),
        lr=optim_cfg.lr,
        betas=(optim_cfg.adam_beta1, optim_cfg.adam_beta2),
        eps=optim_cfg.adam_epsilon,
    )
    scheduler = get_cosine_schedule_with_warmup(
        optimizer,
        num_warmup_steps=optim_cfg.warmup_steps * accelerator.num_processes,
        num_training_steps=optim_cfg.max_steps * accelerator.num_processes,
    )

    # 5. Prepare: wrap for DDP/DeepSpeed, shard the data, move to the device.
    if accelerator.state.deepspeed_plugin is not None:  # DeepSpeed clips inside its engine: "auto" takes our norm
        accelerator.state.deepspeed_plugin.fill_match(
            "gradient_clipping", must_match=False, gradient_clipping=optim_cfg.max_grad_norm
        )
    model, optimizer, train_dataloader, scheduler = accelerator.prepare(model, optimizer, train_dataloader, scheduler)
    for eval_set in eval_sets:
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

    completed_steps = 0
    checkpoint = latest_checkpoint(output_dir, accelerator.num_processes) if train_cfg.resume else None
    if checkpoint is not None:
        completed_steps = load_checkpoint(accelerator, model, checkpoint)
        logger.info(f"Resumed from {checkpoint} at step {completed_steps}")
    elif train_cfg.resume:
        logger.warning(f"No complete checkpoint in {output_dir}; starting from step 0")

    accelerator.init_trackers("ovmlv", config=tracker_hparams(config))
    micro_batches_per_epoch = len(train_dataloader)
    if micro_batches_per_epoch == 0:
        raise ValueError(
            f"Not one full batch of {train_cfg.per_device_batch_size} videos per process in {len(train_clips)} "
            "training videos: lower training.per_device_batch_size."
        )
    steps_per_epoch = math.ceil(micro_batches_per_epoch / train_cfg.gradient_accumulation_steps)
    epoch, step_in_epoch = divmod(completed_steps, steps_per_epoch)
    steps_this_run = 0
    running = new_running_totals()
    skipped_videos = 0
    last_eval: dict[str, EvalResult] = {}
    last_eval_step = None
    progress = tqdm(
        total=optim_cfg.max_steps, initial=completed_steps, desc="train", disable=not accelerator.is_local_main_process
    )

    # 6. The loop: accumulate micro-batches, clip, step; log, checkpoint and evaluate on optimizer steps.
    model.train()
    while completed_steps < optim_cfg.max_steps:
        train_dataloader.set_epoch(epoch)
        train_clips.set_epoch(epoch)
        skip = step_in_epoch * train_cfg.gradient_accumulation_steps
        batches = accelerator.skip_first_batches(train_dataloader, skip) if skip else train_dataloader
        step_in_epoch = 0
        for micro_batch, batch in enumerate(batches, start=skip):
            micro_step = epoch * micro_batches_per_epoch + micro_batch
            with accelerator.accumulate(model):
                label_batch = sample_label_batch(
                    batch["labels"],
                    vocabulary,
                    data_cfg.classes_per_video,
                    rng=negative_label_rng(train_cfg.seed, accelerator.process_index, micro_step),
                )
                label_inputs = processor.label_inputs(label_batch.labels)  # each class once: P_B ∪ N_B
                outputs = model(
                    pixel_values_videos=batch["pixel_values_videos"],
                    labels=label_batch.targets.to(accelerator.device),
                    **{name: tensor.to(accelerator.device) for name, tensor in label_inputs.items()},
                )
                accelerator.backward(outputs.loss)
                if accelerator.sync_gradients and optim_cfg.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(model.parameters(), optim_cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            running["loss"] += outputs.loss.item()
            running["micro_batches"] += 1
            running["classes"] += len(label_batch.labels)
            running["skipped"] += int(batch["num_skipped_videos"])
            if not accelerator.sync_gradients:
                continue

            completed_steps += 1
            if average is not None:
                average.update(completed_steps)
            steps_this_run += 1
            running["steps"] += 1
            progress.update(1)
            last_step = completed_steps == optim_cfg.max_steps
            if completed_steps % train_cfg.log_every == 0 or last_step:
                metrics, skipped = summarise(running, accelerator, scheduler.get_last_lr()[0])
                skipped_videos += skipped
                progress.set_postfix(loss=f"{metrics['train/loss']:.4f}")
                metrics.update({"train/skipped_videos": skipped_videos, "train/epoch": epoch})
                accelerator.log(metrics, step=completed_steps)
            if completed_steps % train_cfg.checkpoint_every == 0 or last_step:
                save_checkpoint(accelerator, output_dir, completed_steps, train_cfg.keep_checkpoints)
            if eval_sets and eval_cfg.every_steps > 0 and completed_steps % eval_cfg.every_steps == 0:
                last_eval = evaluate_all(
                    model, processor, eval_sets, accelerator, eval_cfg, completed_steps, output_dir
                )
                last_eval_step = completed_steps
            if last_step:
                break
        epoch += 1
    progress.close()
    if average is not None:  # the averaged weights are the ones evaluated, calibrated and exported
        average.apply()
        last_eval_step = None
    if eval_sets and last_eval_step != completed_steps:
        last_eval = evaluate_all(model, processor, eval_sets, accelerator, eval_cfg, completed_steps, output_dir)
        last_eval_step = completed_steps

    # 7. Export: save_pretrained model (+ label bank of the training vocabulary, calibrated threshold) and processor.
    final_dir = output_dir / "final"
    unwrapped = accelerator.unwrap_model(model)
    calibration = [(last_eval[s.name].targets, last_eval[s.name].scores) for s in eval_sets if s.calibrate]
    if calibration:  # the threshold that maximises the minimum peak F1 over those sets (paper §4.6)
        threshold, min_f1 = deployment_threshold(calibration)
        unwrapped.config.threshold = threshold
        unwrapped.config.threshold_calibrated_on = [spec.name for spec in eval_sets if spec.calibrate]
        logger.info(f"Calibrated threshold {threshold:.4f} (min peak F1 over validation sets {min_f1:.4f})")
    state_dict = accelerator.get_state_dict(model)  # collective under ZeRO-3
    unwrapped.eval()
    bank = LabelBank.build(unwrapped, processor, vocabulary.labels, eval_cfg.label_batch_size, progress=False)
    if accelerator.is_main_process:
        unwrapped.label_bank = bank
        with write_folder_atomically(final_dir) as folder:  # a kill leaves the previous final/ or none, never a part
            unwrapped.save_pretrained(folder, state_dict=state_dict, safe_serialization=True)
            processor.save_pretrained(folder)

    summary = run_summary(accelerator, unwrapped, completed_steps, steps_this_run, skipped_videos, last_eval_step)
    if accelerator.is_main_process:
        write_json(output_dir / "train_summary.json", summary)
    # Every rank done before any tears down: a rank that destroys the process group while collectives it took part
    # in (ZeRO-3 prefetches) are still in flight can abort at exit.
    accelerator.wait_for_everyone()
    accelerator.end_training()
    if run_lock is not None:
        run_lock.release()
    return summary


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
