"""The temporal branch on tiny towers: shapes, identity at initialisation, order sensitivity, the weight
regulariser, test-time patching, and save/load."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from transformers import AutoModel, CLIPModel

from ovmlv.modeling_ovmlv import OvmlvConfig, OvmlvModel
from ovmlv.modeling_ovmlv.loss import weighted_multilabel_bce
from ovmlv.modeling_ovmlv.temporal import clip_layer_weights
from tests.numerics import assert_same_outputs, assert_same_state


@pytest.fixture(scope="module")
def clip_model(towers):
    return CLIPModel.from_pretrained(towers.clip).eval()


def build(towers, **overrides) -> OvmlvModel:
    return OvmlvModel.from_towers(clip=towers.clip, label_encoder="class_name", **overrides).eval()


def as_if_trained(model: OvmlvModel, seed: int = 1) -> OvmlvModel:
    """Move every branch weight off its initial value, as training would (the zero-init parts included)."""
    generator = torch.Generator().manual_seed(seed)
    branch = model.video_encoder.temporal_branch
    clip_initialised = {
        f"blocks.{i}.{name}" for i, block in enumerate(branch.blocks) for name in block.clip_initialised
    }
    with torch.no_grad():
        for name, parameter in branch.named_parameters():
            scale = 0.05 if name in clip_initialised else 0.5
            parameter.add_(scale * torch.randn(parameter.shape, generator=generator))
    return model


def clip_frame_mean(clip_model: CLIPModel, video: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        frames = clip_model.get_image_features(pixel_values=video.flatten(0, 1)).pooler_output
    return F.normalize(frames.unflatten(0, video.shape[:2]).mean(dim=1), dim=-1)


@pytest.mark.parametrize("mode", ["parallel", "serial"])
def test_shapes_for_any_frame_count_and_clips(towers, mode):
    model = as_if_trained(build(towers, temporal_layers=2, temporal_mode=mode))
    with torch.no_grad():
        for frames in (1, 8, 32):
            embeds = model.get_video_features(torch.randn(2, frames, 3, 32, 32))
            assert embeds.shape == (2, 16)
            assert torch.allclose(embeds.norm(dim=-1), torch.ones(2))
        assert model.get_video_features(torch.randn(2, 4, 8, 3, 32, 32)).shape == (2, 16)  # 4 clips x 8 frames


@pytest.mark.parametrize("mode", ["parallel", "serial"])
def test_with_branch_frame_pooling_a_new_model_is_exactly_clip_frame_mean_pooling(towers, clip_model, mode):
    model = build(towers, temporal_mode=mode, temporal_pooling="branch_frames")
    assert model.config.temporal_config.temporal_layers == 4  # the paper's T is the default
    video = torch.randn(2, 8, 3, 32, 32)
    with torch.no_grad():
        ours = model.get_video_features(video)
        tokens = model.video_encoder.encode_frames(video)
        frames, _, gate = model.video_encoder.temporal_branch(tokens.branch_inputs)
        final = clip_model.vision_model(pixel_values=video.flatten(0, 1)).last_hidden_state
    assert gate.item() == 0.0
    assert (ours - clip_frame_mean(clip_model, video)).abs().max() <= 1e-5
    # Not only through the zero TMP gate: the branch's frame tokens reproduce CLIP's own last layer.
    assert (frames.flatten(0, 1) - final).abs().max() <= 1e-4


@pytest.mark.parametrize("trained", [False, True])
def test_the_papers_embedding_is_tmp_and_the_frozen_frames_and_starts_near_clip(towers, clip_model, trained):
    """Paper §3.2: the mean of the branch's final TMP token and the frozen backbone's final CLS token of every
    frame, each through CLIP's post-layernorm. However the branch is trained, N of the N + 1 pooled tokens are the
    frozen backbone's; a new model's embedding is close to CLIP's frame mean."""
    model = build(towers, start_at_zero_shot=False)
    assert (
        model.config.temporal_config.temporal_pooling == "clip_frames"
        and model.video_encoder.temporal_branch.tmp_gate is None
    )
    if trained:
        as_if_trained(model)
    video = torch.randn(2, 8, 3, 32, 32)
    with torch.no_grad():
        ours = model.get_video_features(video)
        _, tmp, _ = model.video_encoder.temporal_branch(model.video_encoder.encode_frames(video).branch_inputs)
        vision = clip_model.vision_model
        cls = vision(pixel_values=video.flatten(0, 1)).last_hidden_state[:, 0].unflatten(0, (2, 8))  # CLIP's own
        tokens = torch.cat([tmp[:, None], cls], dim=1)  # (B, 1 + N, D)
        expected = F.normalize(clip_model.visual_projection(vision.post_layernorm(tokens).mean(dim=1)), dim=-1)
    assert_same_outputs(ours, expected)
    if not trained:
        assert F.cosine_similarity(ours, clip_frame_mean(clip_model, video)).min() > 0.99


@pytest.mark.parametrize("zero_start", [True, False])
def test_branch_layers_start_as_clip_layers_and_new_parts_random_behind_a_zero_gate_or_zero(towers, zero_start):
    model = build(towers, temporal_layers=3, start_at_zero_shot=zero_start)
    encoder = model.video_encoder
    branch = encoder.temporal_branch
    for block, layer in zip(branch.blocks, encoder.vision_tower.layers[-3:], strict=True):
        for name, value in clip_layer_weights(layer).items():
            assert torch.equal(block.get_parameter(name), value), name
            assert torch.equal(block.clip_reference()[name], value), name
        assert block.temporal_out.weight.any() == zero_start and not block.temporal_out.bias.any()
        assert block.temporal_gate is None  # the paper's pooling needs no gate inside the branch
    assert len(branch.fusions) == 2 and all(fusion.weight.any() == zero_start for fusion in branch.fusions)
    if zero_start:  # one gate holds the start: TMP's share of the embedding
        assert branch.tmp_gate.item() == 0.0 and 0 < branch.fusions[0].weight.std() < 0.05
    else:
        assert branch.tmp_gate is None  # the paper's pooling has no gate
    assert 0 < branch.temporal_position.std() < 0.05  # small, not N(0, 1)
    names = model.clip_initialised_parameter_names()
    assert "video_encoder.temporal_branch.blocks.0.qkv.weight" in names
    assert "video_encoder.temporal_branch.blocks.0.temporal_qkv.weight" not in names


def test_frame_order_matters_only_with_the_branch(towers):
    video = torch.randn(2, 8, 3, 32, 32)
    for layers, changes in ((2, True), (0, False)):
        model = build(towers, temporal_layers=layers)
        if layers:
            as_if_trained(model)
        with torch.no_grad():
            difference = (model.get_video_features(video) - model.get_video_features(video.flip(1))).abs().max()
        assert (difference > 1e-4) if changes else (difference < 1e-6)  # float rounding is ~1e-7


def test_frame_weights_start_as_the_plain_mean_and_carry_order_without_any_other_new_weight(towers):
    """`temporal_frame_weights` (docs/design.md §4.2): at 0 TMP's frame weights give the plain mean (the same model
    as without them), and they are a first-order path from frame order to the embedding: with the temporal
    positions at 0 the branch is blind to order, its frame gates get a gradient at once, and moving them makes
    a video and its reversal differ."""
    video = torch.randn(2, 8, 3, 32, 32)
    plain = build(towers, temporal_layers=2)
    weighted = build(towers, temporal_layers=2, temporal_frame_weights=True)
    missing, unexpected = weighted.load_state_dict(plain.state_dict(), strict=False)
    assert not unexpected and sorted(missing) == [
        f"video_encoder.temporal_branch.blocks.{i}.tmp_frame_gates" for i in range(2)
    ]
    branch = weighted.video_encoder.temporal_branch
    with torch.no_grad():
        for model in (plain, weighted):  # TMP in the embedding, order in no other new weight
            model.video_encoder.temporal_branch.tmp_gate.fill_(1.0)
            model.video_encoder.temporal_branch.temporal_position.zero_()
        assert_same_outputs(weighted.get_video_features(video), plain.get_video_features(video))
        forward, backward = weighted.get_video_features(video), weighted.get_video_features(video.flip(1))
    assert (forward - backward).abs().max() < 1e-6  # float rounding is ~1e-7
    weighted.train()
    loss = weighted(pixel_values_videos=video, label_embeds=torch.randn(3, 16), labels=torch.eye(2, 3)).loss
    loss.backward()
    assert all(block.tmp_frame_gates.grad.abs().sum() > 0 for block in branch.blocks)
    with torch.no_grad():
        branch.blocks[1].tmp_frame_gates.copy_(torch.linspace(-1, 1, 8).expand(branch.blocks[1].num_heads, -1))
        weighted.eval()
        difference = (weighted.get_video_features(video) - weighted.get_video_features(video.flip(1))).abs().max()
    assert difference > 1e-4


def test_positions_at_the_tokens_scale_keep_the_zero_shot_start(towers, clip_model):
    """`temporal_position_std=1` (docs/design.md §4.2) starts the positions at the normalised tokens' scale, not
    CLIP's 0.02; behind TMP's zero gate the new model is still exactly CLIP's frame mean."""
    model = build(towers, temporal_layers=2, temporal_position_std=1.0)
    branch = model.video_encoder.temporal_branch
    assert 0.8 < branch.temporal_position.std() < 1.2 and 0.8 < branch.spatial_position.std() < 1.2
    assert branch.fusions[0].weight.std() < 0.05  # the other new layers keep their scale
    video = torch.randn(2, 8, 3, 32, 32)
    with torch.no_grad():
        ours = model.get_video_features(video)
    assert F.cosine_similarity(ours, clip_frame_mean(clip_model, video)).min() > 0.9999


def test_temporal_positions_are_resampled_for_other_clip_lengths(towers):
    branch = as_if_trained(build(towers, temporal_layers=1)).video_encoder.temporal_branch
    table = branch.temporal_position
    assert branch.temporal_position_for(8) is table
    assert torch.allclose(branch.temporal_position_for(16)[1::2][1:-1], (table[1:-1] * 3 + table[2:]) / 4)
    assert torch.allclose(branch.temporal_position_for(1)[0], table[3:5].mean(0))


def test_backbone_runs_once_without_gradient(towers):
    model = build(towers, temporal_layers=2).train()
    calls = []
    model.video_encoder.vision_tower.layers[0].register_forward_hook(lambda module, args, out: calls.append(out))
    out = model(
        pixel_values_videos=torch.randn(2, 4, 3, 32, 32), label_embeds=torch.randn(3, 16), labels=torch.eye(2, 3)
    )
    assert len(calls) == 1  # the regulariser re-ran only the branch
    assert not calls[0].requires_grad  # frozen backbone: no activations kept for backward
    out.loss.backward()
    assert model.video_encoder.vision_tower.layers[0].mlp.fc1.weight.grad is None


@pytest.mark.parametrize(
    ("mode", "pooling"), [("parallel", "clip_frames"), ("serial", "clip_frames"), ("parallel", "branch_frames")]
)
def test_the_zero_start_gates_open_at_the_first_step_and_every_branch_weight_learns_after_it(towers, mode, pooling):
    """At a zero-shot start only the gates reach the loss (the branch sits behind them); one step later every
    trainable weight of the branch has a gradient: no gate stays shut, no internal part is dead."""
    model = build(towers, temporal_mode=mode, temporal_pooling=pooling, weight_interpolation_loss_weight=0.0).train()
    branch = model.video_encoder.temporal_branch
    trainable = {name: p for name, p in branch.named_parameters() if p.requires_grad}
    optimizer = torch.optim.AdamW(trainable.values(), lr=1e-2)
    video, label_embeds, labels = torch.randn(2, 4, 3, 32, 32), torch.randn(3, 16), torch.eye(2, 3)
    for step in range(2):
        optimizer.zero_grad()
        model(pixel_values_videos=video, label_embeds=label_embeds, labels=labels).loss.backward()
        if step == 0:
            assert branch.tmp_gate.grad.abs().item() > 0
            if pooling == "clip_frames" and mode == "parallel":  # the paper's pooling: everything behind the gate
                assert not branch.spatial_position.grad.any()
            optimizer.step()
    dead = [name for name, p in trainable.items() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead


@pytest.mark.parametrize(
    ("mode", "pooling"), [("parallel", "clip_frames"), ("serial", "clip_frames"), ("parallel", "branch_frames")]
)
def test_the_papers_form_learns_from_the_first_step(towers, mode, pooling):
    """Without the zero-start gate the zero-init projections carry nothing yet, but the branch must reach the loss
    at once: through TMP's 1/(N+1) share (the paper's pooling), or through its own frames beside a zero gate. Its
    CLIP-initialised weights (and the gate) get a gradient at the very first step."""
    model = build(
        towers,
        temporal_mode=mode,
        temporal_pooling=pooling,
        weight_interpolation_loss_weight=0.0,
        start_at_zero_shot=False,
    ).train()
    torch.manual_seed(0)
    out = model(
        pixel_values_videos=torch.randn(2, 4, 3, 32, 32), label_embeds=torch.randn(3, 16), labels=torch.eye(2, 3)
    )
    out.loss.backward()
    branch = model.video_encoder.temporal_branch
    for index, block in enumerate(branch.blocks):
        for name in block.clip_initialised:
            assert block.get_parameter(name).grad.abs().sum() > 0, f"blocks.{index}.{name}"
        assert block.temporal_out.weight.grad.abs().sum() > 0
    if pooling == "branch_frames":
        assert branch.tmp_gate.grad.abs().sum() > 0


@pytest.mark.parametrize(("pooling", "runs"), [("clip_frames", 1), ("branch_frames", 0)])
def test_clips_last_layer_runs_only_when_its_frames_are_pooled(towers, pooling, runs):
    """With branch-frame pooling the branch's own copy of CLIP's last layer makes the frames' final tokens, so
    CLIP's would go unused and is skipped; the paper's pooling reads CLIP's own final frames."""
    model = build(towers, temporal_layers=2, temporal_pooling=pooling)
    calls = []
    model.video_encoder.vision_tower.layers[-1].register_forward_hook(lambda module, args, out: calls.append(out))
    model.get_video_features(torch.randn(1, 4, 3, 32, 32))
    assert len(calls) == runs


def test_regulariser_is_the_loss_under_interpolated_weights_and_reaches_the_finetuned_ones(towers):
    model = as_if_trained(build(towers, temporal_layers=2, weight_interpolation_loss_weight=0.7)).train()
    video, labels = torch.randn(2, 4, 3, 32, 32), torch.tensor([[1, 0, 0], [0, 1, 1]])
    label_embeds = F.normalize(torch.randn(3, 16), dim=-1)

    torch.manual_seed(5)
    with_reg = model(pixel_values_videos=video, label_embeds=label_embeds, labels=labels)
    torch.manual_seed(5)
    alpha = model.config.regulariser_config.weight_interpolation_max * torch.rand(()).item()  # the draw the step made
    model.config.regulariser_config.weight_interpolation_loss_weight = 0.0
    without = model(pixel_values_videos=video, label_embeds=label_embeds, labels=labels)

    # The same loss, computed by a model whose branch was moved to alpha * theta_ft + (1 - alpha) * theta_clip.
    interpolated = copy.deepcopy(model)
    interpolated.patch_temporal_branch(1.0 - alpha)
    reg = weighted_multilabel_bce(
        interpolated(pixel_values_videos=video, label_embeds=label_embeds).logits_per_video, labels, 1.0
    )
    assert torch.allclose(with_reg.loss, without.loss + 0.7 * reg, atol=1e-5)

    # d reg / d theta_ft = alpha * (d loss / d theta) at the interpolated weights.
    name = "video_encoder.temporal_branch.blocks.0.qkv.weight"
    (grad_reg,) = torch.autograd.grad(with_reg.loss - without.loss, model.get_parameter(name))
    (grad_at_interpolated,) = torch.autograd.grad(reg, interpolated.get_parameter(name))
    assert torch.allclose(grad_reg, 0.7 * alpha * grad_at_interpolated, atol=1e-6)
    assert grad_reg.abs().max() > 0


def test_regulariser_is_off_in_eval_mode(towers):
    model = as_if_trained(build(towers, temporal_layers=2))
    video, labels, label_embeds = torch.randn(1, 4, 3, 32, 32), torch.tensor([[1, 0]]), torch.randn(2, 16)
    with torch.no_grad():
        loss = model(pixel_values_videos=video, label_embeds=label_embeds, labels=labels).loss
        logits = model(pixel_values_videos=video, label_embeds=label_embeds).logits_per_video
    assert torch.allclose(loss, weighted_multilabel_bce(logits, labels, 1.0))


def test_patching_at_zero_and_one_gives_finetuned_and_clip_weights_exactly(towers):
    model = as_if_trained(build(towers, temporal_layers=2))
    branch = model.video_encoder.temporal_branch
    finetuned = {name: value.clone() for name, value in branch.state_dict().items()}
    model.patch_temporal_branch(0.0)
    assert all(torch.equal(value, finetuned[name]) for name, value in branch.state_dict().items())

    model.patch_temporal_branch(1.0)
    for block, layer in zip(branch.blocks, model.video_encoder.branch_layers, strict=True):
        for name, value in clip_layer_weights(layer).items():
            assert torch.equal(block.get_parameter(name), value), name
    clip_initialised = {
        f"blocks.{i}.{name}" for i, block in enumerate(branch.blocks) for name in block.clip_initialised
    }
    for name, value in branch.named_parameters():  # the temporal parts have no CLIP value and stay as trained
        if name not in clip_initialised:
            assert torch.equal(value, finetuned[name]), name
    with pytest.raises(ValueError, match="ratio"):
        model.patch_temporal_branch(1.5)


def test_save_load_round_trip_restores_the_clip_reference(towers, tmp_path):
    model = as_if_trained(build(towers, temporal_layers=2))
    model.save_pretrained(tmp_path)
    assert (tmp_path / "temporal.py").exists()
    with safe_open(tmp_path / "model.safetensors", "pt") as saved:
        assert not any("clip_qkv" in key for key in saved.keys())  # CLIP's weights are saved once: the backbone

    reloaded = AutoModel.from_pretrained(tmp_path).eval()
    assert_same_state(reloaded.state_dict(), model.state_dict())
    video = torch.randn(1, 8, 3, 32, 32)
    with torch.no_grad():
        assert_same_outputs(reloaded.get_video_features(video), model.get_video_features(video))
    for block, layer in zip(
        reloaded.video_encoder.temporal_branch.blocks, model.video_encoder.branch_layers, strict=True
    ):
        reference = block.clip_reference()
        assert all(torch.equal(reference[name], value) for name, value in clip_layer_weights(layer).items())

    patched = AutoModel.from_pretrained(tmp_path, temporal_patch_ratio=1.0).eval()
    model.patch_temporal_branch(1.0)
    assert_same_state(patched.state_dict(), model.state_dict())
    with torch.no_grad():
        assert_same_outputs(patched.get_video_features(video), model.get_video_features(video))
    assert (
        patched.config.deployment_config.temporal_patch_ratio == 0.0
    )  # applied once; a re-save stores the patched weights


def test_unfrozen_backbone_saves_the_reference(towers, tmp_path):
    model = build(towers, temporal_layers=1, freeze_vision_backbone=False)
    original = clip_layer_weights(model.video_encoder.branch_layers[0])["qkv.weight"].clone()
    with torch.no_grad():
        model.video_encoder.branch_layers[0].self_attn.q_proj.weight.add_(1.0)  # the backbone was fine-tuned
    model.save_pretrained(tmp_path)
    reloaded = AutoModel.from_pretrained(tmp_path)
    assert torch.equal(reloaded.video_encoder.temporal_branch.blocks[0].clip_reference()["qkv.weight"], original)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"temporal_positions": 0}, "temporal_positions"),
        ({"weight_interpolation_max": 1.5}, "weight_interpolation_max"),
        ({"weight_interpolation_loss_weight": -1.0}, "weight_interpolation_loss_weight"),
        ({"temporal_mode": "sideways"}, "temporal_mode"),
    ],
)
def test_temporal_config_errors_name_the_field(overrides, message):
    with pytest.raises(ValueError, match=message):
        OvmlvConfig(**overrides)


def test_consistency_regulariser_is_the_kl_from_the_finetuned_to_the_interpolated_predictions(towers):
    """Paper §3.2's form: the regulariser "matches predictions" of the fine-tuned and the averaged weights."""
    model = as_if_trained(
        build(towers, temporal_layers=2, weight_interpolation_loss_weight=0.7, weight_interpolation_form="consistency")
    ).train()
    video, labels = torch.randn(2, 4, 3, 32, 32), torch.tensor([[1, 0, 0], [0, 1, 1]])
    label_embeds = F.normalize(torch.randn(3, 16), dim=-1)
    torch.manual_seed(5)
    with_reg = model(pixel_values_videos=video, label_embeds=label_embeds, labels=labels)
    torch.manual_seed(5)
    alpha = model.config.regulariser_config.weight_interpolation_max * torch.rand(()).item()
    model.config.regulariser_config.weight_interpolation_loss_weight = 0.0
    plain = model(pixel_values_videos=video, label_embeds=label_embeds, labels=labels)
    interpolated = copy.deepcopy(model)
    interpolated.patch_temporal_branch(1.0 - alpha)
    p = plain.logits_per_video.sigmoid()
    q = interpolated(pixel_values_videos=video, label_embeds=label_embeds).logits_per_video.sigmoid()
    kl = (p * (p / q).log() + (1 - p) * ((1 - p) / (1 - q)).log()).sum(dim=-1).mean()
    assert kl > 0
    assert torch.allclose(with_reg.loss, plain.loss + 0.7 * kl, atol=1e-5)
    with pytest.raises(ValueError, match="weight_interpolation_form"):
        OvmlvConfig(weight_interpolation_form="agreement")
