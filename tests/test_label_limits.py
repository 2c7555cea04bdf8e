"""One rule for label length across label encoders (`modeling_ovmlv/label_limits.py`): a label fits when the text
tower accepts it with the encoder's prompt, is rejected with one message otherwise, and is checked before any work."""

from __future__ import annotations

import pytest
import torch

from ovmlv.modeling_ovmlv import LabelBank, OvmlvModel, ZeroShotVideoClassificationPipeline
from ovmlv.modeling_ovmlv.label_limits import check_label_lengths, label_token_counts

TINY_LLM = {"num_prefixes": 1, "num_attributes": 1, "attribute_length": 2, "prompt_transformer_layers": 1}
ENCODERS = {
    "class_name": {},
    "templates": {},
    "coop": {"context_length": 16},
    "dualcoop": {"context_length": 16},
    "llm_prompted": TINY_LLM,
}
CONTEXT = 77  # the tiny CLIP text tower's positions, as CLIP's


@pytest.fixture(scope="module")
def models(towers) -> dict[str, OvmlvModel]:
    return {
        name: OvmlvModel.from_towers(towers.clip, towers.llm, label_encoder=name, temporal_layers=0, **options).eval()
        for name, options in ENCODERS.items()
    }


def words(count: int) -> str:
    return " ".join(["dog"] * count)  # "dog" is one token of the tiny tokenizer


def longest_label(model: OvmlvModel, processor) -> str:
    """The longest label of repeated words that the encoder's text tower takes."""
    count = 1
    while label_token_counts([words(count + 1)], processor, model.config)[0] <= CONTEXT:
        count += 1
    return words(count)


@pytest.mark.parametrize("encoder", ENCODERS)
def test_the_limit_is_exactly_what_the_text_tower_takes(models, processor, encoder):
    model = models[encoder]
    fits = longest_label(model, processor)
    too_long = fits + " dog"
    prompt = {"llm_prompted": 2, "coop": 16, "dualcoop": 16}.get(encoder, 0)
    if encoder != "templates":  # [BOS] + words + [EOS] + the soft prompt fill the 77 positions
        assert len(fits.split()) == CONTEXT - 2 - prompt
    check_label_lengths([fits], processor, model.config)
    with torch.no_grad():
        model.get_label_features(**processor(text=[fits]))  # the tower takes it
        with pytest.raises(ValueError, match="too long for CLIP's text tower"):  # and not one token more
            model.get_label_features(**processor(text=[too_long]))
    with pytest.raises(ValueError, match=rf"1 label\(s\) in candidate_labels are too long.*{encoder} encoder"):
        check_label_lengths(["dog", too_long], processor, model.config)


def test_a_bank_is_not_built_when_one_label_is_too_long(models, processor, monkeypatch):
    model = models["llm_prompted"]
    monkeypatch.setattr(model, "get_label_features", lambda **_: pytest.fail("encoded before checking"))
    with pytest.raises(ValueError, match="in the labels to encode are too long.*needs 78"):
        LabelBank.build(model, processor, ["dog", words(74)], progress=False)


@pytest.mark.parametrize("encoder", ["class_name", "llm_prompted"])
def test_a_pipeline_call_checks_labels_before_decoding(models, processor, tmp_path, encoder):
    classifier = ZeroShotVideoClassificationPipeline(model=models[encoder], processor=processor)
    with pytest.raises(ValueError, match="too long for CLIP's text tower") as error:
        classifier(str(tmp_path / "not-decoded-yet.mp4"), candidate_labels=["dog", words(80)])
    assert "Cannot decode video" not in str(error.value)
