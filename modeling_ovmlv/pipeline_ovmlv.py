"""The `zero-shot-video-classification` pipeline: a video and any labels in, an independent probability per label out."""

from __future__ import annotations

import types
from typing import Any

import torch
from transformers import Pipeline, PretrainedConfig, PreTrainedModel, ProcessorMixin
from transformers.models.auto.processing_auto import PROCESSOR_MAPPING
from transformers.utils import logging

from .label_bank import LabelBank, clean_labels, embed_labels, rank_labels
from .label_limits import check_label_lengths
from .towers import TOWER_KINDS

PIPELINE_TASK = "zero-shot-video-classification"
UNCALIBRATED_WARNING = (
    "This model's decision threshold was never calibrated on validation data (config.deployment_config.threshold is "
    "None), so every label is returned, ranked: sigmoid scores alone do not say which labels are present. Pass "
    "threshold=..., or calibrate it with `ovmlv evaluate` on a labelled validation set."
)

logger = logging.get_logger(__name__)


def decision_threshold(config: PretrainedConfig, threshold: float | None = None) -> float | None:
    """The one rule for the threshold a prediction uses: `threshold` when given, else the model's calibrated
    `config.deployment_config.threshold`; None when neither exists (uncalibrated: every label is returned, ranked,
    with `UNCALIBRATED_WARNING`). The pipeline's `postprocess`, `ovmlv tag` and `ovmlv evaluate` all decide with it."""
    return config.deployment_config.threshold if threshold is None else threshold


def own_processor(model: PreTrainedModel, processor: ProcessorMixin) -> ProcessorMixin:
    """The video processor of a plain checkpoint wrapped zero-shot, in place of `processor`, the checkpoint's own (a
    CLIPProcessor, which cannot read videos), that `pipeline()` loaded: the processor class registered for the
    model's config (in this process, by the installed package) builds it from the same checkpoint."""
    processor_class = PROCESSOR_MAPPING.get(type(model.config), None)
    if processor_class is None:
        raise ValueError(
            f"{type(processor).__name__} cannot read videos: pass processor=OvmlvProcessor.from_pretrained"
            f"({model.name_or_path!r})."
        )
    return processor_class.from_pretrained(model.name_or_path)


class ZeroShotVideoClassificationPipeline(Pipeline):
    """Scores `candidate_labels` against each video, every label independently (sigmoid, not softmax).

    ```python
    classifier = pipeline("zero-shot-video-classification", model="path/or/hub-id", trust_remote_code=True)
    classifier("video.mp4", candidate_labels=["dog", "beach", "surfing"])
    # [{"label": "surfing", "score": 0.91}, {"label": "beach", "score": 0.87}, ...]
    ```

    Arguments per call: `candidate_labels` (list or comma-separated string), `threshold` (keep labels scoring at
    least this; default: the model's calibrated `config.deployment_config.threshold`; a model never calibrated
    returns every label, ranked, as transformers' zero-shot pipelines do, and says so once), `top_k`, `num_frames`,
    `clips` (clips averaged per video, e.g. 4 for the paper's 4 x 8 evaluation), and the usual `batch_size`.
    Label embeddings come from the model's label bank when it has them; other labels are encoded once and reused.
    Without `candidate_labels`, videos are scored against the whole label bank.

    One video (a path, URL, bytes, file object, or decoded frames: a (T, H, W, 3) array or a list of frames) gives
    its ranked labels, and raises if it cannot be read. A list of videos (or a generator or dataset of them) gives
    one result per video: a video that cannot be read gets `{"video": ..., "error": "why"}` in its place, so one bad
    file never loses the others' results.
    """

    max_cached_labels = 10_000  # labels first met in this pipeline kept embedded; beyond it the oldest are dropped
    _load_processor = True
    _load_tokenizer = False
    _load_image_processor = False
    _load_feature_extractor = False
    _load_video_processor = False

    def __init__(self, model, *args, processor: ProcessorMixin | None = None, **kwargs):
        if not hasattr(model, "label_bank"):  # transformers fell back to the checkpoint's own class
            raise ValueError(
                f"{model.name_or_path} is a {model.config.model_type!r} checkpoint, which this pipeline cannot use: "
                f"pass an ovmlv model or a {' or '.join(kind.name for kind in TOWER_KINDS.values())} checkpoint "
                "(served zero-shot)."
            )
        if processor is not None and not hasattr(processor, "video_pixel_values"):
            processor = own_processor(model, processor)
        super().__init__(model, *args, processor=processor, **kwargs)
        self.warned_uncalibrated = False  # an uncalibrated model is said once per pipeline, not once per video
        bank = getattr(self.model, "label_bank", None)
        # Without candidate_labels a video is scored against the model's own vocabulary, when it ships one.
        self.default_labels = list(bank.labels) if bank is not None else None
        # A private copy: labels first seen in this pipeline are cached here, not written into the model's bank.
        self.label_bank = (
            LabelBank(bank.labels, bank.embeddings)
            if bank is not None
            else LabelBank([], torch.empty(0, self.model.config.label_embedding_dim))
        )

    def __call__(self, videos: Any, **kwargs: Any) -> Any:
        """See the class docstring: one video raises on a bad file, several report each bad one in its place."""
        if isinstance(videos, types.GeneratorType | torch.utils.data.Dataset):
            return super().__call__(videos, report_bad_videos=True, **kwargs)
        if isinstance(videos, list | tuple) and not videos:
            return []
        if self.processor.is_one_video(videos):
            # transformers takes any list for a batch of inputs; a tuple is one input (here: one video's frames)
            return super().__call__(tuple(videos) if isinstance(videos, list) else videos, **kwargs)
        return super().__call__(list(videos), report_bad_videos=True, **kwargs)

    def _sanitize_parameters(
        self,
        candidate_labels: list[str] | str | None = None,
        threshold: float | None = None,
        top_k: int | None = None,
        num_frames: int | None = None,
        clips: int | None = None,
        report_bad_videos: bool = False,
        **kwargs,
    ):
        preprocess_params: dict[str, Any] = {"report_bad_videos": report_bad_videos}
        if candidate_labels is not None:
            preprocess_params["candidate_labels"] = clean_labels(candidate_labels)
            new = [label for label in preprocess_params["candidate_labels"] if label not in self.label_bank]
            check_label_lengths(new, self.processor, self.model.config)  # before any video is decoded
        self.processor.check_video_arguments(num_frames, clips)  # wrong for every video: raise, never per video
        if num_frames is not None:
            preprocess_params["num_frames"] = num_frames
        if clips is not None:
            preprocess_params["clips"] = clips
        postprocess_params: dict[str, Any] = {"threshold": threshold, "top_k": top_k}
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}.")
        return preprocess_params, {}, postprocess_params

    def preprocess(
        self, video, candidate_labels: list[str] | None = None, num_frames=None, clips=None, report_bad_videos=False
    ):
        candidate_labels = candidate_labels or self.default_labels
        if candidate_labels is None:
            raise ValueError(
                "candidate_labels is required (this model has no label bank), "
                "e.g. classifier(video, candidate_labels=['dog', 'beach'])."
            )
        try:
            pixels = self.processor(videos=video, num_frames=num_frames, num_clips=clips)["pixel_values_videos"]
            error = None
        except ValueError as err:  # an unreadable video (VideoDecodeError is a ValueError); arguments were checked
            if not report_bad_videos:
                raise
            logger.warning(f"{err}; its result says so, the other videos are scored")
            pixels = self.processor.blank_pixel_values(1, num_frames, clips)  # batches need one shape; not scored
            error = {"video": getattr(err, "source", type(video).__name__), "error": str(err)}
        return {"pixel_values_videos": pixels, "candidate_labels": candidate_labels, "video_error": error}

    def _forward(self, model_inputs: dict) -> dict:
        labels = model_inputs.pop("candidate_labels")
        labels = _first_if_nested(labels)  # batched: one list per video, all the same within a call
        errors = model_inputs.pop("video_error")  # one per video: a list when batched
        label_embeds = self.label_bank.embeddings_for(labels, embed_missing=self._embed_labels)
        self._forget_oldest_cached_labels(in_use=labels)
        video_embeds = self.model.get_video_features(model_inputs["pixel_values_videos"])
        scores = self.model.logits(video_embeds, label_embeds.to(video_embeds.device)).sigmoid()
        return {
            "scores": scores.float().cpu(),
            "candidate_labels": [labels] * scores.shape[0],
            "video_error": errors if isinstance(errors, list) else [errors],
        }

    def _forget_oldest_cached_labels(self, in_use: list[str]) -> None:
        """Keep a long-running service's cache bounded: labels are appended in the order first met, so the first
        ones past the model's vocabulary are the oldest (those of the current call stay)."""
        cached = self.label_bank.labels[len(self.default_labels or ()) :]  # after the model's own, never dropped
        excess = len(cached) - self.max_cached_labels
        if excess > 0:
            in_use_set = set(in_use)
            self.label_bank.remove([label for label in cached[:excess] if label not in in_use_set])

    def _embed_labels(self, labels: list[str]) -> torch.Tensor:
        return embed_labels(labels, self.model, self.processor)

    def postprocess(self, model_outputs: dict, threshold: float | None = None, top_k: int | None = None):
        error = model_outputs.get("video_error")  # [error] unbatched, the error itself once a batch is split
        if (error := error[0] if isinstance(error, list) else error) is not None:
            return error
        threshold = decision_threshold(self.model.config, threshold)
        if threshold is None and not self.warned_uncalibrated:
            logger.warning(UNCALIBRATED_WARNING)
            self.warned_uncalibrated = True
        scores = model_outputs["scores"]  # (1, C), or (C,) when unbatched by the pipeline's iterator
        return rank_labels(_first_if_nested(model_outputs["candidate_labels"]), scores.view(-1), top_k, threshold)


def _first_if_nested(labels: list) -> list[str]:
    return labels[0] if labels and isinstance(labels[0], list) else labels
