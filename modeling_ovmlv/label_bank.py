"""Precomputed label embeddings: the LLM and text tower run once per label, never per video."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers.utils import cached_file, logging
from transformers.utils.logging import tqdm

from .atomic_files import write_files_atomically
from .checksums import file_sha256
from .label_limits import check_label_lengths
from .label_members import MEMBER_ANSWER_TOKENS, llm_answers, member_slots
from .ranking import rank_rows

BANK_WEIGHTS_NAME = "label_bank.safetensors"
BANK_LABELS_NAME = "label_bank.json"

# Turns a list of label strings into (C, D) unit-norm embeddings (model + processor, batched).
LabelEmbedder = Callable[[Sequence[str]], torch.Tensor]

logger = logging.get_logger(__name__)


class LabelBankError(ValueError):
    """A label bank that must not be used: damaged, half written, or made by another model; the message names it."""


def clean_labels(labels: str | Iterable[str], what: str = "candidate_labels") -> list[str]:
    """Validate user labels: a list of non-empty strings (or one comma-separated string), duplicates dropped.

    Duplicates are dropped keeping the first occurrence, since every label is scored independently a repeat
    would only repeat its score.
    """
    if isinstance(labels, str):
        labels = labels.split(",")
    labels = list(labels)
    for label in labels:
        if not isinstance(label, str):
            raise TypeError(f"{what} must be strings; got {label!r} of type {type(label).__name__}.")
    cleaned = list(dict.fromkeys(label.strip() for label in labels))
    if "" in cleaned:
        raise ValueError(f"{what} contains an empty label; remove it.")
    if not cleaned:
        raise ValueError(f"{what} is empty: pass at least one label, e.g. ['dog', 'surfing'].")
    return cleaned


def embed_labels(
    labels: Sequence[str],
    model: torch.nn.Module,
    processor,
    batch_size: int = 256,
    progress: bool = False,
    slot_rows: list[list[str]] | None = None,
) -> torch.Tensor:
    """(C, `config.label_embedding_dim`) unit-norm embeddings of `labels`, `batch_size` texts per label-encoder call:
    (C, D); (C, 2D) for DualCoOp; with category-member slots each label's own and its members' (`label_members.py`),
    the members listed by the LLM's answer for the label (`slot_rows`, from `label_slot_rows`, when the caller has
    them already); with a direction head each label's direction code after them (`direction_head.py`)."""
    slots = model.config.category_member_slots
    if not slots or not labels:
        return _embed_texts(labels, model, processor, batch_size, progress)
    rows = slot_rows if slot_rows is not None else label_slot_rows(labels, model, processor, progress)
    texts = list(dict.fromkeys(text for row in rows for text in row))
    column = {text: index for index, text in enumerate(texts)}
    embeddings = _embed_texts(texts, model, processor, batch_size, progress)  # (T, D + K)
    index = torch.tensor([[column[text] for text in row] for row in rows])  # (C, M); slot 0 is the label itself
    dim = model.config.projection_dim
    return torch.cat([embeddings[index][..., :dim].flatten(1), embeddings[index[:, 0], dim:]], dim=-1)


def label_slot_rows(
    labels: Sequence[str], model: torch.nn.Module, processor, progress: bool = False
) -> list[list[str]]:
    """Each label's M slot texts, the label then the members its LLM answer lists (`label_members.member_slots`): one
    generation per label, so a caller embedding the same labels twice asks once."""
    answers = llm_answers(model, processor, labels, MEMBER_ANSWER_TOKENS, progress)
    return member_slots(labels, answers, model.config.category_member_slots)


def _embed_texts(
    texts: Sequence[str], model: torch.nn.Module, processor, batch_size: int, progress: bool
) -> torch.Tensor:
    """(T, D) (DualCoOp: (T, 2D)) unit-norm embeddings, each text encoded alone as a label."""
    check_label_lengths(texts, processor, model.config, where="the labels to encode")
    device = next(model.parameters()).device
    chunks = []
    starts = range(0, len(texts), batch_size)
    for start in tqdm(starts, desc="Encoding labels", unit="batch", disable=not progress or len(starts) < 2):
        inputs = processor(text=list(texts[start : start + batch_size]), return_tensors="pt")
        with torch.inference_mode():
            chunks.append(model.get_label_features(**{k: v.to(device) for k, v in inputs.items()}).float().cpu())
    return torch.cat(chunks) if chunks else torch.empty(0, model.config.label_embedding_dim)


class LabelBank:
    """Unit-norm label embeddings (C, D) with their label strings; saved as safetensors + JSON, never pickle.

    D is the model's `config.label_embedding_dim`: DualCoOp stores (positive; negative) pairs, 2x the joint size;
    with category-member slots each row holds the label's M slots, M x the joint size (`label_members.py`).
    `fingerprint` identifies the weights that encoded it (`weights_fingerprint.py`): a saved bank beside other
    weights is reported and not used. Saving writes both files in full before renaming either, and the JSON records
    the SHA-256 of the embeddings file, so a damaged or half-replaced pair is detected on load.
    """

    def __init__(self, labels: Sequence[str], embeddings: torch.Tensor, fingerprint: str | None = None):
        labels = list(labels)
        if embeddings.dim() != 2 or embeddings.shape[0] != len(labels):
            raise ValueError(
                f"LabelBank needs (num_labels={len(labels)}, dim) embeddings, got {tuple(embeddings.shape)}."
            )
        if len(set(labels)) != len(labels):
            raise ValueError("LabelBank labels must be unique.")
        self.labels = labels
        self.embeddings = embeddings.detach().float().cpu()
        self.fingerprint = fingerprint
        self._index = {label: i for i, label in enumerate(labels)}

    def __len__(self) -> int:
        return len(self.labels)

    def __contains__(self, label: str) -> bool:
        return label in self._index

    def __repr__(self) -> str:
        preview = ", ".join(self.labels[:5]) + (", ..." if len(self) > 5 else "")
        return f"LabelBank({len(self)} labels, dim={self.dim}: {preview})"

    @property
    def dim(self) -> int:
        return self.embeddings.shape[1]

    @classmethod
    def build(cls, model, processor, labels: Iterable[str], batch_size: int = 256, progress: bool = True):
        """Encode `labels` with `model`'s label encoder (batched, with a progress bar)."""
        labels = clean_labels(labels, what="labels")
        fingerprint = getattr(model, "label_encoder_fingerprint", None)
        return cls(labels, embed_labels(labels, model, processor, batch_size, progress), fingerprint)

    def add(self, model, processor, labels: Iterable[str], batch_size: int = 256, progress: bool = True) -> list[str]:
        """Encode and append the labels not yet in the bank; returns the ones added."""
        fingerprint = getattr(model, "label_encoder_fingerprint", None)
        if None not in (self.fingerprint, fingerprint) and self.fingerprint != fingerprint:
            raise LabelBankError(
                "This label bank was encoded by another model than the one given: its embeddings would not be "
                "comparable. Rebuild it with LabelBank.build (`ovmlv vocab build`)."
            )
        new = [label for label in clean_labels(labels, what="labels") if label not in self]
        if new:
            self._extend(new, embed_labels(new, model, processor, batch_size, progress))
        return new

    def _extend(self, labels: list[str], embeddings: torch.Tensor) -> None:
        if embeddings.shape[1] != self.dim:
            raise ValueError(f"New embeddings have dim {embeddings.shape[1]}, the bank has {self.dim}.")
        self.labels += labels
        self.embeddings = torch.cat([self.embeddings, embeddings.detach().float().cpu()])
        self._index = {label: i for i, label in enumerate(self.labels)}

    def remove(self, labels: Iterable[str]) -> None:
        drop = set(labels)
        unknown = drop - self._index.keys()
        if unknown:
            raise KeyError(f"Not in the label bank: {sorted(unknown)}.")
        keep = [i for i, label in enumerate(self.labels) if label not in drop]
        self.__init__([self.labels[i] for i in keep], self.embeddings[keep], self.fingerprint)

    def embeddings_for(self, labels: Sequence[str], embed_missing: LabelEmbedder | None = None) -> torch.Tensor:
        """(len(labels), D) in the order asked; labels missing from the bank are encoded by `embed_missing`."""
        if labels == self.labels[: len(labels)]:  # the bank's own order (a pipeline without candidate_labels)
            return self.embeddings[: len(labels)]  # a view: no lookup per label, no copy of the bank
        missing = [label for label in dict.fromkeys(labels) if label not in self]
        if missing:
            if embed_missing is None:
                raise KeyError(
                    f"Not in the label bank: {missing}. Add them with LabelBank.add(model, processor, ...)."
                )
            self._extend(missing, embed_missing(missing))
        return self.embeddings[[self._index[label] for label in labels]]

    def query(
        self,
        video_embeds: torch.Tensor,
        score_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        top_k: int | None = None,
        threshold: float | None = None,
    ) -> list[list[dict]]:
        """Per video, `{"label", "score"}` sorted by score: the top_k and/or those with score >= threshold.

        score_fn maps (B, D) video and (C, D) label embeddings to (B, C) probabilities, e.g.
        `lambda v, t: model.logits(v, t).sigmoid()`.
        """
        with torch.inference_mode():
            probs = score_fn(video_embeds, self.embeddings.to(video_embeds.device)).float()
            return rank_rows(probs, top_k, threshold).labelled(self.labels)

    def save(self, directory: str | os.PathLike) -> None:
        """Embeddings and the JSON naming their SHA-256, both written in full under temporary names, then renamed:
        a kill while writing leaves the previous bank; one in the instant between the two renames leaves a pair
        that `load` reports as not belonging together, never a truncated file."""
        directory = Path(directory)
        written = {}

        def write_embeddings(temporary: str) -> None:
            save_file({"embeddings": self.embeddings.contiguous()}, temporary)
            written["sha256"] = file_sha256(temporary)

        def write_labels(temporary: str) -> None:
            record = {
                "labels": self.labels,
                "dim": self.dim,
                "embeddings_sha256": written["sha256"],
                "model_fingerprint": self.fingerprint,
            }
            Path(temporary).write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")

        write_files_atomically(
            {directory / BANK_WEIGHTS_NAME: write_embeddings, directory / BANK_LABELS_NAME: write_labels}
        )

    @classmethod
    def load(cls, directory: str | os.PathLike, fingerprint: str | None = None) -> LabelBank:
        """The bank in `directory`; `fingerprint`: the model it must belong to (see `from_pretrained`)."""
        return cls._from_files(
            os.path.join(directory, BANK_LABELS_NAME), os.path.join(directory, BANK_WEIGHTS_NAME), fingerprint
        )

    @classmethod
    def from_pretrained(
        cls, name_or_path: str | os.PathLike, fingerprint: str | None = None, **hub_kwargs
    ) -> LabelBank | None:
        """The bank stored beside a model (local folder or Hub repo), or None if it has none.

        Raises `LabelBankError` naming the file for a bank that is damaged, half of a pair, or (when `fingerprint`,
        the model's `label_encoder_fingerprint`, is given) made by another model.
        """
        found = [
            cached_file(name_or_path, name, _raise_exceptions_for_missing_entries=False, **hub_kwargs)
            for name in (BANK_LABELS_NAME, BANK_WEIGHTS_NAME)
        ]
        if found == [None, None]:
            return None
        if None in found:
            present, absent = (BANK_LABELS_NAME, BANK_WEIGHTS_NAME)[:: 1 if found[0] else -1]
            raise LabelBankError(
                f"The label bank of {name_or_path} is incomplete: {present} without {absent}. Rebuild it with "
                "`ovmlv vocab build`."
            )
        return cls._from_files(*found, fingerprint)

    @classmethod
    def _from_files(cls, labels_path: str, weights_path: str, fingerprint: str | None = None) -> LabelBank:
        rebuild = "Rebuild it with `ovmlv vocab build` (or LabelBank.build)."
        try:
            with open(labels_path, encoding="utf-8") as f:
                record = json.load(f)
            labels, stored_sha256 = record["labels"], record.get("embeddings_sha256")
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise LabelBankError(f"The label bank file {labels_path} is damaged ({err}). {rebuild}") from err
        if stored_sha256 is not None and file_sha256(weights_path) != stored_sha256:
            raise LabelBankError(
                f"The label bank files {weights_path} and {labels_path} do not belong together (one was replaced or "
                f"damaged, e.g. by an interrupted save). {rebuild}"
            )
        try:
            bank = cls(labels, load_file(weights_path)["embeddings"], record.get("model_fingerprint"))
        except Exception as err:  # safetensors, shape and label checks: any of them means the pair is unusable
            raise LabelBankError(
                f"The label bank {weights_path} (with {labels_path}) cannot be read ({err}). {rebuild}"
            ) from err
        if fingerprint is not None and bank.fingerprint is None:
            logger.warning(f"{labels_path} does not record which model made it (saved by an older ovmlv). {rebuild}")
        elif None not in (fingerprint, bank.fingerprint) and fingerprint != bank.fingerprint:
            raise LabelBankError(
                f"The label bank {labels_path} was encoded by another model than the weights beside it, so its "
                f"embeddings would give wrong scores. {rebuild}"
            )
        return bank


def rank_labels(labels: Sequence[str], scores: torch.Tensor, top_k: int | None, threshold: float | None) -> list[dict]:
    """`{"label", "score"}` sorted by descending score, cut by top_k and threshold (the pipeline's output); the cut
    is made on the (C,) tensor (`ranking.rank_rows`), so only the kept labels become dicts."""
    return rank_rows(scores.view(1, -1), top_k, threshold).labelled(labels)[0]


def usable_bank(name_or_path: str | os.PathLike, fingerprint: str | None, **hub_kwargs) -> LabelBank | None:
    """The bank beside a model if it may be used with it; a damaged one, or one made by another model, is reported
    by name (a warning) and left out, so the model still loads and `ovmlv vocab build` can replace it."""
    try:
        return LabelBank.from_pretrained(name_or_path, fingerprint, **hub_kwargs)
    except LabelBankError as err:
        logger.warning(f"{err} The model is loaded without a label bank.")
        return None


def save_bank_beside(
    bank: LabelBank | None, directory: str | os.PathLike, fingerprint_before: str | None, fingerprint: str | None
) -> None:
    """Write a model's bank into the folder its weights were just saved to, or remove a bank left there by another
    model. A bank made by this model (no fingerprint, or the one it had before saving) takes the fingerprint of the
    saved weights; a bank made by another model keeps its own, and so is reported when loaded."""
    if bank is None:
        for name in (BANK_LABELS_NAME, BANK_WEIGHTS_NAME):
            Path(directory, name).unlink(missing_ok=True)
        return
    if bank.fingerprint in (None, fingerprint_before):
        bank.fingerprint = fingerprint
    bank.save(directory)
