"""The direction head (`modeling_ovmlv/direction_head.py`): a score term of its own for labels that name a direction,
0 for every other label, 0 for every label at the start, and odd in the order of the frames."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from ovmlv.modeling_ovmlv import OvmlvConfig, OvmlvModel
from ovmlv.modeling_ovmlv import label_bank as label_bank_module
from ovmlv.modeling_ovmlv.direction_head import direction_log_odds
from ovmlv.modeling_ovmlv.label_bank import embed_labels
from ovmlv.modeling_ovmlv.llm_label_encoder import interpolate_label_embeddings
from ovmlv.processing import OvmlvProcessor
from ovmlv.processing.time_reversal import TimeReversal, check_reversal_pairs
from ovmlv.training.label_interpolation import InterpolationSet, interpolation_curve

PAIRS = [["moving left", "moving right"], ["growing", "shrinking"], ["drifting leftward", "drifting rightward"]]
TINY = {"num_prefixes": 1, "num_attributes": 1, "attribute_length": 2, "prompt_transformer_layers": 1}
LABELS = ["red circle moving left", "blue square", "red circle moving right", "growing ring"]


@pytest.fixture(scope="module")
def model(towers) -> OvmlvModel:
    torch.manual_seed(0)
    return OvmlvModel.from_towers(
        towers.clip,
        towers.llm,
        method="ovmlv",
        temporal_layers=1,
        direction_dims=4,
        time_reversal_phrases=PAIRS,
        **TINY,
    ).eval()


@pytest.fixture(scope="module")
def reversing_processor(towers, model) -> OvmlvProcessor:
    processor = OvmlvProcessor.for_model(model, towers.clip, towers.llm)
    assert processor.time_reversal_phrases == [list(pair) for pair in PAIRS]
    assert list(processor.label_input_names) == list(model.label_input_names)
    return processor


def frames(seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(2, 4, 3, 32, 32, generator=generator)


def test_reversal_swaps_whole_phrases_both_ways_in_one_pass() -> None:
    reverse = TimeReversal(PAIRS)
    assert reverse("red circle moving left") == "red circle moving right"
    assert reverse("moving right and growing") == "moving left and shrinking"
    assert reverse("blue disc drifting leftward") == "blue disc drifting rightward"  # the longer phrase wins
    assert reverse("outgrowing square") == "outgrowing square"  # whole words only
    assert reverse("Red circle Moving Left") == "Red circle moving right"  # any case; the partner as listed
    assert TimeReversal([])("moving left") == "moving left"


@pytest.mark.parametrize(
    ("pairs", "message"),
    [
        ([["moving left"]], "pair of phrases"),
        ([["a", "a"]], "repeats"),
        ([["a", "b"], ["b", "c"]], "repeats"),
        ([["a", "b"], ["B", "c"]], "repeats"),
    ],
)
def test_bad_reversal_pairs_are_refused_naming_the_setting(pairs, message) -> None:
    with pytest.raises(ValueError, match=message):
        check_reversal_pairs(pairs, "time_reversal_phrases")


def test_processor_pads_labels_and_reversals_alike_and_saves_its_phrases(reversing_processor, tmp_path) -> None:
    inputs = reversing_processor.label_inputs(LABELS)
    assert inputs["reversed_input_ids"].shape == inputs["input_ids"].shape
    differs = (inputs["input_ids"] != inputs["reversed_input_ids"]).any(dim=1)
    assert differs.tolist() == [True, False, True, True]
    torch.testing.assert_close(inputs["reversed_input_ids"][0], inputs["input_ids"][2], rtol=0, atol=0)
    reversing_processor.save_pretrained(tmp_path)
    assert OvmlvProcessor.from_pretrained(tmp_path).time_reversal_phrases == PAIRS


def test_a_new_head_scores_exactly_as_without_it(model, reversing_processor) -> None:
    dim, codes = model.config.projection_dim, model.config.direction_dims
    with torch.no_grad():
        output = model(pixel_values_videos=frames(), **reversing_processor(text=LABELS))
    assert output.video_embeds.shape == (2, model.config.video_embedding_dim) == (2, dim + codes)
    assert output.label_embeds.shape == (4, model.config.label_embedding_dim) == (4, dim + codes)
    assert not output.video_embeds[:, dim:].any()  # the readout starts at 0
    assert not output.label_embeds[1, dim:].any()  # "blue square" has no reversal
    config = copy.deepcopy(model.config)
    config.temporal_config.direction_dims = 0
    without = OvmlvModel(config).eval()
    assert set(without.load_state_dict(model.state_dict(), strict=False).unexpected_keys) == {
        "video_direction.readout",
        "label_direction.projection",
    }
    with torch.no_grad():
        reference = without(pixel_values_videos=frames(), **reversing_processor(text=LABELS))
    assert reference.video_embeds.shape == (2, dim)
    torch.testing.assert_close(output.logits_per_video, reference.logits_per_video, rtol=0, atol=1e-6)


def test_codes_are_odd_in_frame_order_and_zero_without_a_reversal(model, reversing_processor) -> None:
    trained = OvmlvModel(model.config).eval()
    trained.load_state_dict(model.state_dict())
    with torch.no_grad():
        trained.video_direction.readout.normal_()
        inputs = reversing_processor(text=LABELS)
        forward = trained(pixel_values_videos=frames(), **inputs)
        backward = trained(pixel_values_videos=frames().flip(1), **inputs)
    dim = model.config.projection_dim
    label_codes = forward.label_embeds[:, dim:]
    torch.testing.assert_close(label_codes[0], -label_codes[2])  # "moving left" is "moving right" reversed
    assert not label_codes[1].any()
    torch.testing.assert_close(backward.video_embeds[:, dim:], -forward.video_embeds[:, dim:], rtol=1e-4, atol=1e-5)
    direction = forward.logits_per_video - backward.logits_per_video
    assert direction[:, [0, 2, 3]].abs().min() > 0
    torch.testing.assert_close(direction[:, 1], torch.zeros(2), rtol=0, atol=1e-5)  # content alone


def test_the_direction_term_can_rule_a_label_out_but_at_most_double_its_odds() -> None:
    agreement = torch.tensor([0.0, 0.5, -0.5, 4.0, -4.0, 40.0, -40.0], dtype=torch.float64, requires_grad=True)
    term = direction_log_odds(agreement)
    assert term[0] == 0  # exactly: a new head, and labels without a reversal, leave the logit as it was
    torch.testing.assert_close(term, torch.log(2 * torch.sigmoid(agreement)), rtol=1e-6, atol=1e-9)
    assert term.max() <= math.log(2) and term[-1] < -39
    torch.testing.assert_close(term - direction_log_odds(-agreement), agreement)  # a label's margin over its reversal
    term.sum().backward()
    assert agreement.grad[0] == 0.5  # the readout learns from the start


def test_the_readout_gets_a_gradient_at_the_start(model, reversing_processor) -> None:
    trained = OvmlvModel(model.config).train()
    trained.load_state_dict(model.state_dict())
    output = trained(pixel_values_videos=frames(), labels=torch.eye(2, 4), **reversing_processor(text=LABELS))
    output.loss.backward()
    assert trained.video_direction.readout.grad.abs().sum() > 0


def test_labels_without_their_reversals_are_refused(model, processor) -> None:
    inputs = processor(text=LABELS)
    del inputs["reversed_input_ids"]
    with pytest.raises(ValueError, match="reversed_input_ids"):
        model.get_label_features(**inputs)


def test_video_embeddings_of_another_width_are_refused(model) -> None:
    with pytest.raises(ValueError, match="wide video embeddings"):
        model.logits(torch.randn(2, model.config.projection_dim), torch.randn(3, model.config.label_embedding_dim))


def test_no_head_without_a_branch_and_a_bounded_width(towers) -> None:
    frame_mean = OvmlvModel.from_towers(towers.clip, method="class_name", temporal_layers=0, direction_dims=4)
    assert (
        frame_mean.video_direction is None
        and frame_mean.config.video_embedding_dim == frame_mean.config.projection_dim
    )
    with pytest.raises(ValueError, match="direction_dims must be a whole number from 0"):
        OvmlvConfig(direction_dims=-1)


def test_member_slots_then_the_labels_own_code(towers, reversing_processor, monkeypatch) -> None:
    torch.manual_seed(0)
    model = OvmlvModel.from_towers(
        towers.clip, towers.llm, method="ovmlv", temporal_layers=1, direction_dims=4,
        time_reversal_phrases=PAIRS, category_members=2, **TINY,
    ).eval()  # fmt: skip
    answers = ["curved shape moving left 2. curved shape: circle or ring", "blue square"]
    monkeypatch.setattr(label_bank_module, "llm_answers", lambda *args, **kwargs: answers)
    labels = ["curved shape moving left", "blue square"]
    slotted = embed_labels(labels, model, reversing_processor)
    dim = model.config.projection_dim
    assert slotted.shape == (2, 2 * dim + 4) == (2, model.config.label_embedding_dim)
    with torch.no_grad():
        alone = model.get_label_features(**reversing_processor(text=labels))
    torch.testing.assert_close(slotted[:, -4:], alone[:, dim:], rtol=1e-5, atol=1e-6)
    mixed = interpolate_label_embeddings(slotted, torch.randn_like(slotted), 0.5, dim, codes=4)
    torch.testing.assert_close(mixed[:, -4:], slotted[:, -4:], rtol=0, atol=0)


def test_interpolation_curve_asks_the_llm_once_per_set(towers, reversing_processor, monkeypatch) -> None:
    model = OvmlvModel.from_towers(
        towers.clip, towers.llm, method="ovmlv", temporal_layers=0, category_members=2, **TINY
    ).eval()
    calls = []
    monkeypatch.setattr(
        label_bank_module, "llm_answers", lambda model, processor, labels, *args: calls.append(labels) or list(labels)
    )
    videos = torch.nn.functional.normalize(torch.randn(3, model.config.projection_dim), dim=-1)
    item = InterpolationSet("val", ["red", "blue"], torch.eye(3, 2).bool().numpy(), videos, calibrate=True)
    interpolation_curve(model, reversing_processor, [item], batch_size=8)
    assert calls == [["red", "blue"]]
