"""The CLIP text encoder, used by stages 3 and 4 (paper supp. I: OpenAI CLIP B/32) to compare texts.

Text-to-text similarity in CLIP's joint space is what the paper relies on twice: to find near-duplicate concepts
("barbequing" / "barbecue") and to match vocabulary labels to captions. Stages take any `EmbedFn`, so tests inject
known embeddings and users may swap the encoder.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer, CLIPModel

EmbedFn = Callable[[list[str]], np.ndarray]  # texts -> (len(texts), D) float32, rows of unit norm


class ClipTextEmbedder:
    """An `EmbedFn`: unit-norm projected CLIP text features (`CLIPModel.get_text_features`), in batches."""

    def __init__(self, model: str, batch_size: int = 256, device: str | None = None) -> None:
        self.model = CLIPModel.from_pretrained(model).to(device or "cpu").eval()
        self.tokenizer = AutoTokenizer.from_pretrained(model)
        self.batch_size = batch_size

    @torch.inference_mode()
    def __call__(self, texts: list[str]) -> np.ndarray:
        features = [np.zeros((0, self.model.config.projection_dim), dtype=np.float32)]
        for start in range(0, len(texts), self.batch_size):
            # CLIP reads 77 tokens at most: a longer caption is cut, as CLIP was trained.
            inputs = self.tokenizer(
                texts[start : start + self.batch_size], padding=True, truncation=True, return_tensors="pt"
            ).to(self.model.device)
            embeds = self.model.get_text_features(**inputs).pooler_output  # (batch, D)
            features.append(F.normalize(embeds.float(), dim=-1).cpu().numpy())
        return np.concatenate(features)
