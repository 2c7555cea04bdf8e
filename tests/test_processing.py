"""OvmlvProcessor: video inputs of every kind, label inputs, save/load with and without an LLM tokenizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoProcessor

from processing import OvmlvProcessor, VideoDecodeError
from processing.frame_transforms import CLIP_MEAN, CLIP_STD, frames_to_pixel_values


def test_video_shapes_single_many_and_multi_clip(processor, video_path):
    assert processor(videos=video_path, num_frames=4)["pixel_values_videos"].shape == (1, 4, 3, 32, 32)
    assert processor(videos=[video_path, str(video_path)], num_frames=3)["pixel_values_videos"].shape == (
        2,
        3,
        3,
        32,
        32,
    )
    multi = processor(videos=video_path, num_frames=2, num_clips=4)["pixel_values_videos"]
    assert multi.shape == (1, 4, 2, 3, 32, 32)


def test_every_video_source_gives_the_same_pixels(processor, video_path):
    from_path = processor(videos=video_path, num_frames=4)["pixel_values_videos"]
    from_bytes = processor(videos=video_path.read_bytes(), num_frames=4)["pixel_values_videos"]
    with open(video_path, "rb") as f:
        from_file = processor(videos=f, num_frames=4)["pixel_values_videos"]
    assert torch.equal(from_path, from_bytes) and torch.equal(from_path, from_file)


def test_decoded_frames_are_a_video(processor):
    frames = np.random.default_rng(0).integers(0, 255, (6, 40, 50, 3), dtype=np.uint8)
    as_array = processor(videos=frames, num_frames=3)["pixel_values_videos"]
    as_pil = processor(videos=[Image.fromarray(f) for f in frames], num_frames=3)["pixel_values_videos"]
    assert as_array.shape == (1, 3, 3, 32, 32)
    assert torch.allclose(as_array, as_pil)


def test_frames_to_pixel_values_normalises_and_center_crops():
    frames = np.zeros((1, 32, 64, 3), dtype=np.uint8)
    frames[:, :, 16:48] = 255  # a white centre band exactly the crop's width
    pixels = frames_to_pixel_values(frames, image_size=32)
    white = (1 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    assert pixels.shape == (1, 3, 32, 32)
    assert torch.allclose(pixels[0, :, :, 1:-1].mean(dim=(1, 2)), white, atol=1e-4)


def test_bad_video_is_a_typed_error(processor, tmp_path):
    with pytest.raises(VideoDecodeError, match="missing.mp4"):
        processor(videos=tmp_path / "missing.mp4")


def test_label_inputs(processor):
    inputs = processor(text=["dog", "red circle moving left"])
    assert inputs["input_ids"].shape[0] == 2
    assert inputs["prompt_input_ids"].shape[:2] == (2, len(processor.prompt_templates))
    assert inputs["llm_input_ids"].shape[0] == 2
    decoded = processor.llm_tokenizer.decode(inputs["llm_input_ids"][1], skip_special_tokens=True)
    assert "red circle moving left" in decoded and "useful" in decoded


@pytest.mark.parametrize("with_llm", [True, False])
def test_save_and_load_round_trip(towers, tmp_path, with_llm):
    processor = OvmlvProcessor.from_towers(clip=towers.clip, llm=towers.llm if with_llm else None, num_frames=5)
    processor.save_pretrained(tmp_path)
    for loaded in (
        OvmlvProcessor.from_pretrained(tmp_path),
        AutoProcessor.from_pretrained(tmp_path, trust_remote_code=True),
    ):
        assert loaded.num_frames == 5 and loaded.image_size == 32
        assert (loaded.llm_tokenizer is not None) == with_llm
        assert loaded(text=["dog"])["input_ids"].tolist() == processor(text=["dog"])["input_ids"].tolist()


def test_argument_errors(processor):
    with pytest.raises(ValueError, match="videos=..., text="):
        processor()
    with pytest.raises(ValueError, match="sampling"):
        processor(videos=np.zeros((2, 8, 8, 3), np.uint8), sampling="nope")
    with pytest.raises(ValueError, match="placeholder"):
        OvmlvProcessor(tokenizer=processor.tokenizer, prompt_templates=["no label here"])
