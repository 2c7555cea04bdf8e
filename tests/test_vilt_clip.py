"""ViLT-CLIP (`method="vilt_clip"`): deep prompts in both frozen CLIP towers, coupled by linear maps, and the
scenario-guided loss (tiny towers). Training exactly its parameters and the save/load round trip are in
test_baselines.py with the other baselines."""

from __future__ import annotations

import pytest
import torch
import yaml

from ovmlv.modeling_ovmlv import LabelBank, OvmlvConfig, OvmlvModel
from ovmlv.modeling_ovmlv.fixed_vocabulary import OvmlvFixedVocabularyModel
from ovmlv.modeling_ovmlv.label_encoder import template_ensemble
from ovmlv.organism.runs import changed_frozen_weights
from ovmlv.training import train
from tests.fresh_process import run_without_ovmlv
from tests.numerics import assert_same_outputs
from tests.test_pipeline import FRESH_PROCESS_SCRIPT
from tests.test_training import tiny_config

LABELS = ["dog", "surfing", "red car"]
TARGETS = torch.tensor([[1, 0, 0], [0, 1, 1]])

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def inputs(processor):
    return processor.label_inputs(LABELS)


def build(towers, **overrides) -> OvmlvModel:
    return OvmlvModel.from_towers(clip=towers.clip, method="vilt_clip", **overrides).eval()


def video(seed: int = 1) -> torch.Tensor:
    return torch.randn(2, 2, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def test_prompts_take_the_papers_shapes_and_split(towers):
    """Tiny towers: 2 text layers, 4 vision layers, so J = 2 prompted layers each, K = 1 of them text-led."""
    prompts = build(towers).deep_prompts
    assert prompts.text_prompts.shape == (1, 10, 32) and prompts.vision_prompts.shape == (1, 10, 32)
    assert 0.01 < prompts.text_prompts.std() < 0.03  # random N(0, 0.02), the paper's (MaPLe's) init
    layers = prompts()
    assert layers.text.shape == layers.vision.shape == (2, 10, 32)
    with (
        torch.no_grad()
    ):  # the coupling: vision prompts of the first K layers are F(text), text ones after are F~(vision)
        assert torch.equal(layers.vision[0], prompts.text_to_vision(prompts.text_prompts[0]))
        assert torch.equal(layers.text[1], prompts.vision_to_text(prompts.vision_prompts[0]))
    shallow = build(towers, deep_prompt_depth=1, deep_prompt_text_led_layers=0, deep_prompt_length=3).deep_prompts
    assert shallow.text_prompts.shape == (0, 3, 32) and shallow.vision_prompts.shape == (1, 3, 32)


def test_every_prompted_layer_reads_its_own_prompt_in_place_of_the_last_ones(towers, inputs):
    """Each prompted layer's input holds that layer's prompt at the prompt positions (after [BOS] in the text, after
    the patches in each frame), the sequences keep one prompt's length, and nothing else reads them."""
    model = build(towers)
    seen = {}

    def record(name):
        return lambda module, args: seen.__setitem__(name, args[0].detach().clone())

    for index, layer in enumerate(model.label_encoder.text_tower.text_model.encoder.layers):
        layer.register_forward_pre_hook(record(f"text{index}"))
    for index, layer in enumerate(model.video_encoder.vision_tower.layers):
        layer.register_forward_pre_hook(record(f"vision{index}"))
    with torch.no_grad():
        model(pixel_values_videos=video(), **inputs)
        prompts = model.deep_prompts()
    frame_tokens = 1 + (32 // 8) ** 2  # CLS + patches
    assert seen["text1"].shape[1] == inputs["input_ids"].shape[1] + 10  # trailing padding dropped, then + b
    assert torch.equal(seen["text1"][:, 1:11], prompts.text[1].expand(3, -1, -1))
    for index in range(2):
        assert seen[f"vision{index}"].shape[1] == frame_tokens + 10
        assert torch.equal(seen[f"vision{index}"][:, frame_tokens:], prompts.vision[index].expand(4, -1, -1))
    assert seen["vision3"].shape[1] == frame_tokens + 10  # past layer J the prompt outputs travel on


def test_each_learnt_prompt_moves_both_towers_through_the_coupling(towers, inputs):
    model = build(towers)
    with torch.no_grad():
        before = model(pixel_values_videos=video(), **inputs)
        for name in ("text_prompts", "vision_prompts"):
            parameter = getattr(model.deep_prompts, name)
            saved = parameter.clone()
            parameter.add_(0.5 * torch.randn_like(parameter))
            after = model(pixel_values_videos=video(), **inputs)
            parameter.copy_(saved)
            # text prompts reach the video through F (layer 0), vision prompts the labels through F~ (layer 1)
            assert (after.video_embeds - before.video_embeds).abs().max() > 1e-3, name
            assert (after.label_embeds - before.label_embeds).abs().max() > 1e-3, name


def test_the_scenario_guided_loss_pulls_the_text_prompts_toward_the_frozen_templates(towers, inputs):
    model = build(towers).train()
    out = model(pixel_values_videos=video(), labels=TARGETS, **inputs)
    reference = template_ensemble(
        model.label_encoder.text_tower, inputs["prompt_input_ids"], inputs["prompt_attention_mask"]
    )
    scenario = (out.label_embeds - reference).pow(2).sum(dim=-1).mean()
    assert scenario.item() > 1e-3
    model.config.regulariser_config.scenario_loss_weight = 0.0
    bce = model(pixel_values_videos=video(), labels=TARGETS, **inputs).loss
    assert out.loss.item() == pytest.approx(bce.item() + 8.0 * scenario.item(), rel=1e-5)

    model.zero_grad()
    model.label_encoder.scenario_loss(out.label_embeds, inputs["prompt_input_ids"], None).backward()
    grads = {name: p.grad for name, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert {"deep_prompts.text_prompts", "deep_prompts.vision_prompts", "deep_prompts.vision_to_text.weight"} <= set(
        grads
    )
    assert not [name for name in grads if not name.startswith("deep_prompts.")]  # the towers get none
    with pytest.raises(ValueError, match="prompt_input_ids"):
        model.config.regulariser_config.scenario_loss_weight = 8.0
        bare = {name: inputs[name] for name in ("input_ids", "attention_mask")}
        model(pixel_values_videos=video(), labels=TARGETS, **bare)


def test_configurations_it_cannot_run_are_refused_in_one_line():
    with pytest.raises(ValueError, match="CLIP towers only"):
        OvmlvConfig.from_method(
            "vilt_clip",
            text_config={"model_type": "siglip_text_model"},
            vision_config={"model_type": "siglip_vision_model"},
        )
    with pytest.raises(ValueError, match="temporal_layers=0"):
        OvmlvConfig.from_method("vilt_clip", temporal_layers=2)
    with pytest.raises(ValueError, match=r"deep_prompt_depth=13 must lie in \[1, 12\]"):
        OvmlvConfig.from_method("vilt_clip", deep_prompt_depth=13)
    with pytest.raises(ValueError, match="deep_prompt_text_led_layers=5"):
        OvmlvConfig.from_method("vilt_clip", deep_prompt_depth=4, deep_prompt_text_led_layers=5)
    assert OvmlvConfig.from_method("vilt_clip").text_led_prompt_layers == 6  # K = N/2 for CLIP B's 12 layers


def test_saved_folder_serves_it_in_a_fresh_process_and_its_bank_follows_the_prompts(
    towers, processor, video_path, tmp_path_factory
):
    folder = tmp_path_factory.mktemp("vilt_clip")
    model = build(towers, threshold=0.0)
    with torch.no_grad():
        model.deep_prompts.text_prompts.add_(0.1)
    model.label_bank = LabelBank.build(model, processor, ["dog", "beach"], progress=False)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    assert (folder / "deep_prompts.py").exists() and (folder / "vilt_clip.py").exists()
    with torch.no_grad():
        expected = model(**processor(videos=str(video_path), text=["dog", "surfing"])).logits_per_video[0]
    fresh = run_without_ovmlv(FRESH_PROCESS_SCRIPT, [str(folder), str(video_path)], tmp_path_factory.mktemp("fresh"))
    assert fresh["logits"][0] == pytest.approx(expected.tolist(), abs=1e-5)

    # The video side reads the prompts too: a fixed-vocabulary export keeps them and scores as the full model.
    fixed = OvmlvFixedVocabularyModel.from_model(model)
    frames = video()
    with torch.no_grad():
        assert_same_outputs(fixed.get_video_features(frames), model.get_video_features(frames))
    # Label embeddings are made with the prompts: other prompts, another fingerprint, the bank is not reused.
    fingerprint = model.label_encoder_fingerprint
    with torch.no_grad():
        model.deep_prompts.vision_to_text.bias.add_(0.1)
    model.save_pretrained(tmp_path_factory.mktemp("other"))
    assert model.label_encoder_fingerprint != fingerprint


def test_ovmlv_train_runs_it_and_leaves_both_towers_untouched(tmp_path, towers, synthetic, fresh_accelerate_state):
    out = tmp_path / "run"
    config = yaml.safe_load(tiny_config(tmp_path / "config.yaml", towers, synthetic, out).read_text())
    config["model"] = {"method": "vilt_clip", "deep_prompt_length": 2}
    config["optimizer"].update(max_steps=2)
    config["training"].update(checkpoint_every=2)
    config["eval"].update(every_steps=0)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    assert train.main(["--config", str(tmp_path / "config.yaml")])["completed_steps"] == 2

    trained = OvmlvModel.from_pretrained(out / "final")
    untrained = OvmlvModel.from_towers(towers.clip, method="vilt_clip", deep_prompt_length=2)
    compared, changed = changed_frozen_weights(trained, untrained)
    assert compared > 50 and changed == []
    assert not torch.equal(trained.deep_prompts.text_prompts, untrained.deep_prompts.text_prompts)
    assert yaml.safe_load((out / "final" / "processor_config.json").read_text())["label_input_names"] == [
        "input_ids",
        "attention_mask",
        "prompt_input_ids",
        "prompt_attention_mask",
    ]
