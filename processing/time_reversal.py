"""A label played backwards: each time-reversal phrase it holds swapped for its partner ("moving left" -> "moving right").

Why: the direction head (`modeling_ovmlv/direction_head.py`) codes a label's direction as the difference between the
text features of the label and of its reversal, so a label without a reversal phrase has no direction (its code is 0)
and a label and its reversal have opposite ones. Which phrases reverse which is language, not video: the model's
config lists them (`OvmlvConfig.temporal_config.time_reversal_phrases`), as pairs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

MAX_REVERSAL_PAIRS = 1024  # a processor_config.json may not ask for a larger pattern


class TimeReversal:
    """Swaps every listed phrase for its partner, whole words only, longest phrase first, in one pass (so a swapped
    phrase is not swapped back)."""

    def __init__(self, pairs: Sequence[Sequence[str]]):
        self.partner = {}
        for first, second in pairs:
            self.partner[first], self.partner[second] = second, first
        phrases = sorted(self.partner, key=len, reverse=True)
        self.pattern = re.compile(r"\b(" + "|".join(map(re.escape, phrases)) + r")\b") if phrases else None

    def __call__(self, label: str) -> str:
        if self.pattern is None:
            return label
        return self.pattern.sub(lambda match: self.partner[match.group(1)], label)


def check_reversal_pairs(pairs: Sequence[Sequence[str]], where: str) -> None:
    """Pairs of two different non-empty phrases, no phrase in two pairs, at most `MAX_REVERSAL_PAIRS`."""
    if len(pairs) > MAX_REVERSAL_PAIRS:
        raise ValueError(f"{where}: at most {MAX_REVERSAL_PAIRS} pairs, got {len(pairs)}.")
    seen = set()
    for pair in pairs:
        if isinstance(pair, str) or len(pair) != 2 or not all(isinstance(p, str) and p.strip() for p in pair):
            raise ValueError(
                f"{where}: each entry must be a pair of phrases, e.g. ['moving left', 'moving right']; got {pair!r}."
            )
        if pair[0] == pair[1] or seen & set(pair):
            raise ValueError(f"{where}: {pair!r} repeats a phrase; each phrase may have one partner.")
        seen |= set(pair)
