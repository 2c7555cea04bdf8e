"""Tiny random CLIP and T5 towers, with real tokenizers, written to folders laid out as the Hub checkpoints are.

Tests and benchmarks build models through `from_towers(clip=folder, llm=folder)`, the same path as
`openai/clip-vit-base-patch32` + `google/flan-t5-xl`, but offline and in a second. The weights are random: scores
from these towers mean nothing until trained.

The layouts are the real ones, because loading code that only ever met tidier layouts breaks on the real files:
- CLIP's text config is OpenAI's legacy one (`bos/pad/eos_token_id` 0/1/2, whatever the tokenizer says), under
  which CLIP pools at `argmax(input_ids)`: its tokenizer puts `<|startoftext|>` and `<|endoftext|>` at the two
  highest ids, as OpenAI's does (49406, 49407).
- The T5 is untied, as every Flan-T5 is: `tie_word_embeddings: false` and an `lm_head.weight` of its own next to
  the shared input embeddings.

`initializer_factor` scales CLIP's init. At the default (1, CLIP's own) a random 32-wide tower pools almost only
its CLS/EOS token's own embedding: every video gets nearly the same feature (mean pairwise cosine 0.83 on the
synthetic videos) and so does every label (0.75). The demo uses 3 (0.49 and 0.43), so there is something to
learn from; `width` and `projection_dim` grow the towers for experiments. Tests use the defaults.

The tokenizers are trained once from a small corpus and committed under `tiny_tokenizers/` (training them
is not deterministic across processes); `ovmlv tiny-towers --retrain-tokenizers` remakes them.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import CLIPConfig, CLIPModel, CLIPTokenizer, T5Config, T5ForConditionalGeneration, T5Tokenizer

from ovmlv.modeling_ovmlv.llm_label_encoder import untie_lm_head

from .harness_defaults import TOKENIZERS_DIR

# openai/clip-vit-base-patch32's text config: ids that predate its tokenizer, kept by every OpenAI CLIP checkpoint.
LEGACY_CLIP_TEXT_SPECIAL_IDS = {"bos_token_id": 0, "pad_token_id": 1, "eos_token_id": 2}

_WORDS = (
    "red green blue yellow purple orange white black cyan magenta circle square triangle star cross diamond "
    "moving left right up down rotating growing shrinking bouncing striped dark light background scene "
    "dog cat beach surfing person car bicycle horse ball running jumping swimming cooking dancing playing "
    "guitar piano kitchen street park water snow tree sky bird fish boat train airplane pizza phone "
)
_SENTENCES = (
    "a video of {w}.",
    "a video of a {w}.",
    "a photo of {w}.",
    "a photo of a {w}.",
    "a clip of {w}.",
    "a frame showing {w}.",
    "footage of {w}.",
    "an example of {w}.",
    "Q: What are useful features for distinguishing a {w} in a photo? "
    "A: There are several useful visual features to tell about a {w} in a photo: 1. shape 2. colour 3. motion",
)


def _corpus() -> list[str]:
    words = _WORDS.split()
    return [sentence.format(w=word) for word in words for sentence in _SENTENCES] + [" ".join(words)]


def move_special_tokens_last(tokenizer_file: Path) -> None:
    """Renumber a trained CLIP `tokenizer.json` so that its special tokens take the highest ids, as in OpenAI's.

    A trainer puts them first; CLIP's legacy pooling at `argmax(input_ids)` finds the EOS only when it is last.
    Merges name tokens, not ids, so only the vocabulary, the added tokens and the post-processor change.
    """
    data = json.loads(tokenizer_file.read_text(encoding="utf-8"))
    vocab = data["model"]["vocab"]
    specials = [token["content"] for token in sorted(data["added_tokens"], key=lambda token: token["id"])]
    ordinary = [token for token, _ in sorted(vocab.items(), key=lambda item: item[1]) if token not in specials]
    ids = {token: i for i, token in enumerate(ordinary + specials)}
    data["model"]["vocab"] = ids
    for token in data["added_tokens"]:
        token["id"] = ids[token["content"]]
    for role in ("cls", "sep"):
        content, _ = data["post_processor"][role]
        data["post_processor"][role] = [content, ids[content]]
    tokenizer_file.write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")


def train_tokenizers(out_dir: Path = TOKENIZERS_DIR) -> None:
    """Train a byte-level BPE CLIP tokenizer (special tokens last) and a unigram T5 tokenizer on the corpus above."""
    corpus = _corpus()
    clip_tokenizer = CLIPTokenizer().train_new_from_iterator(corpus, vocab_size=1000)
    clip_tokenizer.model_max_length = 77
    clip_tokenizer.save_pretrained(out_dir / "clip")
    move_special_tokens_last(out_dir / "clip" / "tokenizer.json")
    t5_tokenizer = T5Tokenizer(extra_ids=0).train_new_from_iterator(corpus, vocab_size=400)
    t5_tokenizer.save_pretrained(out_dir / "t5")


@dataclass(frozen=True)
class TinyTowers:
    clip: Path
    llm: Path


def untied_t5(config: T5Config) -> T5ForConditionalGeneration:
    """A new T5 in Flan-T5's layout: input embeddings shared by encoder and decoder, an output head of its own
    (a T5 built from a config that says `tie_word_embeddings: false` unties the encoder's and decoder's inputs
    too, so it is built tied and only its head is untied)."""
    model = T5ForConditionalGeneration(config)
    untie_lm_head(model)
    torch.nn.init.normal_(model.lm_head.weight, std=config.initializer_factor)  # T5's init of an untied head
    return model


def build_tiny_towers(
    out_dir: str | Path,
    seed: int = 0,
    image_size: int = 32,
    vision_layers: int = 4,
    initializer_factor: float = 1.0,
    width: int = 32,
    projection_dim: int = 16,
) -> TinyTowers:
    """Write a random tiny CLIP (`out_dir/clip`) and T5 (`out_dir/t5`) with their tokenizers; same seed, same weights."""
    out_dir = Path(out_dir)
    clip_dir, t5_dir = out_dir / "clip", out_dir / "t5"
    shutil.copytree(TOKENIZERS_DIR / "clip", clip_dir, dirs_exist_ok=True)
    shutil.copytree(TOKENIZERS_DIR / "t5", t5_dir, dirs_exist_ok=True)
    clip_tokenizer = CLIPTokenizer.from_pretrained(clip_dir)
    t5_tokenizer = T5Tokenizer.from_pretrained(t5_dir)

    torch.manual_seed(seed)
    clip_config = CLIPConfig(
        text_config=dict(
            vocab_size=len(clip_tokenizer),
            hidden_size=width,
            intermediate_size=2 * width,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            **LEGACY_CLIP_TEXT_SPECIAL_IDS,
            initializer_factor=initializer_factor,
        ),
        vision_config=dict(
            hidden_size=width,
            intermediate_size=2 * width,
            num_hidden_layers=vision_layers,
            num_attention_heads=4,
            image_size=image_size,
            patch_size=8,
            initializer_factor=initializer_factor,
        ),
        projection_dim=projection_dim,
    )
    CLIPModel(clip_config).save_pretrained(clip_dir)
    t5_config = T5Config(
        vocab_size=len(t5_tokenizer),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        pad_token_id=t5_tokenizer.pad_token_id,
        eos_token_id=t5_tokenizer.eos_token_id,
        decoder_start_token_id=t5_tokenizer.pad_token_id,
    )
    untied_t5(t5_config).save_pretrained(t5_dir)
    return TinyTowers(clip=clip_dir, llm=t5_dir)
