"""Label-encoder benchmark: our soft decoding against a no-cache loop and `generate`, at real sizes, random weights.

Towers are built from configs in code (no downloads), fp32: the CLIP B/32 text tower (width 512, 12 layers, 8 heads,
vocab 49408) and a flan-t5-base-sized T5 (d_model 768, 12+12 layers, 12 heads, d_ff 3072, gated-gelu, vocab 32128).
LLM prompts are random token ids of the length Flan-T5's tokenizer gives the label encoder's instruction (about 40).
One run measures:

1. The LLM stage on one batch of labels x prefixes (N=4, K*L=25 steps), each variant starting from the same [P_i ; I]
   embeddings and including the T5 encoder pass: ours (`LlmPromptedLabelEncoder.soft_attributes`: cross K/V once,
   KV cache, one batched loop); a no-cache loop that re-runs the decoder (and its cross-attention K/V) over the whole
   prefix each step; and `T5ForConditionalGeneration.generate` (greedy, cache, exactly K*L new tokens: no EOS stop).
   Same batch for all; repeats are interleaved and the best of each is kept (the machine may be shared); all must
   pick the same tokens. FLOPs are counted on the meta device. A per-step breakdown sets the decoder step time
   against the FLOP bound and the bytes of weights each step has to stream.
2. Vocabulary expansion: the whole f_t (LLM + prompt transformer + CLIP text tower) under inference mode, labels/s,
   and the process's peak resident memory.
3. FLOPs per label (torch.utils.flop_counter.FlopCounterMode) for this T5 and for a flan-t5-xl-sized one (d_model
   2048, 24+24 layers, 32 heads, d_kv 64, d_ff 5120, gated-gelu; counted on the meta device, never allocated), and
   the XL cost per label extrapolated from the measured base time by the FLOP ratio.

    python bench/label_encoder.py [--quick] [--labels 4] [--expansion-labels 16] [--repeats 3] [--threads N]

--quick is a smoke run on reduced sizes (t5-small-like, 4-layer CLIP): its figures mean nothing.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import CLIPTextConfig, CLIPVisionConfig, GenerationConfig, T5Config, T5ForConditionalGeneration

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from ovmlv.modeling_ovmlv import OvmlvConfig  # noqa: E402
from ovmlv.modeling_ovmlv.llm_label_encoder import LlmPromptedLabelEncoder  # noqa: E402
from ovmlv.modeling_ovmlv.soft_decoding import greedy_soft_decode  # noqa: E402

T5_SPECIAL = dict(
    vocab_size=32128, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, tie_word_embeddings=False
)
T5_SIZES = {
    "base": dict(d_model=768, d_kv=64, d_ff=3072, num_layers=12, num_decoder_layers=12, num_heads=12),
    "xl": dict(d_model=2048, d_kv=64, d_ff=5120, num_layers=24, num_decoder_layers=24, num_heads=32),
    "small": dict(d_model=512, d_kv=64, d_ff=1024, num_layers=6, num_decoder_layers=6, num_heads=8),
}
CLIP_B32_TEXT = dict(
    vocab_size=49408, hidden_size=512, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=8
)
CLIP_BOS, CLIP_EOS = 49406, 49407  # the largest id: legacy configs pool at argmax(input_ids)
# Flan-T5 tokenizes the instruction template around a label into ~37 tokens + the label's + </s>.
TEMPLATE_TOKENS = 37
# The first ids of a 32128-entry sentencepiece vocabulary are its most frequent pieces.
PROMPT_VOCAB = 32000
GIB = 2**30


def ovmlv_config(t5_size: str, clip_layers: int) -> OvmlvConfig:
    return OvmlvConfig(
        text_config=CLIPTextConfig(**{**CLIP_B32_TEXT, "num_hidden_layers": clip_layers}),
        vision_config=CLIPVisionConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2
        ),
        llm_config=T5Config(**T5_SIZES[t5_size], **T5_SPECIAL, feed_forward_proj="gated-gelu"),
        projection_dim=512,
        temporal_layers=0,
    )


def build_encoder(config: OvmlvConfig) -> LlmPromptedLabelEncoder:
    encoder = LlmPromptedLabelEncoder(config)
    encoder.init_weights()
    return encoder.eval()


def label_inputs(num_labels: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Random label tokens of 1-4 words for CLIP, and the label in the LLM template for T5, both right-padded."""
    label_lengths = torch.randint(1, 5, (num_labels,), generator=generator).tolist()
    clip_rows = [
        [CLIP_BOS, *torch.randint(300, 49000, (n,), generator=generator).tolist(), CLIP_EOS] for n in label_lengths
    ]
    llm_rows = [
        torch.randint(3, PROMPT_VOCAB, (TEMPLATE_TOKENS + n,), generator=generator).tolist() + [1]
        for n in label_lengths
    ]

    def pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(map(len, rows))
        ids = torch.tensor([row + [pad_id] * (width - len(row)) for row in rows])
        mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in rows])
        return ids, mask

    input_ids, attention_mask = pad(clip_rows, CLIP_EOS)
    llm_input_ids, llm_attention_mask = pad(llm_rows, 0)
    return dict(
        input_ids=input_ids,
        attention_mask=attention_mask,
        llm_input_ids=llm_input_ids,
        llm_attention_mask=llm_attention_mask,
    )


def no_cache_decode(llm: T5ForConditionalGeneration, embeds: torch.Tensor, mask: torch.Tensor | None, steps: int):
    """The naive loop: every step re-runs the whole decoder (and cross-attention K/V) over all tokens so far."""
    encoder_states = llm.encoder(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
    fed = torch.full((len(embeds), 1), llm.config.decoder_start_token_id, device=embeds.device)
    states = []
    for _ in range(steps):
        hidden = llm.decoder(
            input_ids=fed, encoder_hidden_states=encoder_states, encoder_attention_mask=mask, use_cache=False
        ).last_hidden_state[:, -1]  # (B, d): only the newest position is new
        states.append(hidden)
        fed = torch.cat([fed, llm.lm_head(hidden).argmax(-1)[:, None]], dim=1)
    return torch.stack(states, 1), fed[:, 1:]


def best_of(variants: dict[str, Callable[[], object]], repeats: dict[str, int]) -> dict[str, float]:
    """Best wall time of each variant, repeats interleaved so that load changes hit all of them alike."""
    best = {name: float("inf") for name in variants}
    for round_ in range(max(repeats.values())):
        for name, run in variants.items():
            if round_ < repeats[name]:
                start = time.perf_counter()
                run()
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def flops(run: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        run()
    return counter.get_total_flops()


def meta_inputs(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.to("meta") for name, tensor in inputs.items()}


def llm_stage_flops(encoder: LlmPromptedLabelEncoder, inputs: dict[str, torch.Tensor], cached: bool = True) -> int:
    """FLOPs of the T5 encoder + decoding (ours, or the no-cache loop); meant for a meta-device encoder and inputs.

    The masks are left out: transformers' mask helpers branch on `mask.all()`, which meta tensors cannot answer, and
    a mask adds no matmul FLOPs.
    """
    config, llm = encoder.config, encoder.llm
    steps = config.label_encoder_config.num_attributes * config.label_encoder_config.attribute_length

    def run():
        embeds, mask = encoder.prompt_embeddings(inputs["llm_input_ids"], inputs["llm_attention_mask"])
        if cached:
            greedy_soft_decode(llm, llm.encoder(inputs_embeds=embeds).last_hidden_state, mask, steps)
        else:
            no_cache_decode(llm, embeds, None, steps)

    return flops(run)


def connector_flops(encoder: LlmPromptedLabelEncoder, num_labels: int) -> int:
    config = encoder.config
    shape = (
        num_labels * encoder.num_prompts * config.label_encoder_config.num_attributes,
        config.label_encoder_config.attribute_length,
        config.llm_config.d_model,
    )
    return flops(lambda: encoder.connector(torch.zeros(shape, device="meta")))


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GIB


def vocabulary_expansion(
    encoder: LlmPromptedLabelEncoder, inputs: dict[str, torch.Tensor], batch_size: int, repeats: int
) -> float:
    """Best seconds per label of the whole f_t under inference mode, `batch_size` labels per call; prints memory."""
    num_labels = len(inputs["input_ids"])
    weights_gib = sum(p.numel() * p.element_size() for p in encoder.parameters()) / GIB
    rss_before = peak_rss_gib()

    def encode_all():
        for first in range(0, num_labels, batch_size):
            encoder(**{name: tensor[first : first + batch_size] for name, tensor in inputs.items()})

    with torch.inference_mode():
        encoder(**{name: tensor[:1] for name, tensor in inputs.items()})  # warm-up: first-call allocations
        seconds = best_of({"expansion": encode_all}, {"expansion": repeats})["expansion"]
    per_label_s = seconds / num_labels
    print(
        f"\nvocabulary expansion: {num_labels} labels, {batch_size} per call, best of {repeats}: {seconds:.1f} s, "
        f"{1 / per_label_s:.2f} labels/s ({per_label_s:.2f} s/label); peak RSS {peak_rss_gib():.2f} GiB "
        f"(weights {weights_gib:.2f} GiB, peak before {rss_before:.2f} GiB)"
    )
    return per_label_s


def compare_decoding(encoder: LlmPromptedLabelEncoder, inputs: dict[str, torch.Tensor], repeats: int) -> None:
    """The LLM stage three ways on one batch; prints times, achieved rates, a per-step breakdown and the ratios."""
    config, llm = encoder.config, encoder.llm
    steps = config.label_encoder_config.num_attributes * config.label_encoder_config.attribute_length
    with torch.inference_mode():
        embeds, mask = encoder.prompt_embeddings(inputs["llm_input_ids"], inputs["llm_attention_mask"])
    generation = GenerationConfig(
        max_new_tokens=steps, do_sample=False, num_beams=1, eos_token_id=None, pad_token_id=0, decoder_start_token_id=0
    )
    variants = {
        "ours": lambda: encoder.soft_attributes(inputs["llm_input_ids"], inputs["llm_attention_mask"]),
        "generate": lambda: llm.generate(inputs_embeds=embeds, attention_mask=mask, generation_config=generation),
        "no_cache": lambda: no_cache_decode(llm, embeds, mask, steps),
        "encoder_only": lambda: llm.encoder(inputs_embeds=embeds, attention_mask=mask),
    }
    with torch.inference_mode():
        ours_states, ours_tokens = greedy_soft_decode(
            llm, llm.encoder(inputs_embeds=embeds, attention_mask=mask).last_hidden_state, mask, steps
        )
        naive_states, naive_tokens = no_cache_decode(llm, embeds, mask, steps)
        generated = variants["generate"]()[:, 1:]
        counts = {"ours": repeats, "generate": repeats, "no_cache": max(1, repeats - 1), "encoder_only": repeats}
        times = best_of(variants, counts)
    same_tokens = torch.equal(ours_tokens, naive_tokens) and torch.equal(ours_tokens, generated)
    state_error = (ours_states - naive_states).abs().max().item()
    with torch.device("meta"):
        meta_encoder = LlmPromptedLabelEncoder(config)
    ours_flops = llm_stage_flops(meta_encoder, meta_inputs(inputs))
    work = {"ours": ours_flops, "generate": ours_flops}
    work["no_cache"] = llm_stage_flops(meta_encoder, meta_inputs(inputs), cached=False)
    square = torch.randn(2048, 2048)
    matmul_rate = 2 * 2048**3 / best_of({"matmul": lambda: square @ square}, {"matmul": 3})["matmul"]

    rows = len(embeds)
    print(
        f"\nLLM stage (T5 encoder + {steps} decoder steps), {len(inputs['input_ids'])} labels x "
        f"{encoder.num_prompts} prefixes = {rows} sequences, best of {repeats}:"
    )
    for name in work:
        seconds = times[name]
        print(
            f"  {name:9s} {seconds:7.2f} s  {work[name] / 1e9:6.0f} GFLOP  {work[name] / seconds / 1e9:6.1f} GFLOP/s"
        )
    print(f"  same greedy tokens in all: {same_tokens}; max |state difference| ours vs no-cache: {state_error:.1e}")
    # Where a cached decoder step's time goes: it reads every decoder weight and the lm_head once per step.
    step_bytes = sum(p.numel() * p.element_size() for p in [*llm.decoder.block.parameters(), llm.lm_head.weight])
    step_flops = (ours_flops - flops_of_encoder(meta_encoder, inputs)) / steps
    per_step = {name: (times[name] - times["encoder_only"]) / steps for name in ("ours", "generate")}
    print(
        f"  per decoder step (total minus the {times['encoder_only']:.2f} s encoder pass): ours "
        f"{per_step['ours'] * 1e3:.0f} ms, generate {per_step['generate'] * 1e3:.0f} ms; FLOP-bound at this "
        f"machine's {matmul_rate / 1e9:.0f} GFLOP/s matmul rate: {step_flops / matmul_rate * 1e3:.0f} ms; each step "
        f"streams {step_bytes / 1e9:.2f} GB of weights (ours: {step_bytes / per_step['ours'] / 1e9:.1f} GB/s)"
    )
    ratios = {
        "no-cache / ours": (times["no_cache"] / times["ours"], "  (target >= 5x)"),
        "generate / ours": (times["generate"] / times["ours"], "  (target >= 1.5x)"),
    }
    for name, (ratio, target) in ratios.items():
        print(f"  ratio {name + ':':17s}{ratio:6.2f}x{target}")


def flops_of_encoder(meta_encoder: LlmPromptedLabelEncoder, inputs: dict[str, torch.Tensor]) -> int:
    embeds, _ = meta_encoder.prompt_embeddings(
        inputs["llm_input_ids"].to("meta"), inputs["llm_attention_mask"].to("meta")
    )
    return flops(lambda: meta_encoder.llm.encoder(inputs_embeds=embeds))


def flops_per_label(encoder: LlmPromptedLabelEncoder, per_label_s: float, generator: torch.Generator) -> None:
    """FLOPs of one label through f_t for this T5 and an XL-sized one (meta device); XL cost by FLOP ratio."""
    one = label_inputs(1, generator)
    base_flops = flops(lambda: encoder(**one))
    with torch.device("meta"):
        meta_base = LlmPromptedLabelEncoder(encoder.config)
        xl = LlmPromptedLabelEncoder(ovmlv_config("xl", encoder.config.text_config.num_hidden_layers))
    clip_flops = base_flops - llm_stage_flops(meta_base, meta_inputs(one)) - connector_flops(meta_base, 1)
    xl_flops = llm_stage_flops(xl, meta_inputs(one)) + connector_flops(xl, 1) + clip_flops
    size = "base" if encoder.config.llm_config.d_model == T5_SIZES["base"]["d_model"] else "small"
    print(
        f"\nFLOPs per label: T5-{size} {base_flops / 1e9:.0f} GFLOP (CLIP text tower {clip_flops / 1e9:.0f}), "
        f"T5-XL-sized {xl_flops / 1e9:.0f} GFLOP ({xl_flops / base_flops:.1f}x)"
    )
    print(
        f"T5-XL-sized per-label cost extrapolated from the measured {per_label_s:.2f} s/label: "
        f"{per_label_s * xl_flops / base_flops:.2f} s/label ({base_flops / xl_flops / per_label_s:.3g} labels/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run on reduced sizes")
    parser.add_argument("--labels", type=int, default=4, help="labels in the decoding comparison (x N prefixes)")
    parser.add_argument("--expansion-labels", type=int, default=16, help="labels encoded for the labels/s figure")
    parser.add_argument("--batch-size", type=int, default=16, help="labels per label-encoder call in expansion")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.labels, args.expansion_labels, args.batch_size, args.repeats = 1, 2, 2, 1
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)

    t5_size, clip_layers = ("small", 4) if args.quick else ("base", 12)
    start = time.perf_counter()
    encoder = build_encoder(ovmlv_config(t5_size, clip_layers))
    config = encoder.config.label_encoder_config
    print(
        f"T5 {t5_size} ({sum(p.numel() for p in encoder.llm.parameters()) / 1e6:.0f}M params) + CLIP text "
        f"{clip_layers} layers, N={config.num_prefixes} K={config.num_attributes} L={config.attribute_length}, "
        f"fp32, {torch.get_num_threads()} threads; built in {time.perf_counter() - start:.0f} s"
        + ("  [--quick: reduced sizes, figures not representative]" if args.quick else "")
    )
    # Expansion first, so that the peak memory it reports is its own.
    expansion = label_inputs(args.expansion_labels, generator)
    per_label_s = vocabulary_expansion(encoder, expansion, args.batch_size, max(1, args.repeats - 1))
    compare_decoding(encoder, label_inputs(args.labels, generator), args.repeats)
    flops_per_label(encoder, per_label_s, generator)


if __name__ == "__main__":
    main()
