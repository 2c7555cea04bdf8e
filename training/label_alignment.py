"""Text-only alignment of the LLM-prompted label encoder: teach its learnt path CLIP's reading of the LLM's answer.

The LLM knows what a label means where CLIP does not (a synonym, a category): asked the encoder's instruction, the
organism's T5 answers "tile" with "square 2. square shape 3. ...", and frozen CLIP reading that first item scores
the synonym as well as the canonical label. The paper's learnt path (prefixes, soft decoding, prompt transformer,
soft-prompted CLIP text) starts as noise to CLIP and, with about three video batches per label, cannot learn that
reading from videos in a short budget (docs/design.md §4.3). Before the first video step, these steps fit f_prompted
to the CLIP text embedding of the LLM's own greedy answer (its first `answer_items` items, read as the fixed-LLM-prompt
baseline reads descriptors) over the training vocabulary: labels only, no videos, no human annotation. The label gate
stays where it is (0 under `start_at_zero_shot`), so the model still scores exactly as its zero-shot start; the video
steps then open the gate as far as the videos say. docs/design.md §4.4 has the measurements.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import get_cosine_schedule_with_warmup

from ovmlv.modeling_ovmlv import OvmlvModel
from ovmlv.modeling_ovmlv.fixed_llm_prompts import parse_descriptors
from ovmlv.modeling_ovmlv.label_limits import text_context_length
from ovmlv.modeling_ovmlv.label_members import ANSWER_BATCH, llm_answers
from ovmlv.processing import OvmlvProcessor

from .config import LabelAlignmentConfig
from .optimization import is_gate


@dataclass(frozen=True)
class AlignmentReport:
    """What alignment did: steps, labels, the mean cosine of f_prompted to its target before and after, seconds."""

    steps: int
    labels: int
    cosine_before: float
    cosine_after: float
    seconds: float


def clip_text_embeddings(model: OvmlvModel, processor: OvmlvProcessor, texts: Sequence[str]) -> torch.Tensor:
    """(len(texts), D) unit CLIP text embeddings of plain texts (cut to the text tower's context)."""
    tower = model.label_encoder.text_tower
    padding = dict(padding="max_length", max_length=processor.text_length) if processor.text_length else {}
    context = text_context_length(processor, model.config)
    tokens = processor.tokenizer(
        list(texts), **({"padding": True} | padding), truncation=True, max_length=context, return_tensors="pt"
    )
    with torch.inference_mode():
        return F.normalize(tower(tokens["input_ids"], tokens["attention_mask"]), dim=-1)


def alignment_targets(
    model: OvmlvModel, processor: OvmlvProcessor, labels: Sequence[str], config: LabelAlignmentConfig
) -> torch.Tensor:
    """(C, D) unit targets: the normalised mean of CLIP's embeddings of each label's first answer items (the label
    itself when the LLM answered nothing)."""
    answers = llm_answers(model, processor, labels, config.max_answer_tokens)
    items = [
        parse_descriptors(answer)[: config.answer_items] or [label]
        for label, answer in zip(labels, answers, strict=True)
    ]
    flat = clip_text_embeddings(model, processor, [item for label_items in items for item in label_items])
    rows, start = [], 0
    for label_items in items:
        rows.append(flat[start : start + len(label_items)].mean(0))
        start += len(label_items)
    return F.normalize(torch.stack(rows), dim=-1)


def align_label_encoder(
    model: OvmlvModel,
    processor: OvmlvProcessor,
    labels: Sequence[str],
    config: LabelAlignmentConfig,
    lr: float,
    seed: int,
    progress: bool = True,
) -> AlignmentReport:
    """Fit the label encoder's learnt path (every trainable weight of it but the gate) to `alignment_targets` on
    `labels` for `config.text_steps` AdamW steps of `config.labels_per_step` labels (warm-up then cosine, from `lr`
    times `config.lr_scale`). The same seed gives the same weights in every process."""
    encoder = model.label_encoder
    if not hasattr(encoder, "prompted_embedding"):
        raise ValueError(
            f"label_alignment.text_steps={config.text_steps} needs the LLM-prompted label encoder; this model's is "
            f"{model.config.label_encoder!r}. Set label_alignment.text_steps to 0."
        )
    start = time.perf_counter()
    targets = alignment_targets(model, processor, labels, config)
    optimizer = torch.optim.AdamW(learnt_path(model).values(), lr=lr * config.lr_scale, weight_decay=0.0)
    warmup = min(max(1, config.text_steps // 10), config.text_steps)
    schedule = get_cosine_schedule_with_warmup(optimizer, warmup, config.text_steps)
    generator = torch.Generator().manual_seed(seed)
    batch = min(config.labels_per_step, len(labels))
    cosine_before = mean_cosine(model, processor, labels, targets)
    was_training = encoder.training
    encoder.train()
    with torch.random.fork_rng():  # dropout draws from its own seed: the same weights whatever ran before
        torch.manual_seed(seed)
        for _ in tqdm(range(config.text_steps), desc="Aligning the label encoder", unit="step", disable=not progress):
            rows = torch.randperm(len(labels), generator=generator)[:batch]
            prompted = prompted_embeddings(model, processor, [labels[i] for i in rows])
            loss = (1 - (prompted * targets[rows]).sum(-1)).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
    encoder.train(was_training)
    return AlignmentReport(
        steps=config.text_steps,
        labels=len(labels),
        cosine_before=cosine_before,
        cosine_after=mean_cosine(model, processor, labels, targets),
        seconds=time.perf_counter() - start,
    )


def learnt_path(model: OvmlvModel) -> dict[str, torch.nn.Parameter]:
    """The label encoder's trainable weights but its gate (prefixes or LoRA, connector): what alignment fits, what
    `freeze_after` freezes and what a saved alignment holds, by name."""
    return {name: p for name, p in model.label_encoder.named_parameters() if p.requires_grad and not is_gate(name)}


def prompted_embeddings(model: OvmlvModel, processor: OvmlvProcessor, labels: Sequence[str]) -> torch.Tensor:
    """(C, D) f_prompted of `labels` (distinct), through the encoder's own forward path."""
    inputs = processor.label_inputs(list(labels))
    names = ("input_ids", "attention_mask", "llm_input_ids", "llm_attention_mask")
    device = next(model.label_encoder.parameters()).device
    return model.label_encoder.prompted_embedding(*(inputs[name].to(device) for name in names))


def mean_cosine(model: OvmlvModel, processor: OvmlvProcessor, labels: Sequence[str], targets: torch.Tensor) -> float:
    """The mean cosine between f_prompted and its target over `labels`."""
    total = 0.0
    with torch.inference_mode():
        for start in range(0, len(labels), ANSWER_BATCH):
            rows = slice(start, start + ANSWER_BATCH)
            total += float((prompted_embeddings(model, processor, labels[rows]) * targets[rows]).sum())
    return total / max(1, len(labels))


def alignment_key(
    model: OvmlvModel, labels: Sequence[str], config: LabelAlignmentConfig, lr: float, seed: int, towers: Sequence[str]
) -> str:
    """SHA-256 of everything an alignment's result depends on: the label encoder's settings and the starting weights
    of its learnt path, the towers it reads (`towers`: their names or folders), the labels, the alignment's settings,
    learning rate and seed. Runs that differ elsewhere (the temporal branch, the video steps' optimiser) share it."""
    settings = {name: value for name, value in asdict(config).items() if name not in ("cache_dir", "freeze_after")}
    model_config = model.config
    described = {
        "label_encoder": model_config.label_encoder,
        # how labels are scored (category members) does not touch the path the alignment fits
        "label_encoder_config": {
            name: value
            for name, value in model_config.label_encoder_config.to_dict().items()
            if name != "category_members"
        },
        "start_at_zero_shot": model_config.start_at_zero_shot,
        "towers": list(towers),
        "labels": list(labels),
        "settings": settings,
        "lr": lr,
        "seed": seed,
    }
    digest = hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode())
    for name, parameter in sorted(learnt_path(model).items()):
        digest.update(f"{name}|{parameter.dtype}|{tuple(parameter.shape)}|".encode())
        digest.update(parameter.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
