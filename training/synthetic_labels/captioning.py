"""Stage 1 (paper supp. I): caption frames sampled from every video with a multimodal LLM.

The paper captions with IDEFICS-9b-Instruct and LLaVA; any transformers `image-text-to-text` model works here
(transformers 5 has no `image-to-text` task any more: BLIP, GIT and vision-encoder-decoder captioners moved to
`image-text-to-text` too). A video is represented by one caption per sampled frame, 8 by default as in the
paper's prompt examples, and results go to a `JsonlCache` so a crashed or extended run redoes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from PIL import Image
from transformers import pipeline

from ovmlv.processing.video_decoding import VideoDecodeError, load_video

from .jsonl_cache import JsonlCache
from .settings import DEFAULT_CAPTION_PROMPT

CaptionFn = Callable[[list[Image.Image]], list[str]]  # one caption per image


class ImageCaptioner:
    """A `CaptionFn` backed by `pipeline("image-text-to-text", model)`.

    Chat models (LLaVA, Idefics2/3, Qwen-VL: their processor has a chat template) get `prompt` as the user's
    instruction next to the image; plain captioners (BLIP, GIT) continue `prompt` as a text prefix, so give them
    "" or "a picture of". Decoding is greedy, so a rerun reproduces the captions.
    """

    def __init__(
        self,
        model: str,
        prompt: str = DEFAULT_CAPTION_PROMPT,
        max_new_tokens: int = 48,
        batch_size: int = 8,
        device: str | None = None,
        dtype: str = "auto",
    ) -> None:
        self.pipeline = pipeline("image-text-to-text", model=model, device=device, dtype=dtype)
        self.prompt, self.max_new_tokens, self.batch_size = prompt, max_new_tokens, batch_size
        self.chat = getattr(self.pipeline.processor, "chat_template", None) is not None
        if not self.pipeline.model.config.is_encoder_decoder:
            # Decoder-only models continue each prompt from its end: in a padded batch that end must be aligned.
            self.pipeline.processor.tokenizer.padding_side = "left"

    def __call__(self, images: list[Image.Image]) -> list[str]:
        inputs: Iterable[Any]
        if self.chat:
            content = [{"type": "text", "text": self.prompt}]
            inputs = [[{"role": "user", "content": [{"type": "image", "image": image}, *content]}] for image in images]
        else:  # a generator: the pipeline would read a list of dicts as one chat
            inputs = ({"images": image, "text": self.prompt} for image in images)
        outputs = self.pipeline(
            inputs,
            max_new_tokens=self.max_new_tokens,
            return_full_text=False,
            batch_size=self.batch_size,
            generate_kwargs={"do_sample": False},
        )
        # One line per caption: the concept prompt lists a video's captions as numbered lines.
        return [" ".join(output[0]["generated_text"].split()) for output in outputs]


def sample_frames(video: str | Path, num_frames: int) -> list[Image.Image]:
    """Frames at the centres of `num_frames` equal segments, full resolution (the captioner's processor resizes)."""
    return [Image.fromarray(frame) for frame in load_video(video, num_frames, mode="uniform", size=None)[0]]


def caption_videos(
    videos: Mapping[str, str | Path],
    caption_fn: CaptionFn,
    cache: JsonlCache,
    num_frames: int = 8,
    frames_per_call: int = 16,
    progress: bool = True,
) -> dict[str, list[str]]:
    """Captions of every video (key -> path), `num_frames` per video, in frame order.

    Whole videos go to `caption_fn` together, about `frames_per_call` frames at a time. A video that cannot be
    decoded is cached with no captions and its `error`, so it gets no generated labels and is not retried.
    """

    def caption_chunk(keys: list[str]) -> list[dict[str, Any]]:
        frames: dict[str, list[Image.Image]] = {}
        errors: dict[str, str] = {}
        for key in keys:
            try:
                frames[key] = sample_frames(videos[key], num_frames)
            except VideoDecodeError as error:
                errors[key] = error.reason
        images = [frame for video_frames in frames.values() for frame in video_frames]
        flat_captions = caption_fn(images) if images else []
        if len(flat_captions) != len(images):
            raise ValueError(f"the captioner returned {len(flat_captions)} captions for {len(images)} frames")
        captions = iter(flat_captions)
        return [
            {"video": key, "captions": [next(captions) for _ in frames[key]]}
            if key in frames
            else {"video": key, "captions": [], "error": errors[key]}
            for key in keys
        ]

    records = cache.fill(list(videos), caption_chunk, max(1, frames_per_call // num_frames), "1/4 captions", progress)
    return {key: record["captions"] for key, record in records.items()}
