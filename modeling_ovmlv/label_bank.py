"""Precomputed label embeddings: the LLM and text tower run once per label, never per video."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence

import torch
from safetensors.torch import load_file, save_file
from transformers.utils import cached_file
from transformers.utils.logging import tqdm

BANK_WEIGHTS_NAME = "label_bank.safetensors"
BANK_LABELS_NAME = "label_bank.json"

# Turns a list of label strings into (C, D) unit-norm embeddings (model + processor, batched).
LabelEmbedder = Callable[[Sequence[str]], torch.Tensor]


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
    labels: Sequence[str], model: torch.nn.Module, processor, batch_size: int = 256, progress: bool = False
) -> torch.Tensor:
    """(C, D) unit-norm embeddings of `labels` (C, 2D for DualCoOp), `batch_size` labels per label-encoder call."""
    device = next(model.parameters()).device
    chunks = []
    starts = range(0, len(labels), batch_size)
    for start in tqdm(starts, desc="Encoding labels", unit="batch", disable=not progress or len(starts) < 2):
        inputs = processor(text=list(labels[start : start + batch_size]), return_tensors="pt")
        with torch.inference_mode():
            chunks.append(model.get_label_features(**{k: v.to(device) for k, v in inputs.items()}).float().cpu())
    return torch.cat(chunks) if chunks else torch.empty(0, model.config.label_embedding_dim)


class LabelBank:
    """Unit-norm label embeddings (C, D) with their label strings; saved as safetensors + JSON, never pickle.

    D is the model's `config.label_embedding_dim`: DualCoOp stores (positive; negative) pairs, 2x the joint size.
    """

    def __init__(self, labels: Sequence[str], embeddings: torch.Tensor):
        labels = list(labels)
        if embeddings.dim() != 2 or embeddings.shape[0] != len(labels):
            raise ValueError(
                f"LabelBank needs (num_labels={len(labels)}, dim) embeddings, got {tuple(embeddings.shape)}."
            )
        if len(set(labels)) != len(labels):
            raise ValueError("LabelBank labels must be unique.")
        self.labels = labels
        self.embeddings = embeddings.detach().float().cpu()
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
        return cls(labels, embed_labels(labels, model, processor, batch_size, progress))

    def add(self, model, processor, labels: Iterable[str], batch_size: int = 256, progress: bool = True) -> list[str]:
        """Encode and append the labels not yet in the bank; returns the ones added."""
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
        self.__init__([self.labels[i] for i in keep], self.embeddings[keep])

    def embeddings_for(self, labels: Sequence[str], embed_missing: LabelEmbedder | None = None) -> torch.Tensor:
        """(len(labels), D) in the order asked; labels missing from the bank are encoded by `embed_missing`."""
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
            probs = score_fn(video_embeds, self.embeddings.to(video_embeds.device)).float().cpu()
        return [rank_labels(self.labels, row, top_k, threshold) for row in probs]

    def save(self, directory: str | os.PathLike) -> None:
        os.makedirs(directory, exist_ok=True)
        save_file({"embeddings": self.embeddings.contiguous()}, os.path.join(directory, BANK_WEIGHTS_NAME))
        with open(os.path.join(directory, BANK_LABELS_NAME), "w", encoding="utf-8") as f:
            json.dump({"labels": self.labels, "dim": self.dim}, f, ensure_ascii=False, indent=1)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> LabelBank:
        return cls._from_files(os.path.join(directory, BANK_LABELS_NAME), os.path.join(directory, BANK_WEIGHTS_NAME))

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, **hub_kwargs) -> LabelBank | None:
        """The bank stored beside a model (local folder or Hub repo), or None if it has none."""
        found = [
            cached_file(name_or_path, name, _raise_exceptions_for_missing_entries=False, **hub_kwargs)
            for name in (BANK_LABELS_NAME, BANK_WEIGHTS_NAME)
        ]
        return None if None in found else cls._from_files(*found)

    @classmethod
    def _from_files(cls, labels_path: str, weights_path: str) -> LabelBank:
        with open(labels_path, encoding="utf-8") as f:
            labels = json.load(f)["labels"]
        return cls(labels, load_file(weights_path)["embeddings"])


def rank_labels(labels: Sequence[str], scores: torch.Tensor, top_k: int | None, threshold: float | None) -> list[dict]:
    """`{"label", "score"}` sorted by descending score, cut by top_k and threshold (the pipeline's output)."""
    order = scores.argsort(descending=True).tolist()
    ranked = [{"label": labels[i], "score": float(scores[i])} for i in order]
    if threshold is not None:
        ranked = [item for item in ranked if item["score"] >= threshold]
    return ranked if top_k is None else ranked[:top_k]
