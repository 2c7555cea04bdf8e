"""OvmlvModel on tiny towers: equivalence with CLIPModel, shapes, scoring, loss, config errors, save/load."""

from __future__ import annotations

import copy
import json
import shutil

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel, CLIPModel

from ovmlv.modeling_ovmlv import OvmlvConfig, OvmlvModel
from ovmlv.modeling_ovmlv.loss import weighted_multilabel_bce
from ovmlv.modeling_ovmlv.modeling_ovmlv import hub_id
from ovmlv.processing import OvmlvProcessor
from tests.numerics import assert_same_outputs, assert_same_state


@pytest.fixture(scope="module")
def clip_model(towers):
    return CLIPModel.from_pretrained(towers.clip).eval()


@pytest.fixture(scope="module")
def model(towers):
    return OvmlvModel.from_towers(clip=towers.clip, label_encoder="class_name", temporal_layers=0).eval()


def test_one_frame_video_equals_clip_image_features(model, clip_model):
    pixels = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        ours = model.get_video_features(pixels[:, None])  # 3 one-frame videos
        clip = F.normalize(clip_model.get_image_features(pixel_values=pixels).pooler_output, dim=-1)
    assert ours.shape == (3, 16)
    assert (ours - clip).abs().max() <= 1e-5


def test_class_name_label_equals_clip_text_features(model, clip_model, processor):
    inputs = processor(text=["dog", "red circle moving left", "surfing"])
    with torch.no_grad():
        ours = model.get_label_features(**inputs)
        clip = clip_model.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
    assert (ours - F.normalize(clip.pooler_output, dim=-1)).abs().max() <= 1e-5
    assert torch.allclose(ours.norm(dim=-1), torch.ones(3))


def test_template_ensemble_is_mean_of_normalised_prompts(towers, clip_model, processor):
    model = OvmlvModel.from_towers(clip=towers.clip, label_encoder="templates", temporal_layers=0).eval()
    inputs = processor(text=["dog", "beach"])
    with torch.no_grad():
        ours = model.get_label_features(**inputs)
        prompts = [t.format(label="beach") for t in processor.prompt_templates]
        tokens = processor.tokenizer(prompts, padding=True, return_tensors="pt")
        expected = F.normalize(
            F.normalize(clip_model.get_text_features(**tokens).pooler_output, dim=-1).mean(0), dim=0
        )
    assert (ours[1] - expected).abs().max() <= 1e-5


def test_frame_mean_pooling_is_order_blind_and_multi_clip_averages(model):
    video = torch.randn(2, 6, 3, 32, 32)
    with torch.no_grad():
        forward = model.get_video_features(video)
        reversed_ = model.get_video_features(video.flip(1))
        clips = model.get_video_features(video.view(2, 2, 3, 3, 32, 32))
        per_clip = model.get_video_features(video.view(4, 3, 3, 32, 32)).view(2, 2, -1)
    assert torch.allclose(forward, reversed_, atol=1e-6)
    assert torch.allclose(clips, F.normalize(per_clip.mean(1), dim=-1), atol=1e-6)
    with pytest.raises(ValueError, match="pixel_values_videos must be"):
        model.get_video_features(torch.randn(3, 32, 32))


def test_forward_scores_every_label_independently(model, processor):
    inputs = processor(text=["dog", "beach", "surfing"])
    video = torch.randn(2, 4, 3, 32, 32)
    with torch.no_grad():
        all_three = model(pixel_values_videos=video, **inputs).logits_per_video
        just_one = model(pixel_values_videos=video, **processor(text=["beach"])).logits_per_video
    assert all_three.shape == (2, 3)
    assert torch.allclose(all_three[:, 1:2], just_one, atol=1e-5)  # no softmax coupling between labels
    out = model(pixel_values_videos=video, **inputs)
    expected = (out.video_embeds @ out.label_embeds.T) / model.config.score_temperature
    assert torch.allclose(out.logits_per_video, expected, atol=1e-4)


def test_loss_is_weighted_bce_summed_over_labels():
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    targets = torch.tensor([[1, 0, 0]])
    p = logits.sigmoid()[0]
    expected = -(torch.log(p[0]) + 0.25 * (torch.log(1 - p[1]) + torch.log(1 - p[2])))
    assert torch.allclose(weighted_multilabel_bce(logits, targets, negative_weight=0.25), expected)


def test_forward_with_targets_returns_loss_and_missing_inputs_are_named(model, processor):
    inputs = processor(text=["dog", "beach"])
    out = model(pixel_values_videos=torch.randn(1, 2, 3, 32, 32), labels=torch.tensor([[1, 0]]), **inputs)
    assert out.loss.ndim == 0 and out.loss > 0
    with pytest.raises(ValueError, match="input_ids"):
        model.get_label_features(prompt_input_ids=inputs["prompt_input_ids"])


def test_towers_are_frozen_by_default(model):
    assert not any(p.requires_grad for p in model.video_encoder.vision_tower.parameters())
    assert not any(p.requires_grad for p in model.label_encoder.text_tower.parameters())
    assert model.score_head.logit_scale.shape == (1,)  # DeepSpeed cannot partition 0-dim parameters


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"label_encoder": "nope"}, "label_encoder"),
        ({"label_encoder": "llm_prompted", "llm_config": None}, "needs an LLM"),
        ({"label_encoder": "class_name", "temporal_layers": 99}, "temporal_layers"),
        ({"label_encoder": "class_name", "score_temperature": 0.0}, "score_temperature"),
    ],
)
def test_config_errors_name_the_field(overrides, message):
    with pytest.raises(ValueError, match=message):
        OvmlvConfig(**overrides)


def test_save_load_round_trip(model, tmp_path):
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists() and not list(tmp_path.glob("*.bin"))
    for code_file in ("configuration_ovmlv.py", "modeling_ovmlv.py", "pipeline_ovmlv.py", "label_bank.py"):
        assert (tmp_path / code_file).exists(), code_file
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    assert isinstance(reloaded, OvmlvModel)
    assert_same_state(reloaded.state_dict(), model.state_dict())
    video = torch.randn(1, 3, 3, 32, 32)
    with torch.no_grad():
        assert_same_outputs(reloaded.get_video_features(video), model.get_video_features(video))


@pytest.mark.parametrize(
    "change, listed",
    [
        (lambda weights: {}, r"missing \d+ \("),
        (lambda weights: {k: v for k, v in weights.items() if "temporal" not in k}, r"missing \d+ \(.*temporal"),
        (lambda weights: {**weights, "head.extra": torch.zeros(2)}, r"unexpected 1 \(head.extra\)"),
    ],
    ids=["no tensors", "no temporal weights", "an extra key"],
)
def test_incomplete_weights_fail_loading_with_the_keys_listed(towers, processor, tmp_path, capsys, change, listed):
    """transformers alone would fill the missing weights at random and only log it: wrong scores, exit 0."""
    from safetensors.torch import load_file, save_file

    from ovmlv.cli import main
    from ovmlv.modeling_ovmlv.modeling_ovmlv import IncompleteWeightsError

    OvmlvModel.from_towers(clip=towers.clip, label_encoder="class_name", temporal_layers=1).save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    weights = tmp_path / "model.safetensors"
    save_file(change(load_file(weights)), weights, metadata={"format": "pt"})
    with pytest.raises(IncompleteWeightsError, match=listed):
        OvmlvModel.from_pretrained(tmp_path)
    assert main(["vocab", "build", "--model", str(tmp_path), "--labels", "dog"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith(f"ovmlv vocab: error: The weights of {tmp_path} do not match its config")
    assert "MISSING" not in err and not (tmp_path / "label_bank.json").exists()  # no load report: one line


def test_tiny_towers_have_the_real_checkpoint_layouts(towers, processor):
    """OpenAI's legacy CLIP text config (eos_token_id=2: pool at argmax(input_ids), EOS the highest id) and an untied
    T5, as the Hub's files are: loading code tested only on tidier layouts broke on the real ones."""
    clip = CLIPModel.from_pretrained(towers.clip)
    assert clip.config.text_config.eos_token_id == 2
    assert processor.tokenizer.eos_token_id == len(processor.tokenizer) - 1
    assert json.loads((towers.llm / "config.json").read_text())["tie_word_embeddings"] is False


def test_a_saved_folder_is_self_contained(towers, processor, tmp_path):
    """No absolute path of the machine that made it, and no reaching for the towers at inference: the towers'
    folder is deleted and a fixed-LLM-prompt model (which tokenizes text itself) still encodes labels."""
    moved = tmp_path / "towers"
    shutil.copytree(towers.clip.parent, moved)
    model = OvmlvModel.from_towers(clip=moved / "clip", llm=moved / "t5", method="llm_fixed")
    folder = tmp_path / "saved"
    model.save_pretrained(folder)
    OvmlvProcessor.from_towers(clip=moved / "clip", llm=moved / "t5").save_pretrained(folder)
    shutil.rmtree(moved)
    for file in folder.rglob("*.json"):
        text = file.read_text()
        assert str(moved) not in text and str(tmp_path) not in text, file
        assert '"is_local"' not in text and '"local_files_only"' not in text, file
    config = json.loads((folder / "config.json").read_text())
    deployment = config["deployment_config"]
    assert deployment["clip_name_or_path"] is None and deployment["llm_name_or_path"] is None
    reloaded = OvmlvModel.from_pretrained(folder)
    with torch.no_grad():
        embeds = reloaded.get_label_features(**processor(text=["dog", "red circle"]))
    assert embeds.shape == (2, model.config.projection_dim)


def test_hub_ids_are_kept_as_the_towers_names(tmp_path):
    assert hub_id("openai/clip-vit-base-patch32") == "openai/clip-vit-base-patch32"
    assert hub_id(tmp_path) is None and hub_id(None) is None


def test_label_embeddings_on_another_device_are_moved_to_the_videos(model):
    """The score head moves label embeddings to the video embeddings' device (a label bank lives on the CPU)."""
    head = copy.deepcopy(model.score_head).to("meta")  # stands in for a model on a GPU: no GPU on the test machine
    bank_embeddings = torch.randn(3, 16)
    logits = head(torch.zeros(2, 16, device="meta"), bank_embeddings)
    assert logits.device.type == "meta" and logits.shape == (2, 3)


def test_offloaded_to_disk_it_encodes_labels_and_videos(towers, processor, tmp_path):
    """accelerate's disk offload (`device_map="auto"` with no memory to spare) keeps every weight on the meta
    device until its module is called: a weight read without calling its module fails here."""
    model = OvmlvModel.from_towers(clip=towers.clip, llm=towers.llm, temporal_layers=2)
    model.save_pretrained(tmp_path / "model")
    inputs, video = processor(text=["dog", "red circle"]), torch.randn(1, 8, 3, 32, 32)
    with torch.no_grad():
        labels, videos = model.get_label_features(**inputs), model.get_video_features(video)
    offloaded = OvmlvModel.from_pretrained(
        tmp_path / "model", device_map="auto", max_memory={"cpu": "1KB"}, offload_folder=str(tmp_path / "offload")
    )
    assert set(offloaded.hf_device_map.values()) == {"disk"}
    with torch.no_grad():
        assert_same_outputs(offloaded.get_label_features(**inputs), labels)
        assert_same_outputs(offloaded.get_video_features(video), videos)
