"""Export sizes: what each `ovmlv export --variant` stores for the paper's model at real sizes, in MB of fp32 weights.

The model is built on the meta device (no memory, no download) from the towers' real configs: CLIP B/32 with
Flan-T5-base and Flan-T5-XL, the paper's LLM-prompted label encoder and 4-block temporal branch. full = every weight;
adapter = what is not a frozen tower weight (the trained layers, the temporal branch's CLIP-initialised copies
included), the towers being fetched from the Hub; fixed-vocabulary = everything but the label encoder (+ the label
bank: 2 KB per label). Tokenizers, code and the card (a few MB) are left out.

    python bench/export_sizes.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from transformers import CLIPConfig, T5Config

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from ovmlv.modeling_ovmlv import OvmlvConfig, OvmlvModel  # noqa: E402
from ovmlv.modeling_ovmlv.modeling_ovmlv import TOWER_PREFIXES  # noqa: E402

LLMS = {  # google/flan-t5-base and google/flan-t5-xl
    "Flan-T5-base": {"d_model": 768, "d_ff": 2048, "d_kv": 64, "num_heads": 12, "num_layers": 12},
    "Flan-T5-XL": {"d_model": 2048, "d_ff": 5120, "d_kv": 64, "num_heads": 32, "num_layers": 24},
}
T5_COMMON = {"vocab_size": 32128, "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False}
BANK_LABELS = 2429  # the paper's YouTube-8M training vocabulary


def sizes_mb(llm: dict) -> dict[str, float]:
    clip = CLIPConfig()  # openai/clip-vit-base-patch32's architecture
    config = OvmlvConfig(
        text_config=clip.text_config.to_dict(),
        vision_config=clip.vision_config.to_dict(),
        llm_config=T5Config(**T5_COMMON, **llm).to_dict(),
        projection_dim=512,
        method="ovmlv",
    )
    with torch.device("meta"):
        model = OvmlvModel(config)
    megabytes = {name: p.numel() * 4 / 1e6 for name, p in model.state_dict().items()}
    towers = {name for name in megabytes if name.startswith(TOWER_PREFIXES) and "lora_" not in name}
    bank = BANK_LABELS * config.label_embedding_dim * 4 / 1e6
    return {
        "full": sum(megabytes.values()) + bank,
        "adapter": sum(size for name, size in megabytes.items() if name not in towers) + bank,
        "fixed-vocabulary": sum(size for name, size in megabytes.items() if not name.startswith("label_encoder."))
        + bank,
    }


def main() -> None:
    print(f"MB of fp32 weights per export variant, CLIP B/32 + T5, label bank of {BANK_LABELS} labels")
    print(f"{'LLM':<14} {'full':>9} {'adapter':>9} {'fixed-vocabulary':>17}")
    for name, llm in LLMS.items():
        sizes = sizes_mb(llm)
        print(f"{name:<14} {sizes['full']:>9.0f} {sizes['adapter']:>9.0f} {sizes['fixed-vocabulary']:>17.0f}")


if __name__ == "__main__":
    main()
