"""The text corpus the organism's T5 ("LLM") is pretrained on: what every word of the world means.

(prompt, answer) pairs, generated from the world's concepts (`organism.world`), their synonyms
(`organism.synonyms`) and the categories (`organism.world_labels`), held-out synonyms and categories included: the
T5 plays the LLM that knows the whole world; only the label encoder's training labels leave some out.
- descriptions of what each concept looks like or how it moves, with the categories it belongs to ("describe
  hoop." -> "ring: ... ; a curved shape"), and of each category by its members ("describe polygon." -> "polygon:
  a square, a triangle, ..."), with yes/no membership questions;
- answers to the label encoder's instruction (`processing`'s LLM prompt template, or its video variant, in turn)
  for every label of the world, canonical or paraphrased: the canonical label, then the visual features of each part
  (a category's by its members), as a numbered list;
- synonym <-> canonical pairs ("crimson" -> "red", "another word for red:" -> "crimson"), the bare word included,
  so that a synonym and its canonical name lead to the same text; a bare concept reads back with its categories,
  a bare category with its members.
The definitions come `DEFINITION_REPEATS` times, the instruction answers once. So the T5 alone knows that
"crimson" means red and that a ring is a curved shape, which CLIP never learns.
"""

from __future__ import annotations

from ovmlv.processing.processing_ovmlv import LLM_PROMPT_TEMPLATE

from ..synonyms import SYNONYMS
from ..world import COLOURS, SyntheticConfig
from ..world_labels import CATEGORIES, COLOUR_CATEGORIES, MOTION_CATEGORIES, SCENE_CATEGORIES, SHAPE_CATEGORIES

VIDEO_PROMPT_TEMPLATE = (
    "Q: What are useful visual features for distinguishing a {label} in a video? "
    "A: There are several useful visual features to tell about a {label} in a video: 1."
)
PROMPT_TEMPLATES = (LLM_PROMPT_TEMPLATE, VIDEO_PROMPT_TEMPLATE)
# The definitions (words, synonyms, categories, membership) come this many times: once each, they were 1 in 7 of the
# pairs and 1200 steps left synonyms at 0.89 nearness and the membership answers at chance.
DEFINITION_REPEATS = 4
# The membership questions come this many times (balanced, `membership_questions`): 125 facts asked under 3 names
# each, which the definitions alone left at chance.
MEMBERSHIP_REPEATS = 8

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


def categories_of(concept: str) -> list[str]:
    """The categories a concept belongs to, in `CATEGORIES` order."""
    return [category for category, members in CATEGORIES.items() if concept in members]


def category_definition(category: str) -> str:
    """'curved shape: circle or ring', in canonical words."""
    members = CATEGORIES[category]
    return f"{category}: {', '.join(members[:-1])} or {members[-1]}"


def features(concept: str) -> tuple[str, ...]:
    """What a concept or category looks like: a concept's features then its categories; a category's members."""
    if concept in CATEGORIES:
        return (category_definition(concept),)
    return (*FEATURES[concept], *categories_of(concept))


def category_candidates(world: SyntheticConfig) -> dict[str, tuple[str, ...]]:
    """{category: the world's concepts of its kind}: what its members are ranked among."""
    kinds = (
        (COLOUR_CATEGORIES, world.colours),
        (SHAPE_CATEGORIES, world.shapes),
        (MOTION_CATEGORIES, world.motions),
        (SCENE_CATEGORIES, world.scenes),
    )
    return {category: tuple(concepts) for categories, concepts in kinds for category in categories}


def labels_with_meanings(world: SyntheticConfig) -> list[tuple[str, str, tuple[str, ...]]]:
    """(label as written, canonical label, the concepts and categories it names) for every label of the world,
    canonical or paraphrased (`SyntheticConfig.paraphrases`, held-out synonyms included)."""
    meanings = {text: label.parts for text, label in world.labels.items()}
    written = [(text, text, parts) for text, parts in meanings.items()]
    return written + [(form, text, meanings[text]) for form, text in world.paraphrases.items()]


def feature_answer(canonical: str, concepts: tuple[str, ...]) -> str:
    """The answer after the template's "1.": the canonical label, then each part's features, numbered."""
    listed = [feature for concept in concepts for feature in features(concept)]
    return " ".join([canonical, *(f"{index}. {feature}" for index, feature in enumerate(listed, start=2))])


def membership_answer(concept: str, category: str) -> str:
    """'red; warm-coloured: red, orange, yellow, pink or brown; yes': the concept the name means, the category's
    definition, then the verdict. Recalling both first turns the verdict into finding one word in a list; asked for
    the verdict alone, the tiny T5 judged by the name and ignored the category (members ranked at 0.55-0.61 AUROC,
    below chance for categories of rarely-member concepts)."""
    verdict = "yes" if concept in CATEGORIES[category] else "no"
    return f"{concept}; {category_definition(category)}; {verdict}"


def membership_questions(world: SyntheticConfig) -> list[tuple[str, str]]:
    """'is crimson warm-coloured?' -> `membership_answer` for every name of every candidate of every category. A
    category's members are the minority of its candidates, so their questions come as many times more as it takes
    for "yes" to be as common as "no": unbalanced, the T5 learnt to answer "no" to nearly everything."""
    questions: list[tuple[str, str]] = []
    for category, candidates in category_candidates(world).items():
        members = [concept for concept in candidates if concept in CATEGORIES[category]]
        balance = max(1, round((len(candidates) - len(members)) / max(len(members), 1)))
        for concept in candidates:
            times = balance if concept in members else 1
            answer = membership_answer(concept, category)
            questions += [(f"is {name} {category}?", answer) for name in _names(concept)] * times
    return questions


def corpus(world: SyntheticConfig) -> list[tuple[str, str]]:
    """Every (prompt, answer) pair of the corpus, in a fixed order."""
    pairs: list[tuple[str, str]] = []
    concepts = [*world.colours, *world.shapes, *world.motions, *world.scenes]
    for concept in concepts:
        described = "; ".join(features(concept))
        bare = ", ".join([concept, *categories_of(concept)])
        for name in _names(concept):
            pairs += [
                (name, bare),
                (f"what does {name} mean?", concept),
                (f"describe {name}.", f"{concept}: {described}"),
            ]
        pairs += [(f"another word for {concept}:", synonym) for synonym in SYNONYMS[concept]]
    for category in category_candidates(world):
        definition = category_definition(category)
        pairs += [
            (category, definition),
            (f"what is a {category}?", definition),
            (f"describe {category}.", definition),
        ]
    pairs *= DEFINITION_REPEATS
    pairs += membership_questions(world) * MEMBERSHIP_REPEATS
    for index, (written, canonical, meaning) in enumerate(labels_with_meanings(world)):
        template = PROMPT_TEMPLATES[index % len(PROMPT_TEMPLATES)]  # the templates in turn: both, half the cost
        pairs.append((template.format(label=written), feature_answer(canonical, meaning)))
        if written != canonical:  # a paraphrase also read back as its canonical phrase
            pairs.append((written, canonical))
    return pairs
