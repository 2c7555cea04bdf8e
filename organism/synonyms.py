"""The world's words: every concept of the synthetic world by its canonical name and its synonyms.

Why a module of its own: the model organism's towers split the vocabulary. The tiny CLIP is pretrained on captions
that use canonical names only, the tiny T5 on a corpus where every synonym is explained by its canonical name; so a
label written with synonyms ("crimson hoop" for "red ring") is a word CLIP never learned and the LLM knows. Every
synonym is a phrase of its own (no canonical name inside it), and no two concepts share one. Labels are written
with them by `world_labels.written_forms`. (The CLIP tokenizer is trained with these synonyms once each: changing
them changes the committed CLIP's tokenizer.)
"""

from __future__ import annotations

# Canonical concept -> 3 synonyms or paraphrases: a colour by a near-synonym or an object of that colour, a shape by
# a near-synonym, a motion by a paraphrase, a background by another word for it.
SYNONYMS: dict[str, tuple[str, ...]] = {
    # colours
    "red": ("crimson", "scarlet", "tomato-coloured"),
    "orange": ("tangerine", "amber", "pumpkin-coloured"),
    "yellow": ("lemon", "golden", "canary"),
    "green": ("emerald", "grassy", "leaf-coloured"),
    "cyan": ("turquoise", "aqua", "teal"),
    "blue": ("azure", "navy", "cobalt"),
    "purple": ("violet", "plum", "lavender"),
    "pink": ("rosy", "salmon", "flamingo-coloured"),
    "white": ("snowy", "ivory", "milky"),
    "brown": ("chocolate", "coffee-coloured", "chestnut"),
    # shapes
    "circle": ("disc", "orb", "round blob"),
    "square": ("box", "tile", "quadrate"),
    "triangle": ("wedge", "arrowhead", "trigon"),
    "diamond": ("rhombus", "lozenge", "kite"),
    "ring": ("hoop", "loop", "donut"),
    "cross": ("plus sign", "four-armed figure"),
    "bar": ("stick", "strip", "rod"),
    "star": ("pentagram", "five-pointed figure", "twinkle"),
    # motions
    "moving left": ("drifting leftward", "heading west", "travelling westward"),
    "moving right": ("drifting rightward", "heading east", "travelling eastward"),
    "moving up": ("rising", "climbing", "ascending"),
    "moving down": ("falling", "sinking", "descending"),
    "rotating": ("spinning", "twirling", "turning in place"),
    "growing": ("expanding", "swelling", "getting bigger"),
    "shrinking": ("contracting", "dwindling", "getting smaller"),
    "bouncing": ("ricocheting", "rebounding", "caroming"),
    "pulsing": ("throbbing", "pulsating", "beating"),
    # backgrounds
    "dark background": ("black backdrop", "night scene", "unlit backdrop"),
    "grey background": ("ash backdrop", "overcast scene", "slate backdrop"),
    "striped background": ("zebra backdrop", "pinstriped scene", "banded backdrop"),
    "checkered background": ("chessboard backdrop", "gingham scene", "harlequin backdrop"),
}
