"""Dataset adapters: official annotation files -> the manifest, vocabulary and kinds files training reads.

One module per dataset family, each with `read(...) -> Adapted` (the clips, the vocabulary, optional kinds),
its default `VIDEO_PATTERN` and `add_arguments` for its command; `manifest` holds what they share and writes the
files. `ovmlv adapt DATASET --annotations ... --videos DIR --out DIR` is the command line.
"""

from . import activitynet, hmdb51, kinetics, kinetics_zeroshot, rareact, tao, ucf101, youtube8m
from .manifest import Adapted, AnnotationError, Clip, write_dataset

ADAPTERS = {
    "tao": tao,
    "activitynet": activitynet,
    "rareact": rareact,
    "kinetics": kinetics,
    "kinetics-zeroshot": kinetics_zeroshot,
    "youtube8m": youtube8m,
    "ucf101": ucf101,
    "hmdb51": hmdb51,
}

__all__ = ["ADAPTERS", "Adapted", "AnnotationError", "Clip", "write_dataset"]
