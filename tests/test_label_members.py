"""A label naming a category is scored as the best of itself and the members its LLM lists
(`label_encoder_config.category_members`): the parsing rule, the slots, and the score."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ovmlv.modeling_ovmlv import OvmlvModel
from ovmlv.modeling_ovmlv import label_bank as label_bank_module
from ovmlv.modeling_ovmlv.label_bank import LabelBank, embed_labels
from ovmlv.modeling_ovmlv.label_members import best_slot_scores, category_members, member_slots
from ovmlv.modeling_ovmlv.llm_label_encoder import interpolate_label_embeddings

TINY = {"num_prefixes": 1, "num_attributes": 1, "attribute_length": 2, "prompt_transformer_layers": 1}
COMPOSITE = "red curved shape 2. red colour 3. warm-coloured 4. curved shape: circle or ring"


@pytest.mark.parametrize(
    ("label", "answer", "members"),
    [
        ("red curved shape", COMPOSITE, ["red circle", "red ring"]),
        (
            "four-sided shape",
            "four-sided shape 2. four-sided shape: square, diamond or bar",
            ["square", "diamond", "bar"],
        ),
        (
            "light-coloured object",
            "light-coloured: orange, yellow or white",
            ["orange object", "yellow object", "white object"],
        ),
        ("red circle", "red circle 2. red colour 3. curved shape", []),  # no definition
        ("cool-coloured object", "pink object 2. curved shape: circle or ring", []),  # defines a word not in the label
        ("string", "ring: hoop or loop", []),  # a word, not part of one
        ("moving up", "moving up 2. travelling: moving up", []),  # one member is no disjunction
        ("curved shape", "", []),
    ],
)
def test_members_come_from_an_answer_item_defining_a_word_of_the_label(label, answer, members) -> None:
    assert category_members(label, answer) == members


def test_slots_hold_the_label_then_its_members_padded_with_the_label() -> None:
    answers = [COMPOSITE, "nothing to expand", "polygon: square, triangle, diamond or star"]
    rows = member_slots(["red curved shape", "blue square", "polygon"], answers, slots=3)
    assert rows == [
        ["red curved shape", "red circle", "red ring"],
        ["blue square"] * 3,
        ["polygon", "square", "triangle"],  # cut to the slots
    ]


def test_a_label_scores_its_best_slot() -> None:
    torch.manual_seed(0)
    video, slots = F.normalize(torch.randn(3, 8), dim=-1), F.normalize(torch.randn(4, 2, 8), dim=-1)
    best = best_slot_scores(video, slots.flatten(1), 8)
    torch.testing.assert_close(best, torch.maximum(video @ slots[:, 0].T, video @ slots[:, 1].T))


def test_interpolation_normalises_each_slot() -> None:
    torch.manual_seed(0)
    learnt, frozen = (F.normalize(torch.randn(3, 2, 8), dim=-1).flatten(1) for _ in range(2))
    mixed = interpolate_label_embeddings(learnt, frozen, 0.5, dim=8).unflatten(-1, (2, 8))
    torch.testing.assert_close(mixed.norm(dim=-1), torch.ones(3, 2))
    torch.testing.assert_close(
        mixed[:, 1], F.normalize(learnt.view(3, 2, 8)[:, 1] + frozen.view(3, 2, 8)[:, 1], dim=-1)
    )


def test_embeddings_are_the_label_and_its_members_and_score_as_their_best(
    towers, processor, one_thread, monkeypatch
) -> None:
    """The tiny random T5 lists nothing, so its answers are given: what is tested is what the slots hold."""
    torch.manual_seed(0)
    model = OvmlvModel.from_towers(
        towers.clip, towers.llm, method="ovmlv", temporal_layers=0, category_members=3, **TINY
    ).eval()
    labels = ["red curved shape", "blue square"]
    monkeypatch.setattr(label_bank_module, "llm_answers", lambda *args, **kwargs: [COMPOSITE, "blue square"])
    slotted = embed_labels(labels, model, processor)
    dim = model.config.projection_dim
    assert slotted.shape == (2, 3 * dim) == (2, model.config.label_embedding_dim)
    with torch.no_grad():  # each text encoded alone, as training encodes labels: D wide
        alone = model.get_label_features(
            **processor(text=["red curved shape", "red circle", "red ring", "blue square"])
        )
    torch.testing.assert_close(slotted.view(2, 3, dim)[0], alone[:3], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(slotted.view(2, 3, dim)[1], alone[3].expand(3, dim), rtol=1e-5, atol=1e-6)

    video = F.normalize(torch.randn(5, dim), dim=-1)
    scale = model.score_head.logit_scale.exp()
    expected = torch.stack([video @ alone[:3].T, video @ alone[[3, 3, 3]].T]).amax(-1).T * scale
    torch.testing.assert_close(model.logits(video, slotted), expected + model.score_head.logit_bias)
    torch.testing.assert_close(
        model.logits(video, alone[[0, 3]]), video @ alone[[0, 3]].T * scale + model.score_head.logit_bias
    )
    with pytest.raises(ValueError, match="wide label embeddings"):
        model.logits(video, slotted[:, : 2 * dim])

    bank = LabelBank(labels, slotted)
    assert bank.embeddings_for(["blue square"]).shape == (1, 3 * dim)


def test_members_need_an_llm_and_a_bounded_slot_count(towers) -> None:
    """Without an LLM to list members the setting is ignored, as every LLM-only setting is (one recipe trains
    several methods)."""
    class_names = OvmlvModel.from_towers(towers.clip, method="class_name", temporal_layers=0, category_members=4)
    assert class_names.config.label_embedding_dim == class_names.config.projection_dim
    with pytest.raises(ValueError, match="category_members must be a whole number from 0"):
        OvmlvModel.from_towers(towers.clip, towers.llm, method="ovmlv", temporal_layers=0, category_members=33)
