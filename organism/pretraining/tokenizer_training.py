"""Deterministic tokenizers for the organism's towers, trained from their corpora.

Why not `train_new_from_iterator`: its trainers break ties in hash order, so the ids change from run to run and the
seeded `ovmlv organism` would not remake the committed towers. These trainers break every tie by the
token's text.

- CLIP: byte-level BPE with CLIP's own normaliser, pre-tokeniser and `</w>` word ends. Merges stop at words seen
  fewer than `min_frequency` times, so the canonical words of the captions become whole tokens and a synonym met
  once is covered by sub-words. The ids follow openai/clip-vit-base-patch32's layout: the 256 byte symbols, the
  same with `</w>`, the merges, then `<|startoftext|>` and `<|endoftext|>` last. The end token has the largest id,
  which is what CLIP's legacy pooling (`eos_token_id == 2`: pool at `argmax(input_ids)`) needs; it also pads.
- T5: a unigram vocabulary of every whitespace-separated word of the corpus and every single character (the
  fallback), scored by log frequency: no word of the corpus is split.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

from tokenizers.pre_tokenizers import ByteLevel
from transformers import CLIPTokenizer, T5Tokenizer

CLIP_BOS, CLIP_EOS = "<|startoftext|>", "<|endoftext|>"
CLIP_CONTEXT_LENGTH = 77
WORD_END = "</w>"


def _clip_words(texts: Iterable[str]) -> Counter[str]:
    """Word counts after CLIP's normaliser and pre-tokeniser (byte-level symbols, no whitespace)."""
    backend = CLIPTokenizer().backend_tokenizer
    words: Counter[str] = Counter()
    for text in texts:
        normalized = backend.normalizer.normalize_str(text)
        words.update(word for word, _ in backend.pre_tokenizer.pre_tokenize_str(normalized))
    return words


def _bpe_merges(words: Counter[str], max_merges: int, min_frequency: int) -> list[tuple[str, str]]:
    """Greedy BPE: merge the most frequent adjacent pair (ties: the smallest pair) until none is frequent enough."""
    segmented = {word: [*word[:-1], word[-1] + WORD_END] for word in words}
    merges: list[tuple[str, str]] = []
    while len(merges) < max_merges:
        pairs: Counter[tuple[str, str]] = Counter()
        for word, symbols in segmented.items():
            for pair in zip(symbols, symbols[1:], strict=False):
                pairs[pair] += words[word]
        if not pairs:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        if pairs[best] < min_frequency:
            break
        merges.append(best)
        for word, symbols in segmented.items():
            merged, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    merged.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    merged.append(symbols[i])
                    i += 1
            segmented[word] = merged
    return merges


def train_clip_tokenizer(texts: Iterable[str], max_merges: int = 2000, min_frequency: int = 2) -> CLIPTokenizer:
    """A CLIPTokenizer whose end token has the largest id (see the module docstring)."""
    merges = _bpe_merges(_clip_words(texts), max_merges, min_frequency)
    alphabet = sorted(ByteLevel.alphabet())
    tokens = [*alphabet, *(symbol + WORD_END for symbol in alphabet)]
    tokens += [left + right for left, right in merges if left + right not in set(tokens)]
    vocab = {token: index for index, token in enumerate(dict.fromkeys([*tokens, CLIP_BOS, CLIP_EOS]))}
    tokenizer = CLIPTokenizer(vocab=vocab, merges=merges)
    tokenizer.model_max_length = CLIP_CONTEXT_LENGTH
    return tokenizer


def train_t5_tokenizer(texts: Iterable[str]) -> T5Tokenizer:
    """A T5Tokenizer (unigram, no sentinel ids) holding every word of `texts` whole."""
    words: Counter[str] = Counter()
    characters: Counter[str] = Counter()
    for text in texts:
        for word in text.split():
            words["▁" + word] += 1
            characters.update(word)
    total = sum(words.values()) + sum(characters.values())
    pieces = [(piece, math.log(count / total)) for piece, count in sorted(words.items())]
    # Single characters, alone or starting a word, score below any word: only unknown words are spelled out.
    floor = min(score for _, score in pieces) - 1.0
    for character in sorted(characters):
        pieces += [(character, floor - 1.0), ("▁" + character, floor - 1.0)]
    pieces = list(dict(pieces).items())
    specials = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", floor - 2.0)]
    return T5Tokenizer(vocab=specials + [p for p in pieces if p[0] != "▁"], extra_ids=0)
