"""Tiny random SigLIP and SigLIP 2 towers in the layouts of google/siglip-base-patch16-224,
google/siglip2-base-patch16-224 and google/siglip2-base-patch16-naflex, for tests: what `tiny_towers.py` is for CLIP.

The first two are `SiglipModel` checkpoints (`model_type: "siglip"`; SigLIP 2 at a fixed resolution keeps SigLIP's
architecture), the third a `Siglip2Model` (`"siglip2"`, NaFlex: `num_patches` instead of an image size, and
SigLIP 2's preprocessor config with `max_num_patches`). Each has the files its Hub repo has: config.json,
model.safetensors, preprocessor_config.json (resize without a crop, rescale, normalise with mean = std = 0.5), and
the tokenizer:
- SigLIP: a SentencePiece `spiece.model` read by `SiglipTokenizer` (needs the sentencepiece package), `</s>` as both
  end and padding token, no start token, 64 positions, and `model_input_names: ["input_ids"]` as in the real
  tokenizer config (SigLIP reads no attention mask).
- SigLIP 2: a Gemma tokenizer (`tokenizer.json`, byte-fallback BPE, `<bos>` first, padding on the left as
  transformers' `GemmaTokenizer` does by default), 64 positions.
The tokenizers are trained once on `tiny_towers`' corpus and committed under `tiny_tokenizers/siglip*`;
`train_siglip_tokenizers` remakes them. The weights are random, with a logit scale and bias of SigLIP's kind
(log 10 and -10 at SigLIP's own init; here other values, so a test sees them used).
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import torch
from transformers import AutoTokenizer, GemmaTokenizer, Siglip2Config, Siglip2Model, SiglipConfig, SiglipModel

from .tiny_towers import TOKENIZERS_DIR, _corpus

SIGLIP_VARIANTS = ("siglip", "siglip2", "siglip2_naflex")
TEXT_POSITIONS = 64  # SigLIP's and SigLIP 2's text length
LOGIT_SCALE, LOGIT_BIAS = 2.0, -1.5  # log(1/tau) and b of the tiny towers


def naflex_preprocessor_config(num_patches: int, patch_size: int) -> dict:
    """google/siglip2-base-patch16-naflex's preprocessor_config.json, for `num_patches` of `patch_size`."""
    return {
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": [0.5, 0.5, 0.5],
        "image_processor_type": "Siglip2ImageProcessorFast",
        "image_std": [0.5, 0.5, 0.5],
        "max_num_patches": num_patches,
        "patch_size": patch_size,
        "processor_class": "Siglip2Processor",
        "resample": 2,
        "rescale_factor": 1 / 255,
    }


def preprocessor_config(image_size: int) -> dict:
    """google/siglip-base-patch16-224's preprocessor_config.json, at `image_size`."""
    return {
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "image_mean": [0.5, 0.5, 0.5],
        "image_processor_type": "SiglipImageProcessor",
        "image_std": [0.5, 0.5, 0.5],
        "processor_class": "SiglipProcessor",
        "resample": 3,
        "rescale_factor": 1 / 255,
        "size": {"height": image_size, "width": image_size},
    }


def train_siglip_tokenizers(out_dir: Path = TOKENIZERS_DIR) -> None:
    """Train SigLIP's SentencePiece tokenizer and SigLIP 2's Gemma tokenizer on the tiny corpus."""
    import sentencepiece

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(_corpus()),
        model_writer=model,
        vocab_size=300,
        hard_vocab_limit=False,  # the corpus is small: as many pieces as it has, up to 300
        model_type="unigram",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,  # SigLIP's vocabulary has no start token
        normalization_rule_name="identity",  # SiglipTokenizer lower-cases (do_lower_case) before the model reads
    )
    siglip = out_dir / "siglip"
    siglip.mkdir(parents=True, exist_ok=True)
    (siglip / "spiece.model").write_bytes(model.getvalue())
    tokenizer_config = {
        "do_lower_case": True,
        "eos_token": "</s>",
        "model_input_names": ["input_ids"],
        "model_max_length": TEXT_POSITIONS,
        "pad_token": "</s>",
        "processor_class": "SiglipProcessor",
        "tokenizer_class": "SiglipTokenizer",
        "unk_token": "<unk>",
    }
    (siglip / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2), encoding="utf-8")
    gemma = GemmaTokenizer().train_new_from_iterator(_corpus(), vocab_size=400)
    gemma.model_max_length = TEXT_POSITIONS
    gemma.save_pretrained(out_dir / "siglip2")


def build_tiny_siglip(
    out_dir: str | Path, variant: str = "siglip", seed: int = 0, image_size: int = 32, vision_layers: int = 4
) -> Path:
    """Write a random tiny SigLIP (`variant="siglip"`), SigLIP 2 (`"siglip2"`) or SigLIP 2 NaFlex (`"siglip2_naflex"`)
    to `out_dir`; same seed, same weights."""
    if variant not in SIGLIP_VARIANTS:
        raise ValueError(f"variant={variant!r} is not one of {SIGLIP_VARIANTS}.")
    out_dir = Path(out_dir)
    naflex = variant == "siglip2_naflex"
    shutil.copytree(TOKENIZERS_DIR / ("siglip2" if naflex else variant), out_dir, dirs_exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(out_dir)
    torch.manual_seed(seed)
    patch_size, num_patches = 8, (image_size // 8) ** 2
    vision = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=vision_layers, num_attention_heads=4)
    vision |= dict(num_patches=num_patches) if naflex else dict(image_size=image_size)
    config = (Siglip2Config if naflex else SiglipConfig)(
        text_config=dict(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=TEXT_POSITIONS,
            projection_size=32,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        ),
        vision_config=dict(**vision, patch_size=patch_size),
    )
    model = (Siglip2Model if naflex else SiglipModel)(config)
    with torch.no_grad():
        model.logit_scale.fill_(LOGIT_SCALE)
        model.logit_bias.fill_(LOGIT_BIAS)
    model.save_pretrained(out_dir)
    preprocessor = naflex_preprocessor_config(num_patches, patch_size) if naflex else preprocessor_config(image_size)
    (out_dir / "preprocessor_config.json").write_text(json.dumps(preprocessor, indent=2), encoding="utf-8")
    return out_dir
