"""The text corpus the organism's T5 ("LLM") is pretrained on: what every word of the world means.

(prompt, answer) pairs, generated from the world's concepts (`training.synthetic`) and their synonyms
(`training.synonyms`); canonical names and synonyms alike get:
- descriptions of what the concept looks like or how it moves ("describe hoop." -> "ring: a round outline with a
  hole in the middle");
- answers to the label encoder's instruction (`processing`'s LLM prompt template, and its video variant) for
  every label of the world written with canonical words or any mix of synonyms: the canonical label, then its
  visual features, as a numbered list;
- synonym <-> canonical pairs ("crimson" -> "red", "another word for red:" -> "crimson"), the bare word included,
  so that a synonym and its canonical name lead to the same text.
So the T5 alone knows that the synonyms mean the canonical concepts, which CLIP never learns.
"""

from __future__ import annotations

from itertools import product

from ovmlv.processing.processing_ovmlv import LLM_PROMPT_TEMPLATE

from ..synonyms import SYNONYMS
from ..synthetic import COLOURS, SyntheticConfig

VIDEO_PROMPT_TEMPLATE = (
    "Q: What are useful visual features for distinguishing a {label} in a video? "
    "A: There are several useful visual features to tell about a {label} in a video: 1."
)
PROMPT_TEMPLATES = (LLM_PROMPT_TEMPLATE, VIDEO_PROMPT_TEMPLATE)

# What each canonical concept looks like or how it moves, in canonical words.
FEATURES: dict[str, tuple[str, ...]] = {
    **{colour: (f"{colour} colour", f"a {colour} object") for colour in COLOURS},
    **{
        "circle": ("circle shape", "a round outline with no corners"),
        "square": ("square shape", "four equal sides and four corners"),
        "triangle": ("triangle shape", "three sides and three corners"),
        "diamond": ("diamond shape", "a long shape with four pointed corners"),
        "ring": ("ring shape", "a round outline with a hole in the middle"),
        "cross": ("cross shape", "two arms crossing at the centre"),
        "bar": ("bar shape", "a long thin rectangle"),
        "star": ("star shape", "five sharp points around the centre"),
        "moving left": ("moving left", "it travels from right to left across the frame"),
        "moving right": ("moving right", "it travels from left to right across the frame"),
        "moving up": ("moving up", "it travels from the bottom to the top of the frame"),
        "moving down": ("moving down", "it travels from the top to the bottom of the frame"),
        "rotating": ("rotating", "it turns around its centre in place"),
        "growing": ("growing", "it gets larger over time"),
        "shrinking": ("shrinking", "it gets smaller over time"),
        "bouncing": ("bouncing", "it reflects off the walls of the frame"),
        "pulsing": ("pulsing", "its size swells and shrinks again and again"),
        "dark background": ("dark background", "a plain dark scene behind the objects"),
        "grey background": ("grey background", "a plain grey scene behind the objects"),
        "striped background": ("striped background", "diagonal stripes behind the objects"),
        "checkered background": ("checkered background", "a pattern of grey squares behind the objects"),
    },
}


def _names(concept: str) -> tuple[str, ...]:
    """The canonical name of a concept and its synonyms."""
    return (concept, *SYNONYMS[concept])


def labels_with_meanings(world: SyntheticConfig) -> list[tuple[str, str, tuple[str, ...]]]:
    """(label as written, canonical label, the concepts it names) for every label of the world written with its
    canonical name or any synonym, colour-shape pairs with every combination of colour and shape words."""
    written = []
    for concept in (*world.shapes, *world.motions, *world.scenes):
        written += [(name, concept, (concept,)) for name in _names(concept)]
    for colour, shape in product(world.colours, world.shapes):
        for colour_name, shape_name in product(_names(colour), _names(shape)):
            written.append((f"{colour_name} {shape_name}", f"{colour} {shape}", (colour, shape)))
    return written


def feature_answer(canonical: str, concepts: tuple[str, ...]) -> str:
    """The answer after the template's "1.": the canonical label, then each concept's features, numbered."""
    features = [feature for concept in concepts for feature in FEATURES[concept]]
    return " ".join([canonical, *(f"{index}. {feature}" for index, feature in enumerate(features, start=2))])


def corpus(world: SyntheticConfig) -> list[tuple[str, str]]:
    """Every (prompt, answer) pair of the corpus, in a fixed order."""
    pairs: list[tuple[str, str]] = []
    concepts = [*world.colours, *world.shapes, *world.motions, *world.scenes]
    for concept in concepts:
        features = "; ".join(FEATURES[concept])
        for name in _names(concept):
            pairs += [
                (name, concept),
                (f"what does {name} mean?", concept),
                (f"describe {name}.", f"{concept}: {features}"),
            ]
        pairs += [(f"another word for {concept}:", synonym) for synonym in SYNONYMS[concept]]
    for written, canonical, meaning in labels_with_meanings(world):
        answer = feature_answer(canonical, meaning)
        pairs += [(template.format(label=written), answer) for template in PROMPT_TEMPLATES]
        if len(meaning) == 2:  # a colour-shape pair also read back as a phrase
            pairs.append((written, canonical))
    return pairs
