"""What world v2's vocabulary costs a training step: the demo recipe on the organism, first-world labels vs v2's.

Why: world v2 gives a video about 60 true training labels from a vocabulary of 2,278 where the first world gave
about 6 from 73, so the paper's P_B (the union of a batch's positives) grows tenfold; `training.batching` caps a
label batch at 4B classes. This runs the demo's training (`runs.train_run`: `accelerate launch`, the recipe of
`configs/synthetic_tiny.yaml`, B = 16) for `--steps` steps on the same videos twice, side by side, in one process:
- "first world": each video labelled as the first world did, by its shapes, colour-shape pairs, motions and
  background in canonical words (the training vocabulary those labels minus the held-out ones);
- "world v2": the videos' v2 training labels and vocabulary, as `ovmlv synthetic` writes them;
and prints the trainer's own seconds per step and classes per label batch (its logged scalars) for each, and the
ratio. The two runs share the machine's load at the time: run it on an idle machine for figures to quote.

    python bench/world_step_cost.py [--steps 30] [--videos 160] [--out outputs/world_step_cost]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from ovmlv.organism.runs import existing_towers, train_run  # noqa: E402
from ovmlv.organism.world import SyntheticConfig, generate_dataset  # noqa: E402

FIRST_WORLD_KINDS = ("entity", "action", "scene")  # of the first world's label families, below
SCALARS = ("train/seconds_per_step", "train/classes_per_batch")


def first_world_labels(world: SyntheticConfig) -> set[str]:
    """The first world's label families among v2's canonical labels: shapes, colour-shape pairs, motions, scenes."""
    return {
        text
        for text, label in world.labels.items()
        if label.count is None
        and not set(label.parts) - {*world.colours, *world.shapes, *world.motions, *world.scenes}
        and (label.colour is None or label.shape is not None)
        and (label.motion is None or (label.shape is None and label.colour is None))
    }


def relabel_as_first_world(data: Path, world: SyntheticConfig) -> None:
    """Rewrite train.jsonl, val.jsonl and vocab_train.txt of `data` with the first world's label families only."""
    keep = first_world_labels(world)
    vocabulary = [label for label in (data / "vocab_train.txt").read_text().splitlines() if label in keep]
    (data / "vocab_train.txt").write_text("".join(f"{label}\n" for label in vocabulary))
    for split in ("train", "val"):
        lines = (data / f"{split}.jsonl").read_text().splitlines()
        records = [json.loads(line) for line in lines]
        records = [record | {"labels": [label for label in record["labels"] if label in keep]} for record in records]
        (data / f"{split}.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))


def trim_evaluation(data: Path) -> None:
    """Cut the held-out sets' vocabularies to the labels their videos show: the trainer's final evaluation must
    not dominate a timing of its steps (the full v2 vocabularies are some 5,000 labels through the LLM)."""
    for manifest, vocabulary in (
        ("heldout.jsonl", "vocab_all.txt"),
        ("heldout_paraphrased.jsonl", "vocab_paraphrased.txt"),
    ):
        used = {label for line in (data / manifest).read_text().splitlines() for label in json.loads(line)["labels"]}
        labels = [label for label in (data / vocabulary).read_text().splitlines() if label in used]
        (data / vocabulary).write_text("".join(f"{label}\n" for label in labels))


def timed_run(data: Path, out: Path, steps: int) -> tuple[float, float]:
    """(median seconds per step, mean classes per label batch) from the trainer's logged scalars (tensorboard, every
    10 steps), the first 10 steps (warm-up) left out."""
    train_run("ovmlv", existing_towers(), data, out, steps, seed=0)
    events = EventAccumulator(str(out / "logs" / "ovmlv"))
    events.Reload()
    seconds, classes = ([e.value for e in events.Scalars(tag)][1:] for tag in SCALARS)
    if not seconds:
        raise RuntimeError(f"No step timings in {out / 'logs'}: train at least 20 steps (the trainer logs every 10).")
    return statistics.median(seconds), statistics.mean(classes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--videos", type=int, default=160)
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "world_step_cost")
    args = parser.parse_args()
    world = SyntheticConfig(num_train=args.videos, num_val=16, num_heldout=4)
    results = {}
    for name in ("first world", "world v2"):
        data = args.out / name.replace(" ", "_") / "data"
        generate_dataset(data, world, workers=1, progress=False)
        trim_evaluation(data)
        if name == "first world":
            relabel_as_first_world(data, world)
        results[name] = timed_run(data, data.parent / "run", args.steps)
    (first_seconds, first_classes), (v2_seconds, v2_classes) = results.values()
    for name, (seconds, classes) in results.items():
        print(f"{name:12s} {seconds:.2f} s/step  {classes:.1f} classes per label batch")
    print(f"ratio (world v2 / first world): {v2_seconds / first_seconds:.2f}x seconds per step")


if __name__ == "__main__":
    main()
