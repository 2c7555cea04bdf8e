"""OvmlvProcessor: video inputs of every kind, label inputs, save/load with and without an LLM tokenizer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoProcessor

from ovmlv.modeling_ovmlv.label_encoder import TemplateEnsembleLabelEncoder
from ovmlv.processing import OvmlvProcessor, VideoDecodeError
from ovmlv.processing.frame_transforms import CLIP_MEAN, CLIP_STD, frames_to_pixel_values
from ovmlv.processing.processing_ovmlv import LABEL_INPUT_NAMES
from ovmlv.processing.video_decoding import load_video
from tests.video_files import write_video


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
def test_save_and_load_round_trip(towers, tmp_path, with_llm, video_path):
    """The video settings are saved and are what a loaded processor samples by default."""
    llm = towers.llm if with_llm else None
    processor = OvmlvProcessor.from_towers(towers.clip, llm, num_frames=5, num_clips=2, sampling="segment_random")
    processor.save_pretrained(tmp_path)
    for loaded in (
        OvmlvProcessor.from_pretrained(tmp_path),
        AutoProcessor.from_pretrained(tmp_path, trust_remote_code=True),
    ):
        assert (loaded.num_frames, loaded.num_clips, loaded.sampling, loaded.image_size) == (
            5,
            2,
            "segment_random",
            32,
        )
        assert loaded(videos=str(video_path), seed=0)["pixel_values_videos"].shape == (1, 2, 5, 3, 32, 32)
        assert (loaded.llm_tokenizer is not None) == with_llm
        assert loaded(text=["dog"])["input_ids"].tolist() == processor(text=["dog"])["input_ids"].tolist()


def test_argument_errors(processor):
    with pytest.raises(ValueError, match="videos=..., text="):
        processor()
    with pytest.raises(ValueError, match="sampling"):
        processor(videos=np.zeros((2, 8, 8, 3), np.uint8), sampling="nope")
    with pytest.raises(ValueError, match="sampling"):
        OvmlvProcessor(tokenizer=processor.tokenizer, sampling="random")
    with pytest.raises(ValueError, match="placeholder"):
        OvmlvProcessor(tokenizer=processor.tokenizer, prompt_templates=["no label here"])


def textured_frame(index: int, width: int, height: int) -> np.ndarray:
    """Smooth noise with sharp edges, moving with the index: content on which resize filters differ."""
    rng = np.random.default_rng(index)
    coarse = rng.integers(0, 256, (max(height // 8, 2), max(width // 8, 2), 3), dtype=np.uint8)
    frame = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.NEAREST)).copy()
    frame[height // 3 : height // 2, width // 4 : width // 2] = 255
    return frame


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (320, 240), (64, 48), (48, 64)])
def test_video_pixels_are_clips_own_preprocessing(processor, tmp_path, width, height):
    """The pixels CLIP sees from a video equal CLIPImageProcessor's on the same decoded frames (within a grey
    level: mean <= 0.005, max <= 0.1 in normalised units; FFmpeg's bilinear resize was 0.94 off), and frames given
    as images go the same way."""
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    path = write_video(
        tmp_path / "v.mp4",
        num_frames=6,
        width=width,
        height=height,
        frame_fn=lambda i: textured_frame(i, width, height),
    )
    ours = OvmlvProcessor(tokenizer=processor.tokenizer, image_size=224, num_frames=4)
    reference = CLIPImageProcessorPil(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})
    frames = load_video(path, num_frames=4, size=None)[0]  # the same frames, decoded at full resolution
    expected = reference(images=list(frames), return_tensors="pt")["pixel_values"]
    as_image = ours(videos=Image.fromarray(frames[0]))["pixel_values_videos"][0, 0]  # a still: a one-frame video
    for pixels, reference_pixels in (
        (ours(videos=str(path))["pixel_values_videos"][0], expected),
        (as_image, expected[0]),
    ):
        difference = (pixels - reference_pixels).abs()
        assert difference.mean() <= 0.005 and difference.max() <= 0.1, (difference.mean(), difference.max())


def test_the_processor_makes_only_the_label_inputs_its_encoder_reads(processor, tmp_path):
    """A model's processor tokenises for its label encoder only (a templates model: 8 prompts a label, no T5), and
    keeps that choice through save and load."""
    templates_only = OvmlvProcessor(
        tokenizer=processor.tokenizer,
        llm_tokenizer=processor.llm_tokenizer,
        label_input_names=TemplateEnsembleLabelEncoder.input_names,
    )
    assert set(templates_only(text=["dog", "red car"])) == {"prompt_input_ids", "prompt_attention_mask"}
    templates_only.save_pretrained(tmp_path)
    reloaded = OvmlvProcessor.from_pretrained(tmp_path)
    assert reloaded.label_input_names == list(TemplateEnsembleLabelEncoder.input_names)
    assert set(processor(text=["dog"])) == set(LABEL_INPUT_NAMES)  # no choice made: every input
    with pytest.raises(ValueError, match="label_input_names: unknown"):
        OvmlvProcessor(tokenizer=processor.tokenizer, label_input_names=["input_idz"])
