"""SigLIP and SigLIP 2 towers (modeling_ovmlv/siglip_towers.py): zero-shot equal to `SiglipModel`, SigLIP's frame and
text processing, soft prompts that keep the last position pooled, the paper's method on SigLIP (train a step, save,
reload in a fresh process), and the library commands (index, tag, search), training and export on SigLIP towers."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import AutoModel, AutoTokenizer, CLIPTextConfig, SiglipTextConfig, SiglipVisionConfig, pipeline
from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

from ovmlv import arguments, cli
from ovmlv.modeling_ovmlv import OvmlvConfig, OvmlvModel
from ovmlv.modeling_ovmlv.label_bank import embed_labels
from ovmlv.modeling_ovmlv.siglip_towers import patchify
from ovmlv.organism.tiny_siglip import LOGIT_BIAS, LOGIT_SCALE
from ovmlv.processing import OvmlvProcessor
from ovmlv.processing.frame_transforms import frames_to_pixel_values
from ovmlv.training import train
from ovmlv.video_library.index_store import VideoIndex
from tests.fresh_process import run_without_ovmlv
from tests.hub_model_folder import VOCABULARY, save_trained_folder
from tests.numerics import assert_same_outputs, assert_same_state
from tests.video_library_files import build_index, write_library

LABELS = ["dog", "a red circle moving left", "beach"]
# The paper's model at toy sizes (as tests/test_training.py), with two temporal blocks.
TINY_OVMLV = dict(num_prefixes=1, num_attributes=1, attribute_length=2, prompt_transformer_layers=1, temporal_layers=2)

pytestmark = pytest.mark.usefixtures("one_thread")


def siglip_reference(folder: Path) -> torch.nn.Module:
    """transformers' own model of the checkpoint: `SiglipModel` or `Siglip2Model`."""
    return AutoModel.from_pretrained(folder).eval()


def image_inputs(reference: torch.nn.Module, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
    """(N, 3, S, S) frames as the reference reads them; `Siglip2Model` (NaFlex) reads flattened patches, their grid
    and which are valid (all: a square frame at the native grid)."""
    if reference.config.model_type != "siglip2":
        return {"pixel_values": pixels}
    patch = reference.config.vision_config.patch_size
    patches = patchify(pixels, patch)
    grid = torch.tensor([[pixels.shape[-2] // patch, pixels.shape[-1] // patch]] * len(pixels))
    return {"pixel_values": patches, "pixel_attention_mask": torch.ones(patches.shape[:2]), "spatial_shapes": grid}


@pytest.mark.parametrize("variant", ["siglip", "siglip2", "siglip2_naflex"])
@pytest.mark.parametrize("method", ["class_name", "templates"])
def test_zero_shot_logits_are_siglips(siglip_towers, variant, method):
    """A 1-frame video scores as `SiglipModel.logits_per_image`: SigLIP's own scale and bias, no calibration."""
    folder = siglip_towers(variant).clip
    model = OvmlvModel.from_towers(folder, method=method).eval()
    processor = OvmlvProcessor.from_towers(folder)
    assert model.config.score_temperature == pytest.approx(math.exp(-LOGIT_SCALE))
    assert model.config.score_bias == pytest.approx(LOGIT_BIAS)
    reference = siglip_reference(folder)
    pixels = torch.randn(2, 3, 32, 32)
    inputs = processor(text=LABELS)
    with torch.no_grad():
        ours = model(pixel_values_videos=pixels[:, None], **inputs).logits_per_video
        if method == "class_name":
            expected = reference(input_ids=inputs["input_ids"], **image_inputs(reference, pixels)).logits_per_image
        else:  # the template ensemble: mean of SigLIP's unit text features, scored with its scale and bias
            ids = inputs["prompt_input_ids"].flatten(0, 1)
            text = F.normalize(reference.get_text_features(input_ids=ids).pooler_output, dim=-1)
            text = F.normalize(text.view(len(LABELS), -1, text.shape[-1]).mean(dim=1), dim=-1)
            image = F.normalize(reference.get_image_features(**image_inputs(reference, pixels)).pooler_output, dim=-1)
            expected = image @ text.T * reference.logit_scale.exp() + reference.logit_bias
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("variant", ["siglip", "siglip2"])
def test_processor_prepares_frames_and_labels_as_siglips_processors(siglip_towers, variant, tmp_path):
    """Frames resized to the square without a crop and normalised with mean = std = 0.5 (SiglipImageProcessor);
    labels padded to SigLIP's 64 positions; the settings survive a save and load."""
    folder = siglip_towers(variant).clip
    processor = OvmlvProcessor.from_towers(folder)
    assert (processor.image_mean, processor.image_std) == ([0.5] * 3, [0.5] * 3)
    assert (processor.do_center_crop, processor.text_length, processor.image_size) == (False, 64, 32)
    frames = np.random.default_rng(0).integers(0, 256, (3, 48, 80, 3), dtype=np.uint8)  # 5:3, not square
    preprocessor = json.loads((folder / "preprocessor_config.json").read_text())
    expected = SiglipImageProcessorPil(**preprocessor)(list(frames), return_tensors="pt")["pixel_values"]
    ours = frames_to_pixel_values(frames, 32, processor.image_mean, processor.image_std, center_crop=False)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-6)
    assert_same_outputs(processor(videos=[frames[1]], num_frames=1)["pixel_values_videos"][0], ours[1:2])
    inputs = processor(text=LABELS)
    assert inputs["input_ids"].shape == (3, 64) and inputs["attention_mask"].sum(dim=1).min() >= 1
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert inputs["input_ids"].tolist() == tokenizer(LABELS, padding="max_length", max_length=64)["input_ids"]
    processor.save_pretrained(tmp_path)
    loaded = OvmlvProcessor.from_pretrained(tmp_path)
    assert (loaded.do_center_crop, loaded.text_length, loaded.image_mean) == (False, 64, [0.5] * 3)


def test_siglip2_naflex_runs_at_its_native_grid(siglip_towers):
    """A `Siglip2Model` config names a patch budget, not a size: the model and the processor take its native grid."""
    folder = siglip_towers("siglip2_naflex").clip
    model = OvmlvModel.from_towers(folder, method="class_name")
    processor = OvmlvProcessor.from_towers(folder)
    assert model.config.towers_type == "siglip2" and model.config.vision_config.image_size == 32
    assert (processor.image_size, processor.do_center_crop, processor.text_length) == (32, False, 64)
    assert (processor.image_mean, processor.image_std) == ([0.5] * 3, [0.5] * 3)


def left_padded(ids: torch.Tensor, mask: torch.Tensor, pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded rows -> the same tokens with the padding in front."""
    order = torch.argsort(mask, dim=1, stable=True)  # padding first, then the tokens in their order
    return torch.where(mask.gather(1, order).bool(), ids.gather(1, order), pad), mask.gather(1, order)


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_a_soft_prompt_goes_before_the_text_and_the_last_position_stays_pooled(siglip_towers, padding_side):
    """The token embeddings of "a video of" given as a soft prompt before "dog" make exactly the features SigLIP
    computes for "a video of dog": the prompt sits before the text and the sequence keeps its 64 positions."""
    folder = siglip_towers("siglip").clip
    tower = OvmlvModel.from_towers(folder, method="class_name").label_encoder.text_tower.eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenize = dict(padding="max_length", max_length=64, return_attention_mask=True, return_tensors="pt")
    prefix = tokenizer("a video of", add_special_tokens=False)["input_ids"]
    bare, full = tokenizer(["dog", "beach"], **tokenize), tokenizer(["a video of dog", "a video of beach"], **tokenize)
    assert full["input_ids"][:, : len(prefix)].eq(torch.tensor(prefix)).all()  # the phrase tokenizes apart
    bare_ids, bare_mask, full_ids = bare["input_ids"], bare["attention_mask"], full["input_ids"]
    if padding_side == "left":
        full_ids, _ = left_padded(full_ids, full["attention_mask"], tokenizer.pad_token_id)
        bare_ids, bare_mask = left_padded(bare_ids, bare_mask, tokenizer.pad_token_id)
    with torch.no_grad():
        soft = tower.token_embedding(torch.tensor([prefix, prefix]))  # (2, L, H)
        ours = tower(bare_ids, bare_mask, soft_prompt=soft)
        expected = siglip_reference(folder).get_text_features(input_ids=full_ids).pooler_output
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="too long for SigLIP's text tower"):
        tower(bare_ids, bare_mask, soft_prompt=torch.zeros(2, 63, tower.hidden_size))
    with pytest.raises(ValueError, match="needs the attention_mask"):
        tower(bare_ids, None, soft_prompt=soft)


@pytest.mark.parametrize("variant", ["siglip", "siglip2_naflex"])
def test_a_new_branch_pooling_its_own_frames_is_siglips_frame_mean(siglip_towers, variant):
    """With `temporal_pooling="branch_frames"` the branch's frames are SigLIP's (copies of its last layers, temporal
    parts at zero) and TMP's gate starts at 0: the video embedding is the mean of SigLIP's frame embeddings."""
    folder = siglip_towers(variant).clip
    model = OvmlvModel.from_towers(
        folder, method="class_name", temporal_layers=2, temporal_pooling="branch_frames", temporal_positions=3
    ).eval()
    video = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        ours = model.get_video_features(video)
        reference = siglip_reference(folder)
        frames = reference.get_image_features(**image_inputs(reference, video.flatten(0, 1))).pooler_output
    assert_same_outputs(ours, F.normalize(frames.unflatten(0, (2, 3)).mean(dim=1), dim=-1))


FRESH_PROCESS_SCRIPT = textwrap.dedent(
    """
    import json, sys

    from safetensors.torch import load_file
    from transformers import AutoModel, AutoProcessor

    folder, pixels_file = sys.argv[1], sys.argv[2]
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    pixels = load_file(pixels_file)["pixels"]
    logits = model(pixel_values_videos=pixels, **processor(text=sys.argv[3:])).logits_per_video
    print(json.dumps({"logits": logits.tolist(), "module": type(model).__module__}))
    """
)


def test_the_papers_method_on_siglip_trains_saves_and_reloads_in_a_fresh_process(siglip_towers, tmp_path):
    """from_towers(SigLIP, T5, method="ovmlv"): the prefixes, connector and temporal branch get gradients and train a
    step, SigLIP's towers stay bit-identical, and the saved folder scores the same without this package."""
    towers = siglip_towers("siglip")
    model = OvmlvModel.from_towers(clip=towers.clip, llm=towers.llm, method="ovmlv", **TINY_OVMLV)
    processor = OvmlvProcessor.from_towers(towers.clip, towers.llm, num_frames=2)
    frozen = {k: v.clone() for k, v in model.state_dict().items() if k.startswith("video_encoder.vision_tower.")}
    pixels = torch.randn(2, 2, 3, 32, 32)
    targets = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    model.train()
    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.SGD(trainable.values(), lr=0.1)

    def train_step() -> None:
        optimizer.zero_grad()
        model(pixel_values_videos=pixels, labels=targets, **processor(text=LABELS)).loss.backward()
        optimizer.step()

    train_step()  # the zero-start gates open (docs/design.md §4.1) ...
    for name in ("label_encoder.label_gate", "video_encoder.temporal_branch.tmp_gate"):
        assert trainable[name].grad.abs().sum() > 0, name
    train_step()  # ... then every learnt part behind them trains
    for name in ("label_encoder.prefixes", "video_encoder.temporal_branch.blocks.1.mlp.fc2.weight"):
        assert trainable[name].grad.abs().sum() > 0, name
    assert any(name.startswith("label_encoder.connector.") and p.grad.abs().sum() > 0 for name, p in trainable.items())
    assert_same_state({k: v for k, v in model.state_dict().items() if k in frozen}, frozen)

    model.eval()
    with torch.no_grad():
        here = model(pixel_values_videos=pixels, **processor(text=LABELS)).logits_per_video
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    save_file({"pixels": pixels}, tmp_path / "pixels.safetensors")
    out = run_without_ovmlv(
        FRESH_PROCESS_SCRIPT, [str(folder), str(tmp_path / "pixels.safetensors"), *LABELS], tmp_path
    )
    assert out["module"].startswith("transformers_modules.")
    assert_same_outputs(torch.tensor(out["logits"]), here)


@pytest.fixture(scope="module")
def siglip_folder(siglip_towers, tmp_path_factory) -> Path:
    """A class-name model on SigLIP towers with a label bank, as `ovmlv train` would leave it."""
    towers = siglip_towers("siglip")
    processor = OvmlvProcessor.from_towers(towers.clip)
    return save_trained_folder(tmp_path_factory.mktemp("siglip_model"), towers, processor, VOCABULARY)


@pytest.fixture(scope="module")
def siglip_index(siglip_folder, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("siglip_library")
    return build_index(write_library(folder / "videos"), siglip_folder, folder / "library.index")


def test_pipeline_and_label_bank_on_siglip(siglip_folder, video_path):
    model = OvmlvModel.from_pretrained(siglip_folder).eval()
    processor = OvmlvProcessor.from_pretrained(siglip_folder)
    with torch.no_grad():
        assert_same_outputs(model.label_bank.embeddings, model.get_label_features(**processor(text=VOCABULARY)))
        expected = model(**processor(videos=str(video_path), text=LABELS)).logits_per_video.sigmoid()[0]
    classifier = pipeline("zero-shot-video-classification", model=str(siglip_folder), trust_remote_code=True)
    scores = {item["label"]: item["score"] for item in classifier(str(video_path), candidate_labels=LABELS)}
    assert scores == pytest.approx(dict(zip(LABELS, expected.tolist(), strict=True)), abs=1e-5)


def test_index_tag_and_search_on_siglip(siglip_folder, siglip_index, tmp_path, capsys):
    model = OvmlvModel.from_pretrained(siglip_folder).eval()
    processor = OvmlvProcessor.from_pretrained(siglip_folder)
    videos, embeddings = VideoIndex.open(siglip_index).embedded()
    pixels = processor.video_pixel_values(str(siglip_index.parent / "videos" / videos[0]), 2, 2)
    with torch.no_grad():
        assert_same_outputs(embeddings[:1], model.get_video_features(pixels))
        probs = model.logits(embeddings, embed_labels(LABELS, model, processor)).sigmoid()
    capsys.readouterr()
    argv = ["tag", str(siglip_index), "--labels", *LABELS, "--out", str(tmp_path / "tags.jsonl"), "--top-k", "3"]
    assert cli.main([*argv, "--threshold", "0"]) == arguments.EXIT_OK
    rows = [json.loads(line) for line in (tmp_path / "tags.jsonl").read_text().splitlines()]
    first = next(row for row in rows if row["video"] == videos[0])
    tagged = {item["label"]: item["score"] for item in first["top_k"]}
    assert tagged == pytest.approx(dict(zip(LABELS, probs[0].tolist(), strict=True)), abs=1e-5)
    capsys.readouterr()
    assert cli.main(["search", str(siglip_index), "dog", "--top-k", "3", "--json"]) == arguments.EXIT_OK
    [found] = json.loads(capsys.readouterr().out)
    best = probs[:, 0].argsort(descending=True)[:3].tolist()
    assert [item["video"] for item in found["videos"]] == [videos[i] for i in best]


def test_training_and_export_on_siglip(siglip_towers, synthetic, tmp_path):
    """`ovmlv train` on SigLIP towers saves a model whose processor keeps SigLIP's settings, and the export of it
    loads and scores as the trained folder does."""
    from ovmlv.hub_cards.export import export_model
    from tests.test_training import tiny_config

    out = tmp_path / "run"
    summary = train.main(
        ["--config", str(tiny_config(tmp_path / "config.yaml", siglip_towers("siglip"), synthetic, out))]
    )
    assert summary["completed_steps"] == 4
    processor = OvmlvProcessor.from_pretrained(out / "final")
    assert (processor.do_center_crop, processor.text_length) == (False, 64)
    exported = export_model(out / "final", tmp_path / "hub", "test-org/tiny-siglip", ["dog", "beach"])
    card = (exported / "README.md").read_text()
    assert "SigLIP ViT" in card and "tokenised by SigLIP (at most 64 tokens)" in card
    pixels = torch.randn(1, 2, 3, 32, 32)
    scores = []
    for folder in (out / "final", exported):
        model = OvmlvModel.from_pretrained(folder).eval()
        assert model.config.towers_type == "siglip"
        with torch.no_grad():
            scores.append(model(pixel_values_videos=pixels, **processor(text=LABELS)).logits_per_video)
    assert_same_outputs(scores[1], scores[0])


def test_towers_of_another_kind_are_named(siglip_towers, towers):
    """Adapter folders and exports load their towers by Hub id: a CLIP where SigLIP was built on is named as such."""
    config = OvmlvModel.from_towers(siglip_towers("siglip").clip, method="class_name").config
    clip = AutoModel.from_pretrained(towers.clip)
    with pytest.raises(ValueError, match="are a CLIP checkpoint; this model was built on SigLIP towers"):
        OvmlvModel.weights_from_towers(config, clip, None, "test-org/tiny-clip")


def test_config_takes_tower_configs_by_model_type_and_refuses_mixtures():
    config = OvmlvConfig(
        text_config=SiglipTextConfig(), vision_config=SiglipVisionConfig(), label_encoder="class_name"
    )
    assert config.towers_type == "siglip"
    assert type(OvmlvConfig.from_dict(config.to_dict()).vision_config) is SiglipVisionConfig  # saved and read back
    with pytest.raises(ValueError, match="must come from one checkpoint"):
        OvmlvConfig(text_config=CLIPTextConfig(), vision_config=SiglipVisionConfig(), label_encoder="class_name")
    with pytest.raises(ValueError, match="vision_config is a 'vit' config"):
        OvmlvConfig(vision_config={"model_type": "vit"}, label_encoder="class_name")
