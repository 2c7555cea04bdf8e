"""The fixed-LLM-prompt baseline (paper §3.1, Fig. 8): real text from the LLM, parsed into descriptors for CLIP.

The LLM answers the template with a numbered list ("fur 2. a tail 3. ..." after the prompt's "1."); the list is split
into items, repeats and empty items are dropped, and CLIP reads `descriptor_template` (label + descriptor) once per
descriptor; the unit-norm features are averaged. A label whose answer yields no usable item (empty output,
repetition loops, a cut-off single item) falls back to the class-name prompt, and is counted in `num_fallbacks`.
Nothing here is trainable: detokenizing and retokenizing stops gradients, which is the point of the comparison.
"""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from transformers import PreTrainedTokenizerBase
from transformers.utils import logging

from .configuration_ovmlv import OvmlvConfig
from .llm_label_encoder import LlmLabelEncoder

logger = logging.get_logger(__name__)

# A list number ("2.", "10)") at the start or after whitespace, followed by whitespace or the end; "1.5 m" is no item.
_ITEM_START = re.compile(r"(?:^|(?<=\s))\d{1,2}[.)](?=\s|$)")
_BULLET = re.compile(r"^[-*\u2022]\s*")
# A phrase of one to six words said three or more times in a row: the LLM is looping, not describing.
_LOOP = re.compile(r"\b(\w+(?:\W+\w+){0,5}?)(?:\W+\1\b){2,}", re.IGNORECASE)
_TRAILING = " \t.,;:"


def parse_descriptors(text: str, truncated: bool = False) -> list[str]:
    """The LLM's answer -> its unique, non-empty list items, in order.

    text: the generated continuation of the prompt, which ends with "1.", so the text starts inside item 1.
    truncated: generation stopped at its token budget, so the last item is cut off and dropped.
    Items are split at list numbers and line breaks; bullets and trailing punctuation are stripped; an item that
    loops (see `_LOOP`) or repeats an earlier one (case- and space-insensitively) is dropped.
    """
    items = [part for chunk in _ITEM_START.split(text) for part in chunk.splitlines()]
    if truncated:
        items = items[:-1]
    descriptors, seen = [], set()
    for item in items:
        item = _BULLET.sub("", item.strip()).rstrip(_TRAILING).strip()
        key = " ".join(item.casefold().split())
        if not key or key in seen or _LOOP.search(item):
            continue
        seen.add(key)
        descriptors.append(item)
    return descriptors


class LlmFixedPromptLabelEncoder(LlmLabelEncoder):
    """CLIP + fixed LLM prompts (the paper's "CLIP + fixed LLM prompts" row); `llm_adapter`/`connector` unused.

    Needs both tokenizers to go from T5 text to CLIP tokens: they are loaded on first use from `tokenizer_sources`,
    the towers' at `from_towers` and the processor's saved beside the model at `from_pretrained`.
    """

    def __init__(self, config: OvmlvConfig):
        super().__init__(config)
        self.num_fallbacks = 0
        self._tokenizers: tuple[PreTrainedTokenizerBase, PreTrainedTokenizerBase] | None = None

    @property
    def tokenizers(self) -> tuple[PreTrainedTokenizerBase, PreTrainedTokenizerBase]:
        """(CLIP tokenizer, T5 tokenizer)."""
        if self._tokenizers is None:
            sources = self.tokenizer_sources
            if sources is None or sources.llm is None:
                raise ValueError(
                    "label_encoder='llm_fixed' turns LLM text into CLIP tokens and needs both tokenizers: build the "
                    "model with OvmlvModel.from_towers, or load a folder saved with its OvmlvProcessor."
                )
            try:
                self._tokenizers = (sources.clip.load(), sources.llm.load())
            except (OSError, ValueError) as error:
                raise ValueError(
                    f"label_encoder='llm_fixed' reads the CLIP and T5 tokenizers from {sources.clip.name_or_path} "
                    f"and could not ({error}); a saved model needs its OvmlvProcessor saved in the same folder "
                    "(processor.save_pretrained(folder))."
                ) from error
        return self._tokenizers

    @torch.no_grad()
    def describe(self, llm_input_ids: torch.Tensor, llm_attention_mask: torch.Tensor) -> list[list[str]]:
        """Greedy LLM answers to the tokenized prompts -> descriptors per label ([] where the LLM failed)."""
        generated = self.llm.generate(
            input_ids=llm_input_ids,
            attention_mask=llm_attention_mask,
            max_new_tokens=self.config.label_encoder_config.descriptor_max_new_tokens,
            do_sample=False,
            num_beams=1,
        )[:, 1:]  # drop the decoder start token
        finished = (generated == self.llm.config.eos_token_id).any(dim=1).tolist()  # else cut at the budget
        texts = self.tokenizers[1].batch_decode(generated, skip_special_tokens=True)
        return [parse_descriptors(text, truncated=not done) for text, done in zip(texts, finished, strict=True)]

    def encode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        llm_input_ids: torch.Tensor,
        llm_attention_mask: torch.Tensor,
    ) -> torch.Tensor:
        clip_tokenizer = self.tokenizers[0]
        descriptors = self.describe(llm_input_ids, llm_attention_mask)
        labels = [label.strip() for label in clip_tokenizer.batch_decode(input_ids, skip_special_tokens=True)]
        described = [i for i, items in enumerate(descriptors) if items]
        failed = [i for i, items in enumerate(descriptors) if not items]
        device, dtype = input_ids.device, self.text_tower.dtype
        embeds = torch.empty(len(labels), self.config.projection_dim, device=device, dtype=dtype)
        if failed:  # the class-name prompt: exactly the processor's bare-label tokens
            embeds[failed] = F.normalize(self.text_tower(input_ids[failed], attention_mask[failed]), dim=-1)
            self.num_fallbacks += len(failed)
            logger.warning(
                f"llm_fixed: {len(failed)} of {len(labels)} labels got no usable list from the LLM and use the "
                f"class-name prompt ({self.num_fallbacks} so far)."
            )
        if described:
            template = self.config.label_encoder_config.descriptor_template
            prompts = [template.format(label=labels[i], descriptor=item) for i in described for item in descriptors[i]]
            owners = torch.tensor([i for i in described for _ in descriptors[i]], device=device)
            max_length = min(clip_tokenizer.model_max_length, self.config.text_config.max_position_embeddings)
            tokens = clip_tokenizer(
                prompts,
                padding="max_length",  # SigLIP reads its full length; CLIP's tower drops the padding after the EOS
                truncation=True,
                max_length=max_length,
                return_attention_mask=True,
                return_tensors="pt",
            )
            features = self.text_tower(tokens["input_ids"].to(device), tokens["attention_mask"].to(device))
            # Mean of the unit-norm descriptor features per label, re-normalised (the sum normalises the same).
            sums = features.new_zeros(embeds.shape).index_add(0, owners, F.normalize(features, dim=-1))
            embeds[described] = F.normalize(sums[described], dim=-1)
        return embeds
