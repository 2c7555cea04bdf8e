"""A label played backwards: each time-reversal phrase it holds swapped for its partner ("moving left" -> "moving right").

Why: the direction head (`modeling_ovmlv/direction_head.py`) codes a label's direction as the difference between the
text features of the label and of its reversal, so a label without a reversal phrase has no direction (its code is 0)
and a label and its reversal have opposite ones. Which phrases reverse which is language, not video: the model's
config lists them (`OvmlvConfig.temporal_config.time_reversal_phrases`), as pairs.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

MAX_REVERSAL_PAIRS = 1024  # a processor_config.json may not ask for a larger pattern


class TimeReversal:
    """Swaps every listed phrase for its partner as listed, whole words only, in any letter case ("Moving Left" too: a
    user's capitals must not silently drop a label's direction), longest phrase first, in one pass (so a swapped
    phrase is not swapped back)."""

    def __init__(self, pairs: Sequence[Sequence[str]]):
        self.partner = {}
        for first, second in pairs:
            self.partner[first.casefold()], self.partner[second.casefold()] = second, first
        phrases = sorted(self.partner, key=len, reverse=True)
        alternatives = "|".join(map(re.escape, phrases))
        self.pattern = re.compile(rf"\b({alternatives})\b", re.IGNORECASE) if phrases else None

    def __call__(self, label: str) -> str:
        if self.pattern is None:
            return label
        return self.pattern.sub(lambda match: self.partner[match.group(1).casefold()], label)


@lru_cache(maxsize=8)
def time_reversal(pairs: tuple[tuple[str, str], ...]) -> TimeReversal:
    """The `TimeReversal` of `pairs`, compiled once: a processor reverses every label batch with the same pairs."""
    return TimeReversal(pairs)


def check_reversal_pairs(pairs: Sequence[Sequence[str]], where: str) -> None:
    """Pairs of two different non-empty phrases, no phrase in two pairs (letter case aside: matching ignores it), at
    most `MAX_REVERSAL_PAIRS`."""
    if len(pairs) > MAX_REVERSAL_PAIRS:
        raise ValueError(f"{where}: at most {MAX_REVERSAL_PAIRS} pairs, got {len(pairs)}.")
    seen = set()
    for pair in pairs:
        if isinstance(pair, str) or len(pair) != 2 or not all(isinstance(p, str) and p.strip() for p in pair):
            raise ValueError(
                f"{where}: each entry must be a pair of phrases, e.g. ['moving left', 'moving right']; got {pair!r}."
            )
        phrases = {phrase.casefold() for phrase in pair}
        if len(phrases) < 2 or seen & phrases:
            raise ValueError(f"{where}: {pair!r} repeats a phrase; each phrase may have one partner.")
        seen |= phrases
