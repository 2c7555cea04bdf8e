"""A label that names a category, scored as the best of its members (`label_encoder_config.category_members`).

"Red curved shape" is present when a red circle or a red ring is: a disjunction, which one embedding per label
cannot hold (the cosine to a mean of two directions is high for neither alone). The LLM knows the members: asked
the label encoder's instruction, it defines the category it names ("... 6. curved shape: circle or ring"). A label
whose answer defines one of its own words so is scored as the best of itself and the label with that word replaced
by each member ("red circle", "red ring"); every other label is scored as before.

Its embeddings are then M slots wide, (C, M * D): the label's own embedding, then its members', the unused slots
repeating the label's own (a repeat cannot change a maximum). `ScoreHead` takes the maximum over the slots. Slots
make a bank of such labels a plain (C, width) table, stored and loaded as every other bank.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import torch
from transformers.utils.logging import tqdm

from .fixed_llm_prompts import parse_descriptors

ANSWER_BATCH = 64  # labels per greedy-generation call
MEMBER_ANSWER_TOKENS = 64  # a composite label's definition item comes after its parts' features
_DEFINITION = re.compile(r"^(?P<word>[^:]+?)\s*:\s*(?P<members>.+)$")
_MEMBER_SPLIT = re.compile(r",|\bor\b")


def llm_answers(
    model: torch.nn.Module, processor, labels: Sequence[str], max_new_tokens: int, progress: bool = False
) -> list[str]:
    """The LLM's greedy answer to the label encoder's instruction (no prefixes) for each label, as text."""
    llm, tokenizer = model.label_encoder.llm, processor.llm_tokenizer
    answers = []
    starts = range(0, len(labels), ANSWER_BATCH)
    for start in tqdm(starts, desc="Asking the LLM", unit="batch", disable=not progress or len(starts) < 2):
        inputs = processor.label_inputs(list(labels[start : start + ANSWER_BATCH]))
        with torch.inference_mode():
            generated = llm.generate(
                input_ids=inputs["llm_input_ids"].to(llm.device),
                attention_mask=inputs["llm_attention_mask"].to(llm.device),
                max_new_tokens=max_new_tokens,
                do_sample=False,
                num_beams=1,
            )
        answers += tokenizer.batch_decode(generated, skip_special_tokens=True)
    return answers


def category_members(label: str, answer: str) -> list[str]:
    """The label with the category it names replaced by each member, from the first answer item that defines a word
    of the label by two or more members ("curved shape: circle or ring"); [] when no item does."""
    for item in parse_descriptors(answer):
        definition = _DEFINITION.match(item)
        if definition is None:
            continue
        word = re.compile(rf"(?<!\w){re.escape(definition['word'])}(?!\w)")
        members = [member.strip() for member in _MEMBER_SPLIT.split(definition["members"]) if member.strip()]
        if len(members) > 1 and word.search(label):
            return list(dict.fromkeys(word.sub(member, label, count=1) for member in members))
    return []


def member_slots(labels: Sequence[str], answers: Sequence[str], slots: int) -> list[list[str]]:
    """Each label's `slots` texts: itself, its members (the first slots - 1), then itself again."""
    rows = []
    for label, answer in zip(labels, answers, strict=True):
        texts = [label, *(member for member in category_members(label, answer) if member != label)][:slots]
        rows.append(texts + [label] * (slots - len(texts)))
    return rows


def best_slot_scores(video_embeds: torch.Tensor, label_embeds: torch.Tensor, dim: int) -> torch.Tensor:
    """(B, D) x (C, M * D) -> (B, C) cosines, each label's best over its M slots."""
    slots = label_embeds.unflatten(-1, (-1, dim))  # (C, M, D)
    return torch.einsum("bd,cmd->bcm", video_embeds, slots).amax(dim=-1)
