"""World v2's labels: what each one means, the rule that decides it from a video, and how it may be written.

Why a module: the label encoder must meet a vocabulary of thousands (the paper trains on YouTube-8M's 2429 labels),
with meanings that only the LLM knows. Every label is built from what the renderer draws, so a rule on the video's
objects decides it (docs/organism.md lists the rules):
- object labels: a colour, a shape and a motion constraint, any of them absent, each a concept ("red", "star",
  "moving left") or a category of concepts ("warm-coloured", "polygon", "moving horizontally"); true when one object
  meets every constraint. Written "{colour} {shape} {motion}", a missing shape as "object" ("red object").
  Triples use concepts only; a category stands beside at most one other constraint;
- count labels: "two objects" (exactly two objects), "three stars" (exactly three stars), "two red objects";
- scene labels: the background ("striped background") or its category ("patterned background").
Categories are named only in the T5's corpus: CLIP's captions never use them.

Held-out structure, decided once here:
(a) unseen compositions: `HELDOUT_PAIRS` (colour-shape) and `HELDOUT_SHAPE_MOTIONS`; every object label naming one of
    them is held out, and no train or val video shows such an object;
(b) synonyms: every concept of `SYNONYMS` has 2-3. Those of `SEEN_SYNONYM_CONCEPTS` appear in training labels
    (`written_forms(..., heldout=False)`); the others' only in the paraphrased test set;
(c) categories: `HELDOUT_CATEGORIES` never appear in training labels; the other categories do;
(d) the time-reversal pairs (`world.TIME_REVERSAL_PAIRS`): training labels that only frame order tells apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

from .synonyms import SYNONYMS

COLOUR_CATEGORIES: dict[str, tuple[str, ...]] = {
    "warm-coloured": ("red", "orange", "yellow", "pink", "brown"),  # hue between magenta and yellow
    "cool-coloured": ("green", "cyan", "blue", "purple"),  # hue between green and violet
    "dark-coloured": ("red", "blue", "purple", "brown"),  # luma (BT.601) below 110 of 255
    "light-coloured": ("orange", "yellow", "cyan", "pink", "white"),  # luma above 150
}
SHAPE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "polygon": ("square", "triangle", "diamond", "cross", "bar", "star"),  # straight edges only
    "curved shape": ("circle", "ring"),  # no straight edge
    "four-sided shape": ("square", "diamond", "bar"),
    "pointed shape": ("triangle", "diamond", "star"),  # a corner sharper than a right angle
}
MOTION_CATEGORIES: dict[str, tuple[str, ...]] = {
    "moving horizontally": ("moving left", "moving right"),
    "moving vertically": ("moving up", "moving down"),
    "changing size": ("growing", "shrinking", "pulsing"),
    "travelling": ("moving left", "moving right", "moving up", "moving down", "bouncing"),  # the centre moves
    "staying in place": ("rotating", "growing", "shrinking", "pulsing"),  # the centre stays
}
SCENE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "patterned background": ("striped background", "checkered background"),
    "plain background": ("dark background", "grey background"),
}
CATEGORIES = COLOUR_CATEGORIES | SHAPE_CATEGORIES | MOTION_CATEGORIES | SCENE_CATEGORIES
HELDOUT_CATEGORIES = frozenset(
    {"cool-coloured", "light-coloured", "curved shape", "four-sided shape", "moving vertically", "staying in place"}
    | {"plain background"}
)
# (a) compositions of seen concepts that fine-tuning never shows.
HELDOUT_PAIRS = frozenset(
    {
        ("blue", "circle"),
        ("yellow", "triangle"),
        ("green", "square"),
        ("purple", "ring"),
        ("orange", "diamond"),
        ("white", "bar"),
        ("red", "star"),
        ("cyan", "cross"),
    }
)
HELDOUT_SHAPE_MOTIONS = frozenset(
    {
        ("star", "rotating"),
        ("circle", "moving up"),
        ("square", "bouncing"),
        ("ring", "growing"),
        ("triangle", "pulsing"),
        ("cross", "moving left"),
        ("bar", "shrinking"),
        ("diamond", "moving down"),
    }
)
# (b) every other concept of each kind, in `SYNONYMS` order: their synonyms appear in training labels.
SEEN_SYNONYM_CONCEPTS = frozenset(list(SYNONYMS)[0::2])
COUNT_WORDS = ("one", "two", "three")
PLURALS = {"cross": "crosses"}

# Kinds of label (labels.json), and the held-out kinds (heldout.json).
UNSEEN_COMPOSITION, HELDOUT_SYNONYM, HELDOUT_CATEGORY = "unseen composition", "held-out synonym", "held-out category"


@dataclass(frozen=True)
class Label:
    """One label's meaning. Object labels: `colour`, `shape`, `motion` constraints (a concept, a category or None).
    Count labels: `count` with an optional `colour` or `shape` concept. Scene labels: `scene` (a background or its
    category)."""

    colour: str | None = None
    shape: str | None = None
    motion: str | None = None
    count: int | None = None
    scene: str | None = None

    @property
    def kind(self) -> str:
        """For per-kind tables: category, count, scene, action (names a motion) or entity."""
        if set(self.parts) & set(CATEGORIES):
            return "category"
        if self.count is not None:
            return "count"
        if self.scene is not None:
            return "scene"
        return "action" if self.motion else "entity"

    @property
    def parts(self) -> tuple[str, ...]:
        """The concepts and categories it names, in written order."""
        return tuple(part for part in (self.colour, self.shape, self.motion, self.scene) if part is not None)

    def text(self, names: dict[str, str] | None = None) -> str:
        """The label written with `names` for its concepts (a synonym by concept; canonical names by default)."""
        name = {part: (names or {}).get(part, part) for part in self.parts}
        if self.scene is not None:
            return name[self.scene]
        if self.count is not None:
            noun = (
                PLURALS.get(self.shape, f"{self.shape}s") if self.shape else "objects" if self.count > 1 else "object"
            )
            return " ".join([COUNT_WORDS[self.count - 1], *([self.colour] if self.colour else []), noun])
        shape = name[self.shape] if self.shape else "object" if self.colour or not self.motion else None
        return " ".join(word for word in (name.get(self.colour), shape, name.get(self.motion)) if word)

    def holds(self, objects: list[tuple[str, str, str]], scene: str | None) -> bool:
        """The rule: whether the label is true of a video showing `objects` (colour, shape, motion) on `scene`."""
        if self.scene is not None:
            return scene is not None and _meets(scene, self.scene)
        if self.count is not None:
            matching = [
                (colour, shape)
                for colour, shape, _ in objects
                if self.colour in (None, colour) and self.shape in (None, shape)
            ]
            return len(matching) == self.count
        return any(
            all(_meets(value, want) for value, want in zip(obj, (self.colour, self.shape, self.motion), strict=True))
            for obj in objects
        )


def _meets(value: str, constraint: str | None) -> bool:
    return constraint is None or value == constraint or value in CATEGORIES.get(constraint, ())


def world_labels(
    colours: tuple[str, ...], shapes: tuple[str, ...], motions: tuple[str, ...], scenes: tuple[str, ...]
) -> list[Label]:
    """Every canonical label of a world of these concepts, in a fixed order (categories kept to those with a member
    in the world)."""

    def with_categories(concepts: tuple[str, ...], categories: dict[str, tuple[str, ...]]) -> list[str]:
        return [*concepts, *(name for name, members in categories.items() if set(members) & set(concepts))]

    colour_words = with_categories(colours, COLOUR_CATEGORIES)
    shape_words = with_categories(shapes, SHAPE_CATEGORIES)
    motion_words = with_categories(motions, MOTION_CATEGORIES)
    labels = [Label(shape=shape) for shape in shape_words]
    labels += [Label(colour=colour) for colour in colour_words]
    labels += [Label(motion=motion) for motion in motion_words]
    labels += [Label(colour=colour, shape=shape) for colour, shape in product(colour_words, shape_words)]
    labels += [Label(shape=shape, motion=motion) for shape, motion in product(shape_words, motion_words)]
    labels += [Label(*triple) for triple in product(colours, shapes, motions)]
    labels += [Label(count=count) for count in range(1, len(COUNT_WORDS) + 1)]
    labels += [Label(shape=shape, count=count) for shape in shapes for count in (2, 3)]
    labels += [Label(colour=colour, count=count) for colour in colours for count in (2, 3)]
    labels += [Label(scene=scene) for scene in with_categories(scenes, SCENE_CATEGORIES)]
    return labels


def heldout_kind(label: Label) -> str | None:
    """Which held-out kind a canonical label belongs to, None for a training label."""
    if (label.colour, label.shape) in HELDOUT_PAIRS or (label.shape, label.motion) in HELDOUT_SHAPE_MOTIONS:
        return UNSEEN_COMPOSITION  # (no count label names a pair)
    if set(label.parts) & HELDOUT_CATEGORIES:
        return HELDOUT_CATEGORY
    return None


def is_novel_object(colour: str, shape: str, motion: str) -> bool:
    """Whether an object shows an unseen composition: only held-out videos show it."""
    return (colour, shape) in HELDOUT_PAIRS or (shape, motion) in HELDOUT_SHAPE_MOTIONS


def written_forms(label: Label, variants: int, heldout: bool, offset: int = 0) -> list[str]:
    """Up to `variants` distinct paraphrases of a canonical label. heldout=False: the synonyms of seen-synonym
    concepts, the other concepts in canonical words (training labels; none if it names no such concept);
    heldout=True: every concept by a synonym, at least one of them a held-out synonym (none if there is none to
    use); a label naming a single concept gets every synonym. `offset` (the label's vocabulary position) rotates
    which synonyms, so that a vocabulary uses them all. Count labels are never paraphrased."""
    if label.count is not None:
        return []
    concepts = [part for part in label.parts if part in SYNONYMS]
    replaced = [c for c in concepts if heldout or c in SEEN_SYNONYM_CONCEPTS]
    if not replaced or (heldout and set(concepts) <= SEEN_SYNONYM_CONCEPTS):
        return []
    if len(concepts) == 1:  # a bare concept: every synonym
        variants = max(variants, len(SYNONYMS[concepts[0]]))
    forms = []
    for variant in range(offset, offset + variants):
        names = {c: SYNONYMS[c][(variant + position) % len(SYNONYMS[c])] for position, c in enumerate(replaced)}
        forms.append(label.text(names))
    return list(dict.fromkeys(forms))
