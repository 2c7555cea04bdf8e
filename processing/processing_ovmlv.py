"""OvmlvProcessor: videos -> CLIP (or SigLIP) pixels, labels -> their tokens (bare and templated) and T5 prompt tokens."""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoConfig, AutoTokenizer, BatchFeature, ImageProcessingMixin, ProcessorMixin
from transformers.utils import PROCESSOR_NAME, cached_file

from .frame_transforms import CLIP_MEAN, CLIP_STD, frames_to_pixel_values
from .time_reversal import check_reversal_pairs, time_reversal
from .video_decoding import SAMPLING_MODES, load_video

# Flan-T5's recommended question-answer instruction, filled per label (docs/design.md §3).
LLM_PROMPT_TEMPLATE = (
    "Q: What are useful features for distinguishing a {label} in a photo? "
    "A: There are several useful visual features to tell about a {label} in a photo: 1."
)
# The prompt-template ensemble baseline: CLIP's photo prompts adapted to video.
PROMPT_TEMPLATES = (
    "a video of {label}.",
    "a video of a {label}.",
    "a photo of {label}.",
    "a photo of a {label}.",
    "a clip of {label}.",
    "a frame showing {label}.",
    "footage of {label}.",
    "an example of {label}.",
)
# Every label input the processor can make; a label encoder reads some of them (its `input_names`).
LABEL_INPUT_NAMES = (
    "input_ids",
    "attention_mask",
    "prompt_input_ids",
    "prompt_attention_mask",
    "llm_input_ids",
    "llm_attention_mask",
    "reversed_input_ids",
    "reversed_attention_mask",
)
# The one default of each video setting, the processor's: frames per clip (the paper's 8), clips per video (their
# embeddings averaged) and input size. The decoder has none; training and evaluation configs read these, the model's
# `temporal_positions` matches the frame count (a test holds it: the model's folder cannot import this one); a saved
# processor_config.json carries its own values.
DEFAULT_NUM_FRAMES = 8
DEFAULT_NUM_CLIPS = 1
DEFAULT_IMAGE_SIZE = 224
# Upper bounds on what a call or a processor_config.json may ask for, checked before any decoding: frames are kept
# as float32 pixels (0.6 MB a frame at 224 px), so 128 frames x 16 clips is at most 1.2 GB per video.
VIDEO_COUNT_LIMITS = {"num_frames": 128, "num_clips": 16, "image_size": 1024}
# Loading options transformers records in a tokenizer's saved config; a saved folder must not depend on them.
LOADING_DETAILS = ("is_local", "local_files_only")


def _is_frame(item: Any) -> bool:
    return (isinstance(item, np.ndarray) and item.ndim == 3) or type(item).__module__.startswith("PIL.")


def is_one_video(videos: Any) -> bool:
    """Whether `videos` is one video rather than a list of videos.

    A video is a path, URL, bytes, file object, a (T, H, W, 3) uint8 array, or a list of frames (PIL images or
    (H, W, 3) arrays); a list of anything else is a list of videos.
    """
    return not (isinstance(videos, (list, tuple)) and videos and not _is_frame(videos[0]))


def split_videos(videos: Any) -> list[Any]:
    """One video or many (see `is_one_video`) -> a list of videos."""
    return [videos] if is_one_video(videos) else list(videos)


def tower_frame_settings(clip: str | os.PathLike, **hub_kwargs) -> dict[str, Any]:
    """The processor settings a CLIP or SigLIP checkpoint's own processing implies: its input size, its image
    processor's mean, std and crop (preprocessor_config.json, where it has one), and for SigLIP the fixed text length
    its tokenizer pads to (SigLIP pools the last of its positions, so it must always read all of them)."""
    config = AutoConfig.from_pretrained(clip, **hub_kwargs)
    vision = config.vision_config
    # SigLIP 2's NaFlex config names a patch budget: its native grid, as the model's config takes it (fixed_resolution)
    image_size = (
        getattr(vision, "image_size", None) or math.isqrt(getattr(vision, "num_patches", 0)) * vision.patch_size
    )
    settings: dict[str, Any] = {"image_size": image_size}
    try:
        image_processor, _ = ImageProcessingMixin.get_image_processor_dict(clip, **hub_kwargs)
    except OSError:  # no preprocessor_config.json: CLIP's defaults
        image_processor = {}
    for key in ("image_mean", "image_std", "do_center_crop"):
        if key in image_processor:
            settings[key] = image_processor[key]
    if config.model_type in ("siglip", "siglip2"):
        settings["do_center_crop"] = image_processor.get("do_center_crop", False)
        settings["text_length"] = config.text_config.max_position_embeddings
    return settings


def _check_count(name: str, value: Any, limit: str) -> None:
    """A whole number from 1 to `VIDEO_COUNT_LIMITS[limit]`, or None (the default)."""
    maximum = VIDEO_COUNT_LIMITS[limit]
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= value <= maximum
    ):
        raise ValueError(
            f"{name} must be a whole number from 1 to {maximum} (or None for the default), got {value!r}."
        )


class OvmlvProcessor(ProcessorMixin):
    r"""
    Video frames + CLIP tokenizer + T5 tokenizer, saved and loaded like any HF processor.

    Args:
        tokenizer: the CLIP tokenizer.
        llm_tokenizer: the T5 tokenizer (saved in the `llm_tokenizer/` subfolder); `None` without an LLM.
        image_size: the vision tower's input resolution. image_mean / image_std: its normalisation (CLIP's by default).
        do_center_crop: resize the shorter side and crop the centre square (CLIP); False resizes both sides to the
            square (SigLIP).
        text_length: pad every label to this many tokens (SigLIP's 64, which it always reads whole); None pads to the
            longest label (CLIP, whose text tower stops at each label's end).
        num_frames: frames per clip (8 in the paper). num_clips: clips per video, their embeddings averaged (1; the
            paper evaluates 4). sampling: how frames are chosen, "uniform" (inference, evaluation) or
            "segment_random" (training). Saved with the processor: a training run saves its evaluation's values, so
            the pipeline and the commands serve a model as it was evaluated and calibrated.
        llm_prompt_template: the LLM instruction, with `{label}`. prompt_templates: the template ensemble.
        label_input_names: the label inputs to make, those the model reads (`model.label_input_names`); None makes
            every one (`LABEL_INPUT_NAMES`) the tokenizers allow.
        time_reversal_phrases: pairs of phrases that name one motion's two directions (["moving left", "moving
            right"], ...): `reversed_input_ids` holds each label with every such phrase swapped for its partner,
            beside `input_ids` (the model's direction head reads both; `processing/time_reversal.py`).
    """

    def __init__(
        self,
        tokenizer=None,
        llm_tokenizer=None,
        image_size: int = DEFAULT_IMAGE_SIZE,
        image_mean: Sequence[float] = CLIP_MEAN,
        image_std: Sequence[float] = CLIP_STD,
        do_center_crop: bool = True,
        text_length: int | None = None,
        num_frames: int = DEFAULT_NUM_FRAMES,
        num_clips: int = DEFAULT_NUM_CLIPS,
        sampling: str = "uniform",
        llm_prompt_template: str = LLM_PROMPT_TEMPLATE,
        prompt_templates: Sequence[str] = PROMPT_TEMPLATES,
        label_input_names: Sequence[str] | None = None,
        time_reversal_phrases: Sequence[Sequence[str]] | None = None,
        **kwargs,
    ):
        for name, value in (("image_size", image_size), ("num_frames", num_frames), ("num_clips", num_clips)):
            _check_count(f"OvmlvProcessor.{name}", value, name)  # before a processor_config.json asks for 1e9
        self.image_size = image_size
        self.image_mean = list(image_mean)
        self.image_std = list(image_std)
        self.do_center_crop = do_center_crop
        self.text_length = text_length
        self.num_frames = num_frames
        self.num_clips = num_clips
        self.sampling = sampling
        self.check_video_arguments(num_frames, num_clips, sampling)
        self.llm_prompt_template = llm_prompt_template
        self.prompt_templates = list(prompt_templates)
        if unknown := set(label_input_names or ()) - set(LABEL_INPUT_NAMES):
            raise ValueError(f"label_input_names: unknown {sorted(unknown)}; known: {list(LABEL_INPUT_NAMES)}.")
        self.label_input_names = None if label_input_names is None else list(label_input_names)
        check_reversal_pairs(time_reversal_phrases or (), "OvmlvProcessor.time_reversal_phrases")
        self.time_reversal_phrases = [list(pair) for pair in time_reversal_phrases or ()]
        for template in [llm_prompt_template, *self.prompt_templates]:
            if "{label}" not in template:
                raise ValueError(f"Prompt template {template!r} has no '{{label}}' placeholder.")
        super().__init__(tokenizer=tokenizer, llm_tokenizer=llm_tokenizer, **kwargs)

    is_one_video = staticmethod(is_one_video)  # for callers that cannot import this module (the pipeline)

    def check_argument_for_proper_class(self, argument_name, argument):
        # The T5 tokenizer is optional: a model whose label encoder needs no LLM has none.
        if argument is None and argument_name == "llm_tokenizer":
            return None
        return super().check_argument_for_proper_class(argument_name, argument)

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs):
        for tokenizer in (self.tokenizer, self.llm_tokenizer):
            for loading_detail in LOADING_DETAILS:  # how this machine loaded it, not what the tokenizer is
                if tokenizer is not None:
                    tokenizer.init_kwargs.pop(loading_detail, None)
        if self.llm_tokenizer is not None:
            return super().save_pretrained(save_directory, **kwargs)
        # ProcessorMixin saves every tokenizer attribute; shadow the list so the absent T5 tokenizer is skipped.
        self.get_attributes = lambda: ["tokenizer"]
        try:
            return super().save_pretrained(save_directory, **kwargs)
        finally:
            del self.get_attributes

    @classmethod
    def _load_tokenizer_from_pretrained(
        cls, sub_processor_type, pretrained_model_name_or_path, subfolder="", **kwargs
    ):
        if sub_processor_type != "llm_tokenizer":
            return super()._load_tokenizer_from_pretrained(
                sub_processor_type, pretrained_model_name_or_path, subfolder=subfolder, **kwargs
            )
        # No llm_tokenizer/ subfolder means the processor was saved without an LLM (never fall back to CLIP's).
        try:
            return AutoTokenizer.from_pretrained(
                pretrained_model_name_or_path, subfolder=os.path.join(subfolder, sub_processor_type), **kwargs
            )
        except (OSError, ValueError):
            return None

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs) -> OvmlvProcessor:
        """A saved processor. A plain checkpoint (a Hub CLIP id or folder: ovmlv saved no processor there) gets
        `from_towers`'s, the processor of the zero-shot model `OvmlvModel.from_pretrained` makes of it."""
        hub_kwargs = {
            key: kwargs[key] for key in ("cache_dir", "revision", "token", "local_files_only") if key in kwargs
        }
        if not cls.saved_in(pretrained_model_name_or_path, **hub_kwargs):
            return cls.from_towers(pretrained_model_name_or_path)
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    @classmethod
    def saved_in(cls, name_or_path: str | os.PathLike, **hub_kwargs) -> bool:
        """Whether `name_or_path` holds a processor this class saved (its processor_config.json names it)."""
        found = cached_file(name_or_path, PROCESSOR_NAME, _raise_exceptions_for_missing_entries=False, **hub_kwargs)
        if found is None:
            return False
        return json.loads(Path(found).read_text(encoding="utf-8")).get("processor_class") == cls.__name__

    @classmethod
    def from_towers(cls, clip: str | os.PathLike, llm: str | os.PathLike | None = None, **kwargs) -> OvmlvProcessor:
        """The processor for `OvmlvModel.from_towers(clip, llm)`: tokenizers and frame settings from the same towers
        (`tower_frame_settings`), `kwargs` on top."""
        tokenizer = AutoTokenizer.from_pretrained(clip)
        llm_tokenizer = AutoTokenizer.from_pretrained(llm) if llm is not None else None
        return cls(tokenizer=tokenizer, llm_tokenizer=llm_tokenizer, **{**tower_frame_settings(clip), **kwargs})

    @classmethod
    def for_model(
        cls, model: Any, clip: str | os.PathLike, llm: str | os.PathLike | None = None, **kwargs
    ) -> OvmlvProcessor:
        """The processor for `model`, an `OvmlvModel` built from the towers `clip` and `llm`: the label inputs it reads
        (`model.label_input_names`) and, when those include reversed labels, its time-reversal phrases come from the
        model, so the two cannot disagree; `kwargs` on top. (Read by name: this package does not import the model's.)
        """
        names = list(model.label_input_names)
        phrases = model.config.temporal_config.time_reversal_phrases if "reversed_input_ids" in names else None
        return cls.from_towers(clip, llm, label_input_names=names, time_reversal_phrases=phrases, **kwargs)

    def __call__(
        self,
        videos: Any = None,
        text: str | Sequence[str] | None = None,
        num_frames: int | None = None,
        num_clips: int | None = None,
        sampling: str | None = None,
        seed: int | None = None,
        return_tensors: str = "pt",
        **kwargs,
    ) -> BatchFeature:
        """Videos -> `pixel_values_videos` (B, T, 3, S, S), or (B, clips, T, 3, S, S) when num_clips > 1.
        Labels -> `input_ids`/`attention_mask` (bare label), `prompt_input_ids`/`prompt_attention_mask`
        (C, M, W) for the template ensemble, and `llm_input_ids`/`llm_attention_mask` when there is an LLM.

        num_frames, num_clips, sampling: None means the processor's saved ones. sampling: "uniform" (inference;
        several clips tile the video) or "segment_random" (training, seeded by `seed`), as `sample_timestamps`
        describes.
        """
        if videos is None and text is None:
            raise ValueError("OvmlvProcessor needs videos=..., text=... or both.")
        if return_tensors != "pt":
            raise ValueError(
                f"OvmlvProcessor returns PyTorch tensors only (return_tensors='pt'), got {return_tensors!r}."
            )
        data: dict[str, torch.Tensor] = {}
        if videos is not None:
            data["pixel_values_videos"] = self.video_pixel_values(videos, num_frames, num_clips, sampling, seed)
        if text is not None:
            data.update(self.label_inputs([text] if isinstance(text, str) else list(text)))
        return BatchFeature(data=data, tensor_type=return_tensors)

    def video_pixel_values(
        self,
        videos: Any,
        num_frames: int | None = None,
        num_clips: int | None = None,
        sampling: str | None = None,
        seed: np.random.Generator | int | None = None,
        segment: tuple[float, float] | None = None,
    ) -> torch.Tensor:
        """(B, T, 3, S, S), or (B, clips, T, 3, S, S) when num_clips > 1; `segment` = (start, end) seconds samples
        inside that part of every video (`load_video`)."""
        self.check_video_arguments(num_frames, num_clips, sampling)
        num_frames = self.num_frames if num_frames is None else num_frames
        num_clips = self.num_clips if num_clips is None else num_clips
        sampling = self.sampling if sampling is None else sampling
        # The decoder resizes and crops as CLIP does; frames to squash (SigLIP) are decoded whole, resized below.
        size = self.image_size if self.do_center_crop else None
        clips = [
            load_video(video, num_frames, sampling, num_clips, size=size, seed=seed, segment=segment)
            for video in split_videos(videos)
        ]  # each (clips, T, H, W, 3) uint8
        pixels = torch.stack(
            [
                frames_to_pixel_values(c, self.image_size, self.image_mean, self.image_std, self.do_center_crop)
                for c in clips
            ]
        )
        return pixels if num_clips > 1 else pixels[:, 0]

    def check_video_arguments(
        self, num_frames: int | None = None, num_clips: int | None = None, sampling: str | None = None
    ) -> None:
        """Raise ValueError for sampling arguments that are wrong for any video (None means the processor's own)."""
        _check_count("num_frames", num_frames, "num_frames")
        _check_count("num_clips (clips)", num_clips, "num_clips")
        if sampling is not None and sampling not in SAMPLING_MODES:
            raise ValueError(f"sampling={sampling!r} is not one of {SAMPLING_MODES}.")

    def blank_pixel_values(
        self, num_videos: int = 1, num_frames: int | None = None, num_clips: int | None = None
    ) -> torch.Tensor:
        """Zeros in the shape `video_pixel_values` gives: a stand-in for a video that could not be read, so that a
        batch keeps one shape (its scores are never used)."""
        num_frames = self.num_frames if num_frames is None else num_frames
        num_clips = self.num_clips if num_clips is None else num_clips
        clip = (num_frames, 3, self.image_size, self.image_size)
        return torch.zeros((num_videos, num_clips, *clip) if num_clips > 1 else (num_videos, *clip))

    def label_inputs(self, labels: list[str]) -> dict[str, torch.Tensor]:
        """The label inputs of `label_input_names` for `labels`: bare-label CLIP tokens (C, W), the labels reversed in
        time (`time_reversal_phrases` swapped; C, W), the template ensemble's CLIP tokens (C, M, W), the LLM
        instruction's T5 tokens (C, W')."""
        # Never truncated: a label too long for the text tower is an error (modeling_ovmlv/label_limits.py).
        wanted = set(self.label_input_names or LABEL_INPUT_NAMES)
        # The mask is asked for: SigLIP's tokenizer config leaves it out, and its soft prompts need it (no truncation).
        padding = dict(padding="max_length", max_length=self.text_length) if self.text_length else dict(padding=True)
        tokenize = dict(**padding, return_attention_mask=True, return_tensors="pt")
        inputs = {}
        if "input_ids" in wanted or "reversed_input_ids" in wanted:
            reverse_in_time = time_reversal(tuple(map(tuple, self.time_reversal_phrases)))
            reversed_labels = [reverse_in_time(label) for label in labels]
            # A label and its reversal are tokenized together, so that they are padded alike (the model compares them).
            texts = labels + reversed_labels if reversed_labels != labels else labels
            tokens = self.tokenizer(texts, **tokenize)
            ids, mask = (tokens[name].split(len(labels)) for name in ("input_ids", "attention_mask"))
            if "input_ids" in wanted:
                inputs |= {"input_ids": ids[0], "attention_mask": mask[0]}
            if "reversed_input_ids" in wanted:
                inputs |= {"reversed_input_ids": ids[-1], "reversed_attention_mask": mask[-1]}
        if "prompt_input_ids" in wanted:
            prompts = [template.format(label=label) for label in labels for template in self.prompt_templates]
            templated = self.tokenizer(prompts, **tokenize)
            shape = (len(labels), len(self.prompt_templates), -1)
            inputs["prompt_input_ids"] = templated["input_ids"].view(shape)
            inputs["prompt_attention_mask"] = templated["attention_mask"].view(shape)
        if "llm_input_ids" in wanted and self.llm_tokenizer is not None:
            instructions = [self.llm_prompt_template.format(label=label) for label in labels]
            llm = self.llm_tokenizer(instructions, padding=True, return_tensors="pt")
            inputs["llm_input_ids"] = llm["input_ids"]
            inputs["llm_attention_mask"] = llm["attention_mask"]
        return inputs

    @property
    def model_input_names(self) -> list[str]:
        return ["pixel_values_videos", *(self.label_input_names or LABEL_INPUT_NAMES)]
