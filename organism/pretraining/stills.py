"""Captioned stills of the synthetic world: what the organism's CLIP is pretrained on.

A still is one frame of a world video (objects of every kind, held-out ones included: CLIP knows the whole world,
only fine-tuning has held-out labels), captioned with canonical words only: colours, shapes, backgrounds and object
counts, never a motion word nor a synonym. So, like the real CLIP, the tower sees objects in a frame, is blind to
motion (a single frame of "moving left" looks like one of "moving right") and has never met a synonym.

Each caption claims a set of facts ("entity:red star", "shape:star", "scene:striped background", "count:2") and is
true of every still that holds them all, so a batch's targets are exact even when captions are partial ("a star"
is true of many stills). Batches are built of groups that differ in one thing only: the shape of one object,
its colour, the colours of two objects swapped (binding), or the background, each still captioned with what its
group varies. In-batch captions then often differ only in shape, which random batches almost never show.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from ovmlv.processing.processing_ovmlv import PROMPT_TEMPLATES

from ..world import SyntheticConfig, VideoSpec, render_video, sample_objects

COUNT_WORDS = ("one", "two", "three")
# Caption forms and their relative frequencies (a group draws among its own forms, GROUP_FORMS, in these proportions).
FORMS = {"full": 0.3, "objects": 0.15, "entity": 0.25, "shape": 0.15, "scene": 0.1, "count": 0.05}
# The forms that tell a group's stills apart: they mention what the group varies.
GROUP_FORMS = {
    "shape": ("full", "objects", "entity", "shape"),
    "colour": ("full", "objects", "entity"),
    "binding": ("full", "objects", "entity"),
    "scene": ("full", "scene", "count"),
    "random": tuple(FORMS),
}
GROUP_KINDS = tuple(GROUP_FORMS)


@dataclass(frozen=True)
class Still:
    spec: VideoSpec  # one-frame tracks
    forms: tuple[str, ...] = tuple(FORMS)  # the caption forms to draw from
    focus: int = 0  # the object that a one-object caption names

    @property
    def facts(self) -> frozenset[str]:
        objects = self.spec.objects
        facts = {f"entity:{obj.entity}" for obj in objects} | {f"shape:{obj.shape}" for obj in objects}
        return frozenset(facts | {f"scene:{self.spec.scene}", f"count:{len(objects)}"})


@dataclass(frozen=True)
class Caption:
    text: str
    facts: frozenset[str]


def sample_still(config: SyntheticConfig, rng: np.random.Generator, single_object: bool = False) -> Still:
    """A random frame of a random world video (of one object if `single_object`), any object kind allowed."""
    kinds = config.object_kinds
    spec = sample_objects(replace(config, max_objects=1) if single_object else config, rng, kinds, kinds)
    return Still(spec.at(int(rng.integers(config.num_frames))))


def _object_phrase(shape: str, colour: str | None, article: bool) -> str:
    words = f"{colour} {shape}" if colour else shape
    return f"{'an' if words[0] in 'aeiou' else 'a'} {words}" if article else words


def _join(phrases: list[str]) -> str:
    return phrases[0] if len(phrases) == 1 else f"{', '.join(phrases[:-1])} and {phrases[-1]}"


def caption(still: Still, rng: np.random.Generator) -> Caption:
    """One random true caption of `still` in one of its forms: everything, the objects only, the focus object (with
    or without its colour), the background only, or the count; bare or wrapped in one of CLIP's prompt templates."""
    spec = still.spec
    objects = [spec.objects[i] for i in rng.permutation(len(spec.objects))]
    article = bool(rng.integers(2))
    weights = np.array([FORMS[form] for form in still.forms])
    form = still.forms[rng.choice(len(still.forms), p=weights / weights.sum())]
    if form in ("full", "objects"):
        text = _join([_object_phrase(obj.shape, obj.colour, article=True) for obj in objects])
        facts = {f"entity:{obj.entity}" for obj in objects} | {f"shape:{obj.shape}" for obj in objects}
        if form == "full":
            text, facts = f"{text} on a {spec.scene}", facts | {f"scene:{spec.scene}"}
    elif form in ("entity", "shape"):
        obj = spec.objects[still.focus]
        colour = obj.colour if form == "entity" else None
        text = _object_phrase(obj.shape, colour, article)
        facts = {f"shape:{obj.shape}"} | ({f"entity:{obj.entity}"} if colour else set())
    elif form == "scene":
        text, facts = (f"a {spec.scene}" if article else spec.scene), {f"scene:{spec.scene}"}
    else:
        count = len(objects)
        text = f"{COUNT_WORDS[count - 1]} {'object' if count == 1 else 'objects'} on a {spec.scene}"
        facts = {f"count:{count}", f"scene:{spec.scene}"}
    if rng.random() < 0.5:
        template = PROMPT_TEMPLATES[rng.integers(len(PROMPT_TEMPLATES))]
        text = template.format(label=text.removeprefix("a ").removeprefix("an ") if "a {label}" in template else text)
    return Caption(text, frozenset(facts))


def _varied(still: Still, kind: str, size: int, config: SyntheticConfig, rng: np.random.Generator) -> list[Still]:
    """Up to `size` stills equal to `still` but for one thing (`kind`), each value different, the original first;
    their captions mention that thing."""
    spec = still.spec
    objects = list(spec.objects)
    target = int(rng.integers(len(objects)))
    forms = GROUP_FORMS[kind]
    if kind == "scene":
        scenes = [spec.scene, *rng.permutation([s for s in config.scenes if s != spec.scene])][:size]
        return [Still(replace(spec, scene=scene), forms, target) for scene in scenes]
    if kind == "binding":
        if len(objects) < 2:
            return [Still(spec, forms, target)]
        other = (target + 1 + int(rng.integers(len(objects) - 1))) % len(objects)
        swapped = list(objects)
        swapped[target] = replace(objects[target], colour=objects[other].colour)
        swapped[other] = replace(objects[other], colour=objects[target].colour)
        return [Still(spec, forms, target), Still(replace(spec, objects=tuple(swapped)), forms, target)]
    attribute, values = ("shape", config.shapes) if kind == "shape" else ("colour", config.colours)
    current = getattr(objects[target], attribute)
    taken = {(obj.shape, obj.colour) for i, obj in enumerate(objects) if i != target}
    choices = [current, *rng.permutation([value for value in values if value != current])]
    stills = []
    for value in choices:
        changed = replace(objects[target], **{attribute: value})
        if (changed.shape, changed.colour) not in taken:  # no video shows one entity twice
            stills.append(
                Still(replace(spec, objects=(*objects[:target], changed, *objects[target + 1 :])), forms, target)
            )
    return stills[:size]


def sample_batch(
    config: SyntheticConfig,
    batch_size: int,
    group_size: int,
    group_weights: tuple[float, ...],
    single_object_share: float,
    rng: np.random.Generator,
) -> tuple[list[Still], list[Caption]]:
    """`batch_size` stills in groups of up to `group_size` that differ in one thing (a kind of GROUP_KINDS drawn
    with `group_weights`), each group grown from a still of one object with probability `single_object_share`;
    and one caption each."""
    weights = np.array(group_weights) / sum(group_weights)
    stills: list[Still] = []
    while len(stills) < batch_size:
        kind = GROUP_KINDS[rng.choice(len(GROUP_KINDS), p=weights)]
        seed_still = sample_still(config, rng, single_object=rng.random() < single_object_share)
        group = [seed_still] if kind == "random" else _varied(seed_still, kind, group_size, config, rng)
        stills.extend(group[: batch_size - len(stills)])
    return stills, [caption(still, rng) for still in stills]


def caption_targets(stills: list[Still], captions: list[Caption]) -> np.ndarray:
    """(stills, captions) float32: 1 where the caption is true of the still (all its facts hold)."""
    return np.array([[float(c.facts <= s.facts) for c in captions] for s in stills], dtype=np.float32)


def render_stills(stills: list[Still], size: int) -> np.ndarray:
    """(N, size, size, 3) uint8 frames as a decoded video shows them (chroma at half resolution, as yuv420p)."""
    frames = np.stack([render_video(still.spec, size)[0] for still in stills])
    return subsample_chroma(frames)


def subsample_chroma(frames: np.ndarray) -> np.ndarray:
    """RGB -> BT.601 YCbCr, chroma averaged over 2x2 blocks, -> RGB: the colour blur of 4:2:0 video."""
    rgb = torch.from_numpy(frames).float().permute(0, 3, 1, 2)  # (N, 3, H, W)
    luma = (rgb * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    chroma = torch.cat([(rgb[:, 2:3] - luma) * 0.564, (rgb[:, 0:1] - luma) * 0.713], 1)  # Cb, Cr
    blue, red = F.interpolate(F.avg_pool2d(chroma, 2), scale_factor=2, mode="nearest").unbind(1)
    luma = luma[:, 0]
    out = torch.stack([luma + 1.403 * red, luma - 0.344 * blue - 0.714 * red, luma + 1.773 * blue], -1)
    return out.round().clamp(0, 255).to(torch.uint8).numpy()
