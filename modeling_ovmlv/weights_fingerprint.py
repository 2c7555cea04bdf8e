"""A fingerprint of the weights that make label embeddings, read from a saved model's safetensors files.

A label bank records the fingerprint of the model that encoded it; a bank beside other weights (a model re-saved
into a folder that held another's bank, a bank copied between folders) then shows as made by another model instead
of silently scoring with embeddings from elsewhere. The fingerprint hashes every `label_encoder.*` tensor (and
ViLT-CLIP's `deep_prompts.*`) as stored (name, dtype, shape and its first `FINGERPRINT_VALUES` values), so it is the
same whatever dtype the model is loaded in and reads a few MB however large the LLM.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence

import torch
from safetensors import safe_open
from transformers.utils import SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME, cached_file

FINGERPRINT_VALUES = 4096  # values hashed per tensor: all of a small one (prompts, prefixes), the start of a large one
# What label embeddings are made of: the label encoder, and ViLT-CLIP's deep prompts (which both towers read).
LABEL_ENCODER_PREFIXES = ("label_encoder.", "deep_prompts.")


def model_weights_files(name_or_path: str | os.PathLike, **hub_kwargs) -> list[str] | None:
    """Local paths of a saved model's safetensors file(s), single or sharded; None when it has none."""
    find = {"_raise_exceptions_for_missing_entries": False, **hub_kwargs}
    if single := cached_file(name_or_path, SAFE_WEIGHTS_NAME, **find):
        return [single]
    index = cached_file(name_or_path, SAFE_WEIGHTS_INDEX_NAME, **find)
    if index is None:
        return None
    with open(index, encoding="utf-8") as file:
        shards = sorted(set(json.load(file)["weight_map"].values()))
    return [cached_file(name_or_path, shard, **hub_kwargs) for shard in shards]


def label_encoder_fingerprint(weights_files: Sequence[str] | None) -> str | None:
    """SHA-256 of the stored label-encoder tensors (see the module docstring); None without weights files."""
    if not weights_files:
        return None
    where = {}
    for path in weights_files:
        with safe_open(path, framework="pt") as weights:
            where.update({name: path for name in weights.keys() if name.startswith(LABEL_ENCODER_PREFIXES)})
    digest = hashlib.sha256()
    for name in sorted(where):  # one order however the tensors are sharded
        with safe_open(where[name], framework="pt") as weights:
            piece = weights.get_slice(name)
            shape, dtype = piece.get_shape(), piece.get_dtype()
            if math.prod(shape) <= FINGERPRINT_VALUES:
                values = weights.get_tensor(name)
            else:  # whole leading rows, enough to hold the first FINGERPRINT_VALUES values
                values = piece[: math.ceil(FINGERPRINT_VALUES / math.prod(shape[1:]))]
        digest.update(f"{name}|{dtype}|{shape}|".encode())
        digest.update(values.reshape(-1)[:FINGERPRINT_VALUES].contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
