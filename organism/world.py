"""The synthetic world: tiny H.264 videos of moving coloured shapes, labelled from a vocabulary of thousands.

Why: the end-to-end demo and the model organism (`ovmlv organism`) need a world that tiny towers learn on 2 CPU
cores, with labels enough for open vocabulary to mean something (the paper's label encoder trains on thousands),
meanings that only the LLM knows, and labels that only temporal modelling tells apart. Each video shows 1-3 objects
(no two of one colour and shape) on a background; an object has a colour (10), a shape (8) and a motion (9); the
background is one of 4 scenes. World v2 (the default, `version=2`) labels a video by every label of
`organism.world_labels` whose rule holds: colours, shapes, motions, their pairs and triples, counts, backgrounds,
and categories ("polygon", "warm-coloured object", "moving horizontally") that only the T5's corpus defines;
about 1,150 canonical labels, with synonyms (`organism.synonyms`) well over 2,000 written forms.

Only the order of frames tells the time-reversed pairs in `TIME_REVERSAL_PAIRS` apart: the second label's track is
the first's played backwards (a mover to the left is a mover to the right reversed; shrinking is growing
reversed), so the frames of a video of one side, taken as a set, are distributed exactly as the other side's.
- Movers cross the frame in a straight line without wrapping (v2): the centre goes 0.3 frame widths a second,
  starting where the whole path keeps it inside the frame, across-axis fully inside. Their heading shows nothing
  of the direction (uniform), so only the order of positions does. World v1 (`version=1`, the frames the
  committed CLIP was pretrained on) let movers wrap around the frame edges from a uniform start, which hid the
  direction from any window of frames that straddled the edge.
- Growing and shrinking sweep the same radius range linearly; every other object except pulsing ones has a fixed
  radius drawn uniformly from that range. Pulsing objects swing between the range's ends (`pulse_rate` cycles a
  second), in time with no direction.
- Every object carries a dark marker dot along its heading, so rotation is visible even on a circle; non-rotating
  objects have a uniform random heading. Shapes differ whatever the heading: the diamond is a rhombus (never a
  turned square), the bar a long rectangle.
- Bouncing objects move diagonally inside the frame and reflect off the walls (horizontally at least once).

Held-out structure (open-vocabulary evaluation), decided once in `organism.world_labels`: (a) unseen compositions
(objects of a held-out colour-shape or shape-motion pair are only in held-out videos, every label naming the pair
only in the held-out vocabulary), (b) held-out synonyms (only in heldout_paraphrased.jsonl), (c) held-out
categories, (d) the time-reversal pairs, in every split. No held-out label is in vocab_train.txt, train.jsonl or
val.jsonl (the calibration set).

Output layout of `generate_dataset(out_dir, config)`:
- videos/{split}_{index:05d}.mp4 (libx264, yuv420p, `config.fps` fps, `config.num_frames` frames);
- train.jsonl, val.jsonl: `{"video", "labels", "source": "synthetic"}` per line, the video path relative to the
  manifest's folder, the labels every true training label (canonical, and paraphrased with seen synonyms);
  heldout.jsonl: every true label of vocab_all; heldout_paraphrased.jsonl: the held-out videos again, labelled by
  every true paraphrase (seen and held-out synonyms) of their training labels;
- vocab_all.txt (every canonical label, then the training labels' seen-synonym paraphrases), vocab_train.txt (the
  training labels), vocab_paraphrased.txt (every paraphrase of a training label), one label a line;
- labels.json `{label: kind}` for vocab_all and vocab_train (kinds: entity, action, count, scene, category) and
  labels_paraphrased.json for vocab_paraphrased; heldout.json `{label: held-out kind}` for every held-out label
  ("unseen composition", "held-out synonym", "held-out category"); paraphrases.json `{paraphrase: label}`;
  time_reversal_pairs.json `[[label, reversed label], ...]`;
- synthetic_config.json: the `SyntheticConfig` that made the folder (same seed, same videos).

CLI: `ovmlv synthetic --out DIR [--num-train N --num-val N --num-heldout N --size 64 --fps 8
--seconds 2.5 --seed 0 --workers 2 --version 2]`.
"""

import json
import math
import os
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from functools import cached_property, partial
from itertools import product
from multiprocessing import Pool
from pathlib import Path

import av
import numpy as np
from tqdm import tqdm

from ovmlv.modeling_ovmlv.atomic_files import write_text_atomically

from .world_labels import (
    HELDOUT_SYNONYM,
    Label,
    heldout_kind,
    is_novel_object,
    world_labels,
    written_forms,
)

# Saturated, far apart in hue or lightness: they survive 4:2:0 chroma subsampling and x264 at 64 px.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "orange": (250, 140, 20),
    "yellow": (240, 220, 40),
    "green": (40, 190, 60),
    "cyan": (40, 210, 220),
    "blue": (50, 90, 240),
    "purple": (140, 60, 210),
    "pink": (250, 130, 190),
    "white": (245, 245, 245),
    "brown": (130, 75, 30),
}
MARKER_COLOUR = (0, 0, 0)
# Marker dot centre and radius as fractions of the object radius: on the object, off its centre.
MARKER_OFFSET, MARKER_RADIUS = 0.45, 0.2

# Unit steps in image coordinates (y grows downwards).
DIRECTIONS: dict[str, tuple[float, float]] = {
    "moving left": (-1.0, 0.0),
    "moving right": (1.0, 0.0),
    "moving up": (0.0, -1.0),
    "moving down": (0.0, 1.0),
}
MOTIONS: tuple[str, ...] = (*DIRECTIONS, "rotating", "growing", "shrinking", "bouncing", "pulsing")
TIME_REVERSAL_PAIRS: tuple[tuple[str, str], ...] = (
    ("moving left", "moving right"),
    ("moving up", "moving down"),
    ("growing", "shrinking"),
)
SPLITS = ("train", "val", "heldout")
PARAPHRASED = "heldout_paraphrased"  # the held-out videos' manifest with paraphrased labels
SOURCE = "synthetic"


def _circle(u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    return u**2 + v**2 <= r**2


def _square(u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Inscribed in the circle of radius r, the heading pointing at an edge's midpoint."""
    return np.maximum(np.abs(u), np.abs(v)) <= r / math.sqrt(2)


def _triangle(u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Equilateral, inscribed in the circle of radius r, a vertex along the heading; its inradius is r / 2."""
    inside = np.ones(np.broadcast_shapes(u.shape, v.shape), dtype=bool)
    for normal in (math.pi, math.pi / 3, -math.pi / 3):  # outward normals of the edges facing each vertex
        inside &= u * math.cos(normal) + v * math.sin(normal) <= r / 2
    return inside


def _diamond(u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    """A rhombus 1.6 times as long (along the heading) as it is wide, so that no heading makes it a square."""
    return np.abs(u) + 1.6 * np.abs(v) <= r


def _ring(u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    """A circle with a hole of half its radius."""
    distance = u**2 + v**2
    return (distance <= r**2) & (distance >= (r / 2) ** 2)


def _cross(u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    """A plus sign: two arms of length 2r and width 0.6r."""
    reach, half_width = np.maximum(np.abs(u), np.abs(v)), np.minimum(np.abs(u), np.abs(v))
    return (reach <= r) & (half_width <= 0.3 * r)


def _bar(u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    """A rectangle 2r long along the heading and 0.7r wide."""
    return (np.abs(u) <= r) & (np.abs(v) <= 0.35 * r)


STAR_POINTS, STAR_INNER_RADIUS = 5, 0.45  # inner vertices at 0.45 r


def _star(u: np.ndarray, v: np.ndarray, r: np.ndarray) -> np.ndarray:
    """A five-pointed star, a point along the heading: inside the edge from a point to its inner vertex."""
    half_step = math.pi / STAR_POINTS
    angle = np.abs((np.arctan2(v, u) + half_step) % (2 * half_step) - half_step)  # to the nearest point, [0, pi/5]
    distance = np.sqrt(u**2 + v**2)
    x, y = distance * np.cos(angle), distance * np.sin(angle)
    inner_x, inner_y = STAR_INNER_RADIUS * math.cos(half_step), STAR_INNER_RADIUS * math.sin(half_step)
    # Edge from (1, 0) to (inner_x, inner_y), scaled by r; the origin is on its inner side.
    normal_x, normal_y = inner_y, 1 - inner_x
    return x * normal_x + y * normal_y <= r * normal_x


# Shape masks in object coordinates: u along the heading, v across it, r the circumradius, all broadcastable.
SHAPES: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "circle": _circle,
    "square": _square,
    "triangle": _triangle,
    "diamond": _diamond,
    "ring": _ring,
    "cross": _cross,
    "bar": _bar,
    "star": _star,
}


def _plain_background(level: int, size: int) -> np.ndarray:
    return np.full((size, size, 3), level, dtype=np.uint8)


def _striped_background(size: int) -> np.ndarray:
    """Static diagonal stripes: texture that neither moves nor hides an object's colour."""
    rows, cols = np.indices((size, size))
    stripes = ((rows + cols) // max(size // 16, 1)) % 2 == 1
    return np.repeat(np.where(stripes, 90, 25).astype(np.uint8)[..., None], 3, axis=2)


def _checkered_background(size: int) -> np.ndarray:
    """Static squares of an eighth of the frame, two greys."""
    rows, cols = np.indices((size, size)) // max(size // 8, 1)
    return np.repeat(np.where((rows + cols) % 2 == 1, 150, 70).astype(np.uint8)[..., None], 3, axis=2)


# Scene label -> painter of a (size, size, 3) uint8 background. The first one is also the unlabelled default.
SCENES: dict[str, Callable[[int], np.ndarray]] = {
    "dark background": partial(_plain_background, 20),
    "grey background": partial(_plain_background, 120),
    "striped background": _striped_background,
    "checkered background": _checkered_background,
}


CONFIG_FILE = "synthetic_config.json"
# The concepts of a small world v2 for smoke tests (`ovmlv demo --quick`, the test suite): 458 training labels where
# the whole world has 2,278, with every held-out kind and every time-reversal pair still in it. Evaluating the whole
# world's vocabularies took minutes of a 3-step quick demo.
SMALL_WORLD = {
    "colours": ("red", "blue", "yellow", "green"),
    "shapes": ("circle", "square", "triangle", "star"),
    "motions": ("moving left", "moving right", "moving up", "moving down", "growing", "shrinking"),
}


@dataclass
class SyntheticConfig:
    """What the benchmark contains. Saved as synthetic_config.json next to the data so a folder can be rebuilt."""

    num_train: int = 400
    num_val: int = 100
    num_heldout: int = 100
    size: int = 64  # frame height = width in pixels; even, as yuv420p needs
    fps: int = 8
    seconds: float = 2.5  # 20 frames: 8-frame clips sampled one per segment still span the motion
    min_objects: int = 1
    max_objects: int = 3
    shapes: tuple[str, ...] = tuple(SHAPES)
    colours: tuple[str, ...] = tuple(COLOURS)
    motions: tuple[str, ...] = MOTIONS
    scenes: tuple[str, ...] = tuple(SCENES)  # () = unlabelled dark background
    radius_range: tuple[float, float] = (0.14, 0.22)  # object circumradius as a fraction of `size`
    speed: float = 0.3  # frame widths per second, movers and bouncers alike
    rotation_speed: float = 0.5  # turns per second
    pulse_rate: float = 1.0  # radius cycles per second
    crf: int = 20  # x264 constant rate factor: low enough that small shapes keep their colour
    seed: int = 0
    version: int = 2  # 1: movers wrap around the frame edges (the frames the committed CLIP was pretrained on)
    paraphrase_variants: int = 2  # paraphrases per label and side (seen synonyms; held-out synonyms)

    @classmethod
    def of_folder(cls, folder: str | Path) -> "SyntheticConfig":
        """The config that wrote `folder` (its synthetic_config.json)."""
        return cls(**json.loads((Path(folder) / CONFIG_FILE).read_text(encoding="utf-8")))

    def __post_init__(self) -> None:
        if self.size % 2:
            raise ValueError(f"size must be even for yuv420p, got {self.size}")
        if self.num_frames < 2:
            raise ValueError("a video needs at least 2 frames to show motion")
        for kind, names, known in (
            ("shape", self.shapes, SHAPES),
            ("colour", self.colours, COLOURS),
            ("motion", self.motions, MOTIONS),
            ("scene", self.scenes, SCENES),
        ):
            if unknown := set(names) - set(known):
                raise ValueError(f"unknown {kind}s {sorted(unknown)}; known: {list(known)}")
        if not 0 < self.radius_range[0] <= self.radius_range[1] < 0.5:
            raise ValueError(f"radius_range must satisfy 0 < low <= high < 0.5, got {self.radius_range}")
        if self.version not in (1, 2):
            raise ValueError(f"version must be 1 or 2, got {self.version}")
        seen_entities = len(
            {
                (shape, colour)
                for shape, colour, motion in self.object_kinds
                if not self.is_novel(shape, colour, motion)
            }
        )
        if not 1 <= self.min_objects <= self.max_objects <= seen_entities:
            raise ValueError(f"need 1 <= min_objects <= max_objects <= {seen_entities} (distinct seen entities)")

    @property
    def num_frames(self) -> int:
        return round(self.fps * self.seconds)

    @property
    def entities(self) -> list[str]:
        """Colour-shape pair labels."""
        return [f"{colour} {shape}" for shape in self.shapes for colour in self.colours]

    @property
    def object_kinds(self) -> list[tuple[str, str, str]]:
        """Every (shape, colour, motion) an object can have."""
        return list(product(self.shapes, self.colours, self.motions))

    def is_novel(self, shape: str, colour: str, motion: str) -> bool:
        """Whether an object of this kind shows an unseen composition: only held-out videos show it."""
        return is_novel_object(colour, shape, motion)

    @cached_property
    def labels(self) -> dict[str, Label]:
        """{canonical label: its meaning}, every label of the world in vocabulary order."""
        return {label.text(): label for label in world_labels(self.colours, self.shapes, self.motions, self.scenes)}

    @property
    def label_kinds(self) -> dict[str, str]:
        """Every canonical label of the world, in vocabulary order, with its kind for per-kind evaluation."""
        return {text: label.kind for text, label in self.labels.items()}

    @property
    def heldout_kinds(self) -> dict[str, str]:
        """{label: held-out kind} for every held-out label: canonical ones of kinds (a) and (c), and the paraphrases
        of training labels written with held-out synonyms (b)."""
        canonical = {text: kind for text, label in self.labels.items() if (kind := heldout_kind(label))}
        synonyms = dict.fromkeys(self.paraphrases_of(heldout=True), HELDOUT_SYNONYM)
        return canonical | synonyms

    @property
    def unseen_labels(self) -> list[str]:
        """Canonical labels that no train or val video carries: unseen compositions and held-out categories."""
        return [text for text, label in self.labels.items() if heldout_kind(label)]

    def paraphrases_of(self, heldout: bool) -> dict[str, str]:
        """{paraphrase: canonical label} of every training label, with seen synonyms (heldout=False) or with at least
        one held-out synonym (heldout=True); `paraphrase_variants` of each."""
        return {
            written: text
            for index, (text, label) in enumerate(self.labels.items())
            if not heldout_kind(label)
            for written in written_forms(label, self.paraphrase_variants, heldout, offset=index)
        }

    @property
    def paraphrases(self) -> dict[str, str]:
        """{paraphrase: canonical label}: every paraphrase of a training label, seen synonyms then held-out ones."""
        return self.paraphrases_of(heldout=False) | self.paraphrases_of(heldout=True)

    @property
    def train_labels(self) -> list[str]:
        """The training vocabulary: canonical labels not held out, then their paraphrases with seen synonyms."""
        unseen = set(self.unseen_labels)
        return [text for text in self.labels if text not in unseen] + list(self.paraphrases_of(heldout=False))


@dataclass(frozen=True)
class Track:
    """Per-frame pose of one object, each (T,): centre x, y and circumradius in pixels, heading in radians."""

    x: np.ndarray
    y: np.ndarray
    radius: np.ndarray
    heading: np.ndarray

    def at(self, frame: int) -> "Track":
        """The one-frame track of frame `frame`: a still."""
        return Track(*(values[frame : frame + 1] for values in (self.x, self.y, self.radius, self.heading)))


@dataclass(frozen=True)
class MovingObject:
    shape: str
    colour: str
    motion: str
    track: Track

    @property
    def entity(self) -> str:
        return f"{self.colour} {self.shape}"


@dataclass(frozen=True)
class VideoSpec:
    """Everything needed to render one video; objects in drawing order (the last one is on top)."""

    objects: tuple[MovingObject, ...]
    scene: str | None
    wrap: bool = False  # world v1: objects that cross an edge come back in at the opposite one

    def labels(self, world: SyntheticConfig) -> list[str]:
        """Every canonical label of `world` that is true of this video, by its rule (`world_labels.Label.holds`)."""
        objects = [(obj.colour, obj.shape, obj.motion) for obj in self.objects]
        return [text for text, label in world.labels.items() if label.holds(objects, self.scene)]

    def at(self, frame: int) -> "VideoSpec":
        """The still of frame `frame`: the same objects, one-frame tracks."""
        return replace(self, objects=tuple(replace(obj, track=obj.track.at(frame)) for obj in self.objects))


def _reflect(unfolded: np.ndarray, low: float, high: float) -> np.ndarray:
    """Fold a straight path onto [low, high] as a ball bouncing between two walls does."""
    phase = (unfolded - low) % (2 * (high - low))
    return low + np.minimum(phase, 2 * (high - low) - phase)


def sample_track(motion: str, config: SyntheticConfig, rng: np.random.Generator) -> Track:
    """Trajectory of one object; the module docstring says why single frames carry no direction."""
    size, num_frames = config.size, config.num_frames
    t = np.arange(num_frames, dtype=np.float64)
    r_min, r_max = (fraction * size for fraction in config.radius_range)
    start = rng.uniform(0, 1, 2)  # where the object starts, as fractions of the room it has
    radius = np.full(num_frames, rng.uniform(r_min, r_max))
    heading = np.full(num_frames, rng.uniform(0, 2 * math.pi))
    step = config.speed * size / config.fps  # pixels per frame
    if config.version == 1:  # anywhere on a frame whose edges wrap around
        x0, y0 = start * size
    else:  # fully inside the frame at its largest
        largest = r_max if motion in ("growing", "shrinking", "pulsing") else radius[0]
        x0, y0 = largest + start * (size - 2 * largest)
    x, y = np.full(num_frames, x0), np.full(num_frames, y0)
    if motion in DIRECTIONS:
        dx, dy = DIRECTIONS[motion]
        if config.version == 1:
            x, y = (x0 + dx * step * t) % size, (y0 + dy * step * t) % size
        else:  # a straight crossing whose centre stays inside; the negative direction is the positive reversed
            room = size - step * (num_frames - 1)
            along = start[0] * room + step * (t if dx + dy > 0 else t[::-1])
            x, y = (along, y) if dx else (x, along)
    elif motion == "rotating":
        heading = heading + rng.choice((-1, 1)) * 2 * math.pi * config.rotation_speed / config.fps * t
    elif motion in ("growing", "shrinking"):
        sweep = np.linspace(r_min, r_max, num_frames)
        radius = sweep if motion == "growing" else sweep[::-1]
    elif motion == "pulsing":
        phase = rng.uniform(0, 2 * math.pi) + 2 * math.pi * config.pulse_rate / config.fps * t
        radius = r_min + (r_max - r_min) * (1 + np.sin(phase)) / 2
    elif motion == "bouncing":
        low, high, axis_step = radius[0], size - radius[0], step / math.sqrt(2)
        x_sign, y_sign = rng.choice((-1, 1), 2)
        hit = rng.uniform(0.25, 0.75) * (num_frames - 1)  # frame at which it reaches the wall it heads for
        wall = high if x_sign > 0 else low
        x = _reflect(wall + x_sign * axis_step * (t - hit), low, high)
        y = _reflect(rng.uniform(low, 2 * high - low) + y_sign * axis_step * t, low, high)
    else:
        raise ValueError(f"unknown motion {motion!r}")
    return Track(x=x, y=y, radius=radius, heading=heading)


def sample_objects(
    config: SyntheticConfig,
    rng: np.random.Generator,
    first_pool: Sequence[tuple[str, str, str]],
    rest_pool: Sequence[tuple[str, str, str]],
) -> VideoSpec:
    """A video of one object drawn from `first_pool` (shape, colour, motion), then up to max_objects in all from
    `rest_pool`, each of an entity not yet in the video, in random drawing order, on a random scene."""
    chosen = [first_pool[rng.integers(len(first_pool))]]
    for _ in range(rng.integers(config.min_objects, config.max_objects + 1) - 1):
        taken = {kind[:2] for kind in chosen}
        candidates = [kind for kind in rest_pool if kind[:2] not in taken]  # distinct entities per video
        chosen.append(candidates[rng.integers(len(candidates))])
    scene = config.scenes[rng.integers(len(config.scenes))] if config.scenes else None
    objects = tuple(
        MovingObject(shape, colour, motion, sample_track(motion, config, rng))
        for shape, colour, motion in (chosen[i] for i in rng.permutation(len(chosen)))
    )
    return VideoSpec(objects=objects, scene=scene, wrap=config.version == 1)


def sample_video(config: SyntheticConfig, split: str, index: int) -> VideoSpec:
    """Draw one video's content, seeded by (seed, split, index) so that any worker renders the same video."""
    rng = np.random.default_rng([config.seed, SPLITS.index(split), index])
    kinds = config.object_kinds
    novel = [kind for kind in kinds if config.is_novel(*kind)]
    seen = [kind for kind in kinds if not config.is_novel(*kind)]
    # A held-out video gets one novel object, then objects of any kind; train and val only ever see seen objects.
    first_pool, rest_pool = (novel, kinds) if split == "heldout" else (seen, seen)
    return sample_objects(config, rng, first_pool, rest_pool)


def _torus_offset(delta: np.ndarray, size: int) -> np.ndarray:
    """Shortest signed offset on a frame whose edges wrap around, so movers leave one side and enter the other."""
    return (delta + size / 2) % size - size / 2


def object_mask(obj: MovingObject, size: int, wrap: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(T, size, size) boolean masks of where `obj` paints its colour and where its marker dot."""
    grid = np.arange(size, dtype=np.float64)
    track = obj.track
    dx = grid[None, None, :] - track.x[:, None, None]  # (T, 1, W)
    dy = grid[None, :, None] - track.y[:, None, None]  # (T, H, 1)
    if wrap:
        dx, dy = _torus_offset(dx, size), _torus_offset(dy, size)
    cos, sin = np.cos(track.heading)[:, None, None], np.sin(track.heading)[:, None, None]
    u, v = dx * cos + dy * sin, dy * cos - dx * sin  # (T, H, W) along / across the heading
    r = track.radius[:, None, None]
    marker = (u - MARKER_OFFSET * r) ** 2 + v**2 <= (MARKER_RADIUS * r) ** 2
    return SHAPES[obj.shape](u, v, r), marker


def render_video(spec: VideoSpec, size: int) -> np.ndarray:
    """Paint the objects over the background: (T, size, size, 3) uint8 RGB, T the tracks' length (1: a still)."""
    background = SCENES[spec.scene or next(iter(SCENES))](size)
    num_frames = len(spec.objects[0].track.x)
    frames = np.repeat(background[None], num_frames, axis=0)  # (T, H, W, 3)
    for obj in spec.objects:
        body, marker = object_mask(obj, size, spec.wrap)
        frames[body] = COLOURS[obj.colour]
        frames[marker] = MARKER_COLOUR
    return frames


def write_video(path: Path, frames: np.ndarray, fps: int, crf: int) -> None:
    """Encode (T, H, W, 3) uint8 RGB frames as H.264 in an .mp4 container."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": str(crf)})
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1  # tiny frames: threads cost more than they save; workers parallelise
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def _make_video(task: tuple[str, int], config: SyntheticConfig, out_dir: Path) -> dict:
    """Render and encode one video; its record with its true canonical labels."""
    split, index = task
    spec = sample_video(config, split, index)
    relative = f"videos/{split}_{index:05d}.mp4"
    write_video(out_dir / relative, render_video(spec, config.size), config.fps, config.crf)
    return {"video": relative, "labels": spec.labels(config), "source": SOURCE}


def _write_lines(path: Path, lines: list[str]) -> None:
    write_text_atomically(path, "".join(f"{line}\n" for line in lines))


def generate_dataset(
    out_dir: str | os.PathLike, config: SyntheticConfig | None = None, workers: int = 1, progress: bool = True
) -> dict:
    """Render and encode every split into `out_dir` (layout in the module docstring); returns a summary.

    `workers` only changes speed: each video is seeded by (seed, split, index), so the output is the same.
    """
    config = config or SyntheticConfig()
    out = Path(out_dir)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    counts = dict(zip(SPLITS, (config.num_train, config.num_val, config.num_heldout), strict=True))
    tasks = [(split, index) for split, count in counts.items() for index in range(count)]
    make = partial(_make_video, config=config, out_dir=out)
    start = time.perf_counter()
    with Pool(workers) if workers > 1 else nullcontext() as pool:
        made = pool.imap(make, tasks, chunksize=8) if pool else map(make, tasks)
        records = list(tqdm(made, total=len(tasks), desc="moving shapes", unit="video", disable=not progress))
    elapsed = time.perf_counter() - start

    written_as: dict[str, list[str]] = {}
    for written, label in config.paraphrases.items():
        written_as.setdefault(label, []).append(written)
    train_labels = config.train_labels
    training = set(train_labels)

    def relabelled(record: dict, keep: Callable[[str], bool]) -> dict:
        """`record` labelled by every written form (the label, its paraphrases) that `keep` accepts, sorted."""
        labels = [form for label in record["labels"] for form in (label, *written_as.get(label, ())) if keep(form)]
        return record | {"labels": sorted(labels)}

    by_split = {
        split: [record for (task_split, _), record in zip(tasks, records, strict=True) if task_split == split]
        for split in SPLITS
    }
    vocab_all = list(config.labels) + [label for label in train_labels if label not in config.labels]
    keep = {"train": training.__contains__, "val": training.__contains__, "heldout": set(vocab_all).__contains__}
    manifests = {split: [relabelled(record, keep[split]) for record in by_split[split]] for split in SPLITS}
    paraphrased = set(config.paraphrases)
    manifests[PARAPHRASED] = [relabelled(record, paraphrased.__contains__) for record in by_split["heldout"]]
    for name, split_records in manifests.items():
        _write_lines(out / f"{name}.jsonl", [json.dumps(record) for record in split_records])
    label_kinds = config.label_kinds
    paraphrase_kinds = {written: label_kinds[label] for written, label in config.paraphrases.items()}
    _write_lines(out / "vocab_all.txt", vocab_all)
    _write_lines(out / "vocab_train.txt", train_labels)
    _write_lines(out / "vocab_paraphrased.txt", list(config.paraphrases))
    write_text_atomically(out / "labels.json", json.dumps(label_kinds | paraphrase_kinds, indent=1))
    write_text_atomically(out / "labels_paraphrased.json", json.dumps(paraphrase_kinds, indent=1))
    write_text_atomically(out / "heldout.json", json.dumps(config.heldout_kinds, indent=1))
    write_text_atomically(out / "paraphrases.json", json.dumps(config.paraphrases, indent=1))
    pairs = [list(pair) for pair in TIME_REVERSAL_PAIRS if set(pair) <= set(config.motions)]
    write_text_atomically(out / "time_reversal_pairs.json", json.dumps(pairs))
    write_text_atomically(out / CONFIG_FILE, json.dumps(asdict(config), indent=1))
    heldout = config.heldout_kinds
    return {
        "out_dir": str(out),
        "num_videos": counts,
        "num_frames": config.num_frames,
        "size": config.size,
        "fps": config.fps,
        "version": config.version,
        "vocab_all": len(vocab_all),
        "vocab_train": len(train_labels),
        "vocab_paraphrased": len(config.paraphrases),
        "heldout_labels": {kind: sum(v == kind for v in heldout.values()) for kind in dict.fromkeys(heldout.values())},
        "seconds_elapsed": round(elapsed, 2),
    }
