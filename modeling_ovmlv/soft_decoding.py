"""Soft decoding: the frozen T5 decoder runs a fixed number of greedy steps and hands back its hidden states.

This is the paper's "K*L decoding iterations" (§3.1): every step feeds back the argmax token, as text generation
would, but what is kept is the decoder's last hidden state, never the text, so gradients reach whatever shaped the
encoder states (learnable prefixes, LoRA) through the cross-attention keys and values.

The loop is written over the T5 modules themselves rather than calling `T5Stack` once per step, because:
- the cross-attention keys/values are computed once, and the self-attention relative position bias once for all
  steps (a (1, H, steps, steps) table, sliced per step), instead of per step and per layer;
- the cache is a plain list of per-step key/value tensors, so a step is a pure function that
  `torch.utils.checkpoint` can recompute (transformers' own checkpointing drops the cache in a decode loop);
- there is no per-step mask building, cache bookkeeping or output recording.
The equivalence with a teacher-forced `T5ForConditionalGeneration` pass is tested (tests/test_label_encoder.py).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers import T5ForConditionalGeneration
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.t5.modeling_t5 import eager_attention_forward

# Per decoder layer: the keys and values of each step so far, each (B, H, 1, d_kv).
StepCache = list[tuple[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]]


def _split_heads(states: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, T, H*d_kv) -> (B, H, T, d_kv)."""
    batch, length = states.shape[:2]
    return states.view(batch, length, num_heads, -1).transpose(1, 2)


def _attend(
    attention: nn.Module, query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, bias: torch.Tensor
) -> torch.Tensor:
    """T5 attention of (B, H, 1, d_kv) queries with an additive `bias` folded into unscaled scores, through the
    attention implementation the T5 was loaded with -> (B, 1, H*d_kv)."""
    interface = ALL_ATTENTION_FUNCTIONS.get_interface(attention.config._attn_implementation, eager_attention_forward)
    attended, _ = interface(
        attention, query, keys, values, None, dropout=0.0, scaling=1.0, position_bias=bias, is_causal=False
    )  # (B, 1, H, d_kv)
    return attended.flatten(-2)


def _decoder_step(
    decoder: nn.Module,
    hidden: torch.Tensor,
    self_bias: torch.Tensor,
    cross_mask: torch.Tensor,
    cross_keys_values: list[tuple[torch.Tensor, torch.Tensor]],
    cache: StepCache,
) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
    """One decoder position through every T5 block; a pure function of its inputs (so it can be recomputed).

    hidden: (B, 1, d) embedding of the token fed at this step. self_bias: (1, H, 1, t+1) relative position bias of
    this position over the t+1 positions so far (T5 folds it into unscaled attention scores). cross_mask: (B, 1, 1, M)
    additive encoder padding mask. Returns the (B, d) final-layer-normed state and this step's (key, value) per layer.
    """
    new_keys_values = []
    for block, (cross_keys, cross_values), (past_keys, past_values) in zip(
        decoder.block, cross_keys_values, cache, strict=True
    ):
        self_layer, cross_layer, feed_forward = block.layer
        attention = self_layer.SelfAttention
        normed = self_layer.layer_norm(hidden)
        query, key, value = (
            _split_heads(proj(normed), attention.n_heads) for proj in (attention.q, attention.k, attention.v)
        )
        keys = torch.cat([*past_keys, key], dim=2)  # (B, H, t+1, d_kv)
        values = torch.cat([*past_values, value], dim=2)
        hidden = hidden + attention.o(_attend(attention, query, keys, values, self_bias))

        attention = cross_layer.EncDecAttention
        query = _split_heads(attention.q(cross_layer.layer_norm(hidden)), attention.n_heads)
        hidden = hidden + attention.o(_attend(attention, query, cross_keys, cross_values, cross_mask))

        hidden = feed_forward(hidden)  # T5LayerFF: norm, MLP, residual
        new_keys_values.append((key, value))
    return decoder.final_layer_norm(hidden)[:, 0], new_keys_values


def greedy_soft_decode(
    llm: T5ForConditionalGeneration,
    encoder_states: torch.Tensor,
    encoder_mask: torch.Tensor,
    steps: int,
    gradient_checkpointing: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run `steps` greedy decoder steps from the decoder start token over `encoder_states`.

    The first step reads `decoder_start_token_id` (pad for T5), as T5 generation does; the paper (§4.3) names
    `<extra_id_0>` as the start token, but that is T5's first span sentinel, not what its decoder starts from.

    encoder_states: (B, M, d) T5 encoder output; encoder_mask: (B, M), 1 for real positions.
    Returns the (B, steps, d) last decoder hidden state of every step and the (B, steps) argmax tokens (token t is
    the greedy choice after step t, fed to step t+1). The choice of token is not differentiable; the states are.
    With `gradient_checkpointing`, each step's activations are recomputed in the backward pass instead of stored.
    """
    decoder = llm.decoder
    blocks = decoder.block
    batch = encoder_states.shape[0]
    cross_keys_values = []
    for block in blocks:
        attention = block.layer[1].EncDecAttention
        cross_keys_values.append(
            tuple(_split_heads(proj(encoder_states), attention.n_heads) for proj in (attention.k, attention.v))
        )  # each (B, H, M, d_kv), computed once for all steps
    cross_mask = torch.zeros(encoder_mask.shape, dtype=encoder_states.dtype, device=encoder_states.device)
    cross_mask = cross_mask.masked_fill(encoder_mask == 0, torch.finfo(encoder_states.dtype).min)[:, None, None]
    self_bias = blocks[0].layer[0].SelfAttention.compute_bias(steps, steps, device=encoder_states.device)
    self_bias = self_bias.to(encoder_states.dtype)  # (1, H, steps, steps); row t is step t's bias

    token = torch.full((batch,), llm.config.decoder_start_token_id, dtype=torch.long, device=encoder_states.device)
    cache: StepCache = [((), ()) for _ in blocks]
    states, tokens = [], []
    for step in range(steps):
        args = (decoder, decoder.embed_tokens(token)[:, None], self_bias[:, :, step : step + 1, : step + 1])
        args += (cross_mask, cross_keys_values, cache)
        if gradient_checkpointing and torch.is_grad_enabled():
            state, new_keys_values = checkpoint(_decoder_step, *args, use_reentrant=False)
        else:
            state, new_keys_values = _decoder_step(*args)
        # New tuples, never appended in place: a checkpointed step must see the same cache when recomputed.
        cache = [
            (keys + (key,), values + (value,))
            for (keys, values), (key, value) in zip(cache, new_keys_values, strict=True)
        ]
        with torch.no_grad():
            # T5 may scale states before a tied lm_head; a positive scale does not move the argmax.
            token = llm.lm_head(state).argmax(dim=-1)
        states.append(state)
        tokens.append(token)
    return torch.stack(states, dim=1), torch.stack(tokens, dim=1)
