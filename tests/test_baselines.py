"""The paper's baselines behind the one model API: method presets, CoOp, DualCoOp, ViFi-CLIP (tiny towers)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModel, CLIPModel, pipeline

from ovmlv.modeling_ovmlv import METHOD_PRESETS, LabelBank, OvmlvConfig, OvmlvModel
from ovmlv.training.config import load_config
from ovmlv.training.optimization import parameter_groups
from tests.fresh_process import run_without_ovmlv
from tests.numerics import assert_same_outputs, assert_same_state
from tests.test_pipeline import FRESH_PROCESS_SCRIPT

LABELS = ["dog", "surfing", "red car"]
TARGETS = torch.tensor([[1, 0, 0], [0, 1, 1]])
TRAINED = ("coop", "dualcoop", "vifi_clip", "vilt_clip")


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def inputs(processor):
    return processor(text=LABELS)


def build(towers, method: str, **overrides) -> OvmlvModel:
    return OvmlvModel.from_towers(clip=towers.clip, method=method, **overrides)


def expected_trainable(model: OvmlvModel, method: str) -> set[str]:
    names = [name for name, _ in model.named_parameters()]
    if method == "coop":
        return {"label_encoder.context"}
    if method == "dualcoop":
        return {"label_encoder.positive_context", "label_encoder.negative_context"}
    if method == "vilt_clip":  # the prompts of both towers and the two maps between them
        return {name for name in names if name.startswith("deep_prompts.")}
    towers = ("label_encoder.text_tower.", "video_encoder.vision_tower.")  # ViFi-CLIP: every weight of both
    return {name for name in names if name.startswith(towers)}


def perturb_trainable(model: OvmlvModel) -> None:
    """As if trained: no init value survives."""
    with torch.no_grad():
        for param in model.parameters():
            if param.requires_grad:
                param.add_(torch.randn_like(param) * 0.05)


def test_presets_resolve_record_their_name_and_refuse_contradictions():
    for method, preset in METHOD_PRESETS.items():
        config = OvmlvConfig.from_method(method, llm_config={})
        assert config.method == method
        assert {field: config.field_value(field) for field in preset} == preset
    assert (
        OvmlvConfig.from_method("ovmlv", llm_config={}, temporal_layers=2).temporal_config.temporal_layers == 2
    )  # fields win
    assert OvmlvConfig.from_method("vifi_clip", label_encoder="templates").label_encoder == "templates"
    assert OvmlvConfig.from_method("dualcoop", projection_dim=8).label_embedding_dim == 16
    with pytest.raises(ValueError, match="label_encoder"):
        OvmlvConfig.from_method("coop", label_encoder="class_name")
    with pytest.raises(ValueError, match="method='nope'"):
        OvmlvConfig.from_method("nope")
    # The training YAML's `model` section takes the name like any other OvmlvConfig field.
    assert load_config(overrides=["--model.method", "coop", "--model.context_length", "4"]).model == {
        "method": "coop",
        "context_length": 4,
    }
    with pytest.raises(ValueError, match="model.method"):
        load_config(overrides=["--model.method", "cop"])


@pytest.mark.parametrize("method", TRAINED)
def test_trains_exactly_its_parameters_and_a_few_steps_lower_the_loss(towers, inputs, method):
    model = build(towers, method).train()
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == expected_trainable(model, method)
    groups = {group["name"]: group for group in parameter_groups(model, weight_decay=0.1, clip_weight_decay=0.0)}
    # CLIP-initialised weights (ViFi-CLIP's towers) get no weight decay; the contexts are new layers.
    assert set(groups) == ({"clip_initialised"} if method == "vifi_clip" else {"new_layers"})
    assert groups.get("clip_initialised", {"weight_decay": 0.0})["weight_decay"] == 0.0

    frozen = {name: p.detach().clone() for name, p in model.named_parameters() if not p.requires_grad}
    optimizer = torch.optim.AdamW(list(groups.values()), lr=3e-5 if method == "vifi_clip" else 3e-4)
    video = torch.randn(2, 2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    losses = []
    for step in range(6):
        loss = model(pixel_values_videos=video, labels=TARGETS, **inputs).loss
        optimizer.zero_grad()
        loss.backward()
        if step == 0:
            nonzero = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
            assert nonzero == trainable
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0], losses
    params = dict(model.named_parameters())
    assert all(torch.equal(params[name], before) for name, before in frozen.items())


def test_coop_context_from_a_phrase_reads_like_the_phrase_tokens(towers, processor, inputs):
    clip = CLIPModel.from_pretrained(towers.clip).eval()
    model = build(towers, "coop", context_length=4, context_init="a video of a").eval()
    tokens = processor.tokenizer([f"a video of a {label}" for label in LABELS], padding=True, return_tensors="pt")
    with torch.no_grad():
        ours = model.get_label_features(**inputs)
        expected = F.normalize(clip.get_text_features(**tokens).pooler_output, dim=-1)
    assert (ours - expected).abs().max() <= 1e-5  # [BOS] ctx label [EOS], pooled at the shifted EOS

    longer = build(towers, "coop", context_length=6, context_init="a video of a")
    assert torch.equal(longer.label_encoder.context[2:], model.label_encoder.context)  # the phrase sits last
    assert 0.005 < longer.label_encoder.context[:2].std() < 0.05  # the rest: CoOp's N(0, 0.02)
    with pytest.raises(ValueError, match="context_length=2"):
        build(towers, "coop", context_length=2, context_init="a video of a")


def test_dualcoop_probability_is_the_softmax_over_positive_and_negative(towers, inputs):
    model = build(towers, "dualcoop", context_init="a video of a", negative_context_init="not").eval()
    perturb_trainable(model)
    video = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        out = model(pixel_values_videos=video, **inputs)
    dim = model.config.projection_dim
    positive, negative = out.label_embeds[:, :dim], out.label_embeds[:, dim:]
    assert out.label_embeds.shape == (3, 2 * dim)
    assert torch.allclose(out.label_embeds.view(3, 2, dim).norm(dim=-1), torch.ones(3, 2))  # two unit vectors
    pair = torch.stack([out.video_embeds @ positive.T, out.video_embeds @ negative.T], dim=-1)  # (B, C, 2)
    expected = (pair / model.config.score_temperature).softmax(dim=-1)[..., 0]
    assert torch.allclose(out.logits_per_video.sigmoid(), expected, atol=1e-6)
    with pytest.raises(ValueError, match="32-wide"):
        model.logits(out.video_embeds, positive)  # a D-wide embedding from another model is refused


@pytest.mark.parametrize("method", TRAINED)
def test_save_load_round_trip_gives_identical_label_embeddings_and_logits(towers, inputs, tmp_path, method):
    model = build(towers, method).eval()
    perturb_trainable(model)
    video = torch.randn(1, 2, 3, 32, 32)
    with torch.no_grad():
        before = model(pixel_values_videos=video, **inputs)
    model.save_pretrained(tmp_path)
    for code_file in ("method_presets.py", "prompt_learning.py"):
        assert (tmp_path / code_file).exists(), code_file
    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    assert reloaded.config.method == method
    assert {n for n, p in reloaded.named_parameters() if p.requires_grad} == expected_trainable(reloaded, method)
    with torch.no_grad():
        after = reloaded(pixel_values_videos=video, **inputs)
    assert_same_state(reloaded.state_dict(), model.state_dict())
    assert_same_outputs(after.label_embeds, before.label_embeds)
    assert_same_outputs(after.logits_per_video, before.logits_per_video)


def test_pipeline_classifies_with_dualcoop_here_and_in_a_fresh_process(
    towers, processor, video_path, tmp_path_factory
):
    folder = tmp_path_factory.mktemp("dualcoop")
    model = build(towers, "dualcoop", threshold=0.0).eval()
    perturb_trainable(model)
    model.label_bank = LabelBank.build(model, processor, ["dog", "beach"], progress=False)
    assert model.label_bank.dim == 2 * model.config.projection_dim
    model.save_pretrained(folder)
    processor.save_pretrained(folder)

    classifier = pipeline("zero-shot-video-classification", model=str(folder), trust_remote_code=True)
    labels = ["dog", "surfing"]
    result = classifier(str(video_path), candidate_labels=labels)
    with torch.no_grad():
        expected_logits = model(**processor(videos=str(video_path), text=labels)).logits_per_video[0]
    expected = expected_logits.sigmoid()
    assert {item["label"]: item["score"] for item in result} == pytest.approx(
        dict(zip(labels, expected.tolist(), strict=True)), abs=1e-5
    )
    assert "surfing" in classifier.label_bank  # a new label is encoded once, (positive; negative) pair and all

    fresh = run_without_ovmlv(FRESH_PROCESS_SCRIPT, [str(folder), str(video_path)], tmp_path_factory.mktemp("fresh"))
    assert {item["label"]: item["score"] for item in fresh["pipeline"]} == pytest.approx(
        {item["label"]: item["score"] for item in result}, abs=1e-5
    )
    assert fresh["logits"][0] == pytest.approx(expected_logits.tolist(), abs=1e-5)


ZERO_START_VARIANTS = {  # the paper's model and its ablations (Tables 10-11), each by its method and overrides
    "ovmlv": ("ovmlv", {}),
    "ovmlv_no_temporal": ("ovmlv_no_temporal", {}),
    "no prefixes": ("ovmlv", {"llm_adapter": "none"}),
    "lora": ("ovmlv", {"llm_adapter": "lora"}),
    "linear connector": ("ovmlv", {"connector": "linear"}),
    "mlp connector": ("ovmlv", {"connector": "mlp"}),
    "serial branch": ("ovmlv", {"temporal_mode": "serial"}),
    "disagreement gate": ("ovmlv", {"label_gate_form": "disagreement"}),
    "branch-frame pooling": ("ovmlv", {"temporal_pooling": "branch_frames", "temporal_layers": 2}),
    "coop": ("coop", {}),
    "vifi_clip": ("vifi_clip", {}),  # both towers trained, nothing new: CLIP itself
}


@pytest.fixture(scope="module")
def zero_shot_reference(towers, processor):
    """Frozen CLIP's class-name and "a video of a {label}" embeddings, and its frame mean, of one random video."""
    reference = build(towers, "class_name").eval()
    video = torch.randn(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        names = reference.get_label_features(**processor(text=LABELS))
        template = processor(text=[f"a video of a {label}" for label in LABELS])
        templated = reference.get_label_features(template["input_ids"], template["attention_mask"])
        return video, reference.get_video_features(video), names, templated


@pytest.mark.parametrize("variant", ZERO_START_VARIANTS)
def test_every_trainable_method_starts_exactly_at_its_zero_shot_reference(
    towers, inputs, zero_shot_reference, variant
):
    """Before its first step a method scores as frozen CLIP: frame mean, and class names (CoOp: its init template)."""
    method, overrides = ZERO_START_VARIANTS[variant]
    model = OvmlvModel.from_towers(towers.clip, towers.llm, method=method, **overrides).eval()
    video, video_reference, names, templated = zero_shot_reference
    with torch.no_grad():
        video_embeds = model.get_video_features(video)
        label_embeds = model.get_label_features(**inputs)
    assert F.cosine_similarity(video_embeds, video_reference).min() >= 0.9999
    label_reference = templated if method == "coop" else names
    assert F.cosine_similarity(label_embeds, label_reference).min() >= 0.9999


def test_the_papers_form_does_not_start_at_zero_shot(towers, inputs, zero_shot_reference):
    """The configuration kept for the comparison: its random soft prompts move the label embeddings off CLIP's."""
    model = OvmlvModel.from_towers(towers.clip, towers.llm, method="ovmlv", start_at_zero_shot=False).eval()
    with torch.no_grad():
        label_embeds = model.get_label_features(**inputs)
    assert F.cosine_similarity(label_embeds, zero_shot_reference[2]).min() < 0.99
