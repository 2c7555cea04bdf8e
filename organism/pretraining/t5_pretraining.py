"""Pretraining of the organism's tiny T5 ("LLM") on the world's text corpus (`corpus`), and the test of what it knows.

The model is transformers' `T5ForConditionalGeneration` with Flan-T5's layout: gated-GELU feed-forward, the input
embeddings shared by encoder and decoder, and an output head of its own (`tie_word_embeddings: false`, its own
`lm_head.weight`), as every Flan-T5 on the Hub. Built tied, then only the head is untied (`untie_lm_head`): a T5
built from a config that says false unties the encoder's and decoder's input embeddings from `shared` as well.

What it must know (docs/organism.md): a synonym's encoder state, mean-pooled over its tokens, is nearer its
canonical concept's than any other concept's (`synonym_nearness`); asked "is {name} {category}?", it says yes
sooner for the names of a category's members than for the other concepts' of its kind (`category_answer_auroc`).
`category_auroc` measures the same ranking with encoder states alone (the history's figure).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import T5Config, T5ForConditionalGeneration, T5Tokenizer

from ..synonyms import SYNONYMS
from ..tiny_towers import untied_t5
from ..world_labels import CATEGORIES
from .schedule import warmup_cosine

# The score of an answer that says neither yes nor no: below any log-probability difference, and finite, so that two
# such answers tie (half a pair each in the AUROC) instead of making NaN.
NO_VERDICT = -1e9


@dataclass
class T5PretrainingConfig:
    """The tiny T5's size and its pretraining recipe."""

    d_model: int = 64
    d_ff: int = 256
    num_layers: int = 3  # encoder and decoder alike
    num_heads: int = 4
    batch_size: int = 48
    steps: int = 1500
    lr: float = 2e-3
    warmup_steps: int = 200
    weight_decay: float = 0.01
    eval_every: int = 300


def build_t5(tokenizer: T5Tokenizer, config: T5PretrainingConfig) -> T5ForConditionalGeneration:
    """A randomly initialised, untied T5 of `config`'s size for `tokenizer`."""
    t5_config = T5Config(
        vocab_size=len(tokenizer),
        d_model=config.d_model,
        d_kv=config.d_model // config.num_heads,
        d_ff=config.d_ff,
        num_layers=config.num_layers,
        num_decoder_layers=config.num_layers,
        num_heads=config.num_heads,
        feed_forward_proj="gated-gelu",
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    return untied_t5(t5_config)


@torch.no_grad()
def encoder_states(model: T5ForConditionalGeneration, tokenizer: T5Tokenizer, texts: list[str]) -> torch.Tensor:
    """(N, d_model) encoder last hidden states, mean-pooled over each text's tokens (its end token included)."""
    tokens = tokenizer(texts, padding=True, return_tensors="pt")
    hidden = model.get_encoder()(**tokens).last_hidden_state  # (N, W, d)
    mask = tokens["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1)


def synonym_nearness(model: T5ForConditionalGeneration, tokenizer: T5Tokenizer, concepts: list[str]) -> dict:
    """For every synonym of `concepts`: is its encoder state nearer (cosine) its canonical concept's than any other
    concept's? The fraction over all synonyms, and the synonyms that miss with the concept they land nearest."""
    was_training = model.training
    model.eval()
    concept_states = F.normalize(encoder_states(model, tokenizer, concepts), dim=-1)
    synonyms = [(synonym, concept) for concept in concepts for synonym in SYNONYMS[concept]]
    synonym_states = F.normalize(encoder_states(model, tokenizer, [synonym for synonym, _ in synonyms]), dim=-1)
    nearest = (synonym_states @ concept_states.T).argmax(1).tolist()
    misses = {
        synonym: concepts[index]
        for (synonym, concept), index in zip(synonyms, nearest, strict=True)
        if concepts[index] != concept
    }
    model.train(was_training)
    return {"fraction": round(1 - len(misses) / len(synonyms), 4), "synonyms": len(synonyms), "misses": misses}


def auroc(positive: np.ndarray, scores: np.ndarray) -> float:
    """The share of (positive, negative) pairs that `scores` orders right, ties counting half."""
    difference = scores[positive][:, None] - scores[~positive][None, :]
    return float((difference > 0).mean() + (difference == 0).mean() / 2)


def category_auroc(
    model: T5ForConditionalGeneration, tokenizer: T5Tokenizer, candidates: dict[str, tuple[str, ...]]
) -> dict:
    """For every category: the AUROC of the cosine between its encoder state and each candidate concept's (the
    world's concepts of its kind) at telling its members from the rest; the mean and the worst over categories."""
    was_training = model.training
    model.eval()
    per_category = {}
    for category, concepts in candidates.items():
        states = F.normalize(encoder_states(model, tokenizer, [category, *concepts]), dim=-1)
        similarity = (states[1:] @ states[0]).numpy()
        members = np.array([concept in CATEGORIES[category] for concept in concepts])
        per_category[category] = round(float(auroc(members, similarity)), 4)
    model.train(was_training)
    values = list(per_category.values())
    return {"mean": round(float(np.mean(values)), 4), "min": min(values), "per_category": per_category}


@torch.no_grad()
def category_answer_auroc(
    model: T5ForConditionalGeneration, tokenizer: T5Tokenizer, candidates: dict[str, tuple[str, ...]]
) -> dict:
    """For every category: the AUROC of the T5's verdict on "is {name} {category}?" at telling the names (canonical
    and synonyms) of its members from those of the other candidate concepts. The T5 answers greedily as its corpus
    taught it (the concept, the category's definition, then "yes" or "no"); the verdict's score is
    log p(yes) - log p(no) where it says one of them (an answer with neither scores `NO_VERDICT`, the most certain
    no). The mean and the worst over categories."""
    was_training = model.training
    model.eval()
    yes, no = (tokenizer(word, add_special_tokens=False)["input_ids"][0] for word in ("yes", "no"))
    per_category = {}
    for category, concepts in candidates.items():
        names = [(name, concept) for concept in concepts for name in (concept, *SYNONYMS.get(concept, ()))]
        inputs = tokenizer([f"is {name} {category}?" for name, _ in names], padding=True, return_tensors="pt")
        answer = model.generate(
            **inputs, max_new_tokens=48, do_sample=False, output_scores=True, return_dict_in_generate=True
        )
        log_probs = torch.stack(answer.scores, 1).log_softmax(-1)  # (N, steps, vocab)
        said = answer.sequences[:, 1:]  # without the decoder's start token
        verdicts = []
        for row, tokens in enumerate(said.tolist()):
            steps = [step for step, token in enumerate(tokens) if token in (yes, no)]
            step_log_probs = log_probs[row, steps[-1]] if steps else None
            verdicts.append(NO_VERDICT if step_log_probs is None else float(step_log_probs[yes] - step_log_probs[no]))
        members = np.array([concept in CATEGORIES[category] for _, concept in names])
        per_category[category] = round(auroc(members, np.array(verdicts)), 4)
    model.train(was_training)
    values = list(per_category.values())
    return {"mean": round(float(np.mean(values)), 4), "min": min(values), "per_category": per_category}


def per_pair_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy averaged over each answer's tokens, then over the pairs: every pair counts once, whatever its
    length. Averaged over the batch's tokens instead, the one-word yes/no of a membership question weighed about 1 %
    of a batch against the long feature answers, and the T5 never learnt membership (0.55 AUROC)."""
    losses = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=-100, reduction="none")  # (B, L)
    answered = (labels != -100).sum(1).clamp(min=1)
    return (losses.sum(1) / answered).mean()


def pretrain_t5(
    model: T5ForConditionalGeneration,
    tokenizer: T5Tokenizer,
    pairs: list[tuple[str, str]],
    concepts: list[str],
    categories: dict[str, tuple[str, ...]],
    config: T5PretrainingConfig,
    seed: int,
) -> dict:
    """Teacher-forced cross-entropy on (prompt, answer) pairs drawn uniformly; returns the loss and nearness history."""
    rng = np.random.default_rng([seed, 3])
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    scheduler = warmup_cosine(optimizer, config.warmup_steps, config.steps)
    history: list[dict] = []
    start = time.perf_counter()
    model.train()
    progress = tqdm(range(config.steps), desc="organism T5", unit="step")
    for step in progress:
        batch = [pairs[i] for i in rng.integers(len(pairs), size=config.batch_size)]
        inputs = tokenizer([prompt for prompt, _ in batch], padding=True, return_tensors="pt")
        labels = tokenizer([answer for _, answer in batch], padding=True, return_tensors="pt")["input_ids"]
        labels[labels == tokenizer.pad_token_id] = -100
        loss = per_pair_loss(model(**inputs, labels=labels).logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        progress.set_postfix(loss=f"{loss.item():.3f}")
        if (step + 1) % config.eval_every == 0 or step + 1 == config.steps:
            nearness = synonym_nearness(model, tokenizer, concepts)
            entry = {"step": step + 1, "seconds": round(time.perf_counter() - start, 1), "loss": round(loss.item(), 4)}
            ranking = category_auroc(model, tokenizer, categories)
            answers = category_answer_auroc(model, tokenizer, categories)
            history.append(
                entry
                | {"synonym_nearness": nearness["fraction"], "category_auroc": ranking["mean"]}
                | {"category_answer_auroc": answers["mean"]}
            )
            progress.write(str(history[-1]))
    return {"history": history, "seconds": round(time.perf_counter() - start, 1)}
