"""LLM label encoders on tiny towers: soft decoding, soft prompts, gradients, freezing, save/load, descriptor parsing."""

from __future__ import annotations

import json
import sys

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from transformers import T5ForConditionalGeneration

from ovmlv.modeling_ovmlv import LabelBank, OvmlvConfig, OvmlvModel
from ovmlv.modeling_ovmlv.configuration_ovmlv import LABEL_ENCODER_NAMES, LLM_LABEL_ENCODERS
from ovmlv.modeling_ovmlv.fixed_llm_prompts import parse_descriptors
from ovmlv.modeling_ovmlv.label_encoder_registry import LABEL_ENCODERS
from ovmlv.modeling_ovmlv.llm_label_encoder import LlmLabelEncoder, LlmPromptedLabelEncoder
from ovmlv.modeling_ovmlv.soft_decoding import greedy_soft_decode
from tests.numerics import assert_same_outputs, assert_same_state

LABELS = ["dog", "surfing on the beach", "red car"]


pytestmark = pytest.mark.usefixtures("one_thread")


def build(towers, **overrides) -> OvmlvModel:
    return OvmlvModel.from_towers(clip=towers.clip, llm=towers.llm, temporal_layers=0, **overrides)


@pytest.fixture(scope="module")
def model(towers):
    return build(towers).eval()


@pytest.fixture(scope="module")
def inputs(processor):
    return processor(text=LABELS)


def test_the_config_names_every_registered_label_encoder_and_those_with_an_llm():
    """The configuration validates against plain names (it imports no encoder): they must be the registry's."""
    assert tuple(LABEL_ENCODERS) == LABEL_ENCODER_NAMES
    with_llm = tuple(name for name, kind in LABEL_ENCODERS.items() if issubclass(kind.encoder, LlmLabelEncoder))
    assert with_llm == LLM_LABEL_ENCODERS


def test_default_label_encoder_is_llm_prompted_and_needs_an_llm(model, towers):
    assert isinstance(model.label_encoder, LlmPromptedLabelEncoder)
    with pytest.raises(ValueError, match="needs an LLM"):
        OvmlvModel.from_towers(clip=towers.clip, temporal_layers=0)


def test_shapes(model, inputs):
    config, encoder = model.config, model.label_encoder
    with torch.no_grad():
        attributes = encoder.soft_attributes(inputs["llm_input_ids"], inputs["llm_attention_mask"])
        prompts = encoder.connector(attributes.flatten(0, 2))
        embeds = model.get_label_features(**inputs)
    d_model, width = config.llm_config.d_model, config.text_config.hidden_size
    assert attributes.shape == (
        3,
        config.label_encoder_config.num_prefixes,
        config.label_encoder_config.num_attributes,
        config.label_encoder_config.attribute_length,
        d_model,
    )
    assert prompts.shape == (
        3 * config.label_encoder_config.num_prefixes * config.label_encoder_config.num_attributes,
        config.label_encoder_config.attribute_length,
        width,
    )
    assert embeds.shape == (3, config.projection_dim)
    assert torch.allclose(embeds.norm(dim=-1), torch.ones(3))


def test_cached_soft_decoding_equals_teacher_forced_pass(model, inputs):
    """docs/design.md §3.3: step-by-step decoding with the cache = one teacher-forced T5 pass over the same tokens."""
    llm, mask = model.label_encoder.llm, inputs["llm_attention_mask"]
    assert not llm.training  # eval semantics: no dropout
    assert mask.sum(1).unique().numel() > 1  # padded rows exercise the cross-attention mask
    with torch.no_grad():
        encoder_states = llm.encoder(input_ids=inputs["llm_input_ids"], attention_mask=mask).last_hidden_state
        states, tokens = greedy_soft_decode(llm, encoder_states, mask, steps=25)
        start = torch.full_like(tokens[:, :1], llm.config.decoder_start_token_id)
        fed = torch.cat([start, tokens[:, :-1]], dim=1)  # what each step read
        forced = llm(encoder_outputs=(encoder_states,), attention_mask=mask, decoder_input_ids=fed)
        forced_states = llm.decoder(
            input_ids=fed, encoder_hidden_states=encoder_states, encoder_attention_mask=mask
        ).last_hidden_state
    assert states.shape == (3, 25, llm.config.d_model) and tokens.shape == (3, 25)
    assert (states - forced_states).abs().max() <= 1e-5
    assert torch.equal(forced.logits.argmax(-1), tokens)


def test_soft_prompt_is_read_like_tokens_and_pooled_at_the_shifted_eos(model, processor):
    """A soft prompt made of real token embeddings must give exactly the features of those tokens written in."""
    tower = model.label_encoder.text_tower
    bare = processor.tokenizer(["dog", "surfing on the beach"], padding=True, return_tensors="pt")
    inserted = processor.tokenizer("red car", add_special_tokens=False, return_tensors="pt")["input_ids"][0]
    ids, mask = bare["input_ids"], bare["attention_mask"]
    written = torch.cat([ids[:, :1], inserted.expand(2, -1), ids[:, 1:]], dim=1)
    written_mask = torch.cat([mask[:, :1], torch.ones(2, len(inserted), dtype=mask.dtype), mask[:, 1:]], dim=1)
    with torch.no_grad():
        soft_prompt = tower.token_embedding(inserted).expand(2, -1, -1)
        prompted = tower(ids, mask, soft_prompt=soft_prompt)
        reference = tower(written, written_mask)
        plain = tower(ids, mask)
    assert (prompted - reference).abs().max() <= 1e-5
    assert not torch.allclose(prompted, plain)


def test_deterministic_and_train_mode_changes_nothing(towers, inputs):
    model = build(towers)
    with torch.no_grad():
        model.eval()
        first, second = model.get_label_features(**inputs), model.get_label_features(**inputs)
        model.train()
        assert not model.label_encoder.llm.training  # the frozen LLM stays in eval mode
        trained = model.get_label_features(**inputs)
    assert torch.equal(first, second)
    assert (first - trained).abs().max() <= 1e-5


def test_repeated_labels_are_encoded_once(model, processor):
    rows = []
    hook = model.label_encoder.llm.encoder.register_forward_hook(
        lambda m, a, kw, out: rows.append(kw["inputs_embeds"].shape[0]), with_kwargs=True
    )
    try:
        with torch.no_grad():
            embeds = model.get_label_features(**processor(text=["dog", "red car", "dog", "dog"]))
    finally:
        hook.remove()
    assert rows == [2 * model.config.label_encoder_config.num_prefixes]
    assert torch.equal(embeds[0], embeds[2]) and torch.equal(embeds[0], embeds[3])
    assert not torch.allclose(embeds[0], embeds[1])


def test_prefixes_start_at_real_token_embeddings(model):
    prefixes = model.label_encoder.prefixes.detach().flatten(0, 1)  # (N*P, d)
    vocab = model.label_encoder.llm.get_input_embeddings().weight
    assert all((vocab == vector).all(dim=1).any() for vector in prefixes)
    assert prefixes.unique(dim=0).shape[0] > 1


def test_soft_prompts_start_at_the_scale_of_clips_word_embeddings(model, inputs):
    """Prompts far louder than the words beside them would make every label's feature the same."""
    encoder = model.label_encoder
    with torch.no_grad():
        attributes = encoder.soft_attributes(inputs["llm_input_ids"], inputs["llm_attention_mask"])
        prompts = encoder.connector(attributes.flatten(0, 2))
    words = encoder.text_tower.text_model.embeddings.token_embedding.weight
    torch.testing.assert_close(prompts.pow(2).mean().sqrt(), words.pow(2).mean().sqrt(), rtol=1e-3, atol=0)


def open_gate(model) -> OvmlvModel:
    """As if trained past the zero-shot start: the learnt part of the label embedding counts."""
    with torch.no_grad():
        model.label_encoder.label_gate.fill_(1.0)
    return model


def backward_label_loss(model, inputs) -> None:
    embeds = model.get_label_features(**inputs)
    target = torch.linspace(-1, 1, embeds.numel()).view_as(embeds)
    (embeds * target).sum().backward()


@pytest.mark.parametrize("adapter", ["prefix", "lora"])
def test_gradients_reach_exactly_the_learnable_parameters(towers, inputs, adapter):
    model = open_gate(build(towers, llm_adapter=adapter)).train()
    if adapter == "lora":
        assert model.label_encoder.prefixes is None and model.label_encoder.num_prompts == 1
        with torch.no_grad():  # peft starts B at 0, which would leave A without gradient
            for name, param in model.named_parameters():
                if "lora_B" in name:
                    param.normal_(std=0.1)
    backward_label_loss(model, inputs)
    names = [name for name, _ in model.named_parameters()]
    learnable = "label_encoder.prefixes" if adapter == "prefix" else ".lora_"
    expected = {name for name in names if learnable in name or name.startswith("label_encoder.connector.")}
    expected.add("label_encoder.label_gate")
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    with_grad = {name for name, p in model.named_parameters() if p.grad is not None}
    nonzero = {name for name, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert expected and trainable == with_grad == nonzero == expected


def test_gradient_checkpointing_gives_the_same_gradients(towers, inputs):
    grads = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = build(towers).train()
        if checkpointing:
            model.activation_checkpointing_enable()
            assert model.label_encoder.gradient_checkpointing
        backward_label_loss(model, inputs)
        grads.append({name: p.grad for name, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        assert torch.allclose(grads[0][name], grads[1][name], atol=1e-6), name


def test_a_new_encoder_gives_the_class_name_embedding_and_every_learnt_part_trains_after_one_step(towers, inputs):
    """The zero-start gate: at first only it has a gradient (everything else sits behind it at 0); after one step
    every learnable weight has one, so no part is dead."""
    model = build(towers).train()
    reference = OvmlvModel.from_towers(towers.clip, label_encoder="class_name", temporal_layers=0)
    with torch.no_grad():
        assert_same_outputs(model.get_label_features(**inputs), reference.get_label_features(**inputs))
    trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.AdamW(trainable.values(), lr=1e-2)
    backward_label_loss(model, inputs)
    assert {name for name, p in trainable.items() if p.grad.abs().sum() > 0} == {"label_encoder.label_gate"}
    optimizer.step()
    optimizer.zero_grad()
    backward_label_loss(model, inputs)
    assert all(p.grad.abs().sum() > 0 for p in trainable.values())


def test_label_interpolation_mixes_toward_the_class_name_embedding(towers, inputs):
    """r = 0 the learnt embedding, r = 1 exactly the class-name one, and normalize((1 - r) e + r e_cls) between."""
    model = open_gate(build(towers)).eval()
    reference = OvmlvModel.from_towers(towers.clip, label_encoder="class_name", temporal_layers=0)
    embeds = {}
    with torch.no_grad():
        class_names = reference.get_label_features(**inputs)
        for ratio in (0.0, 0.3, 1.0):
            model.config.deployment_config.label_interpolation = ratio
            embeds[ratio] = model.get_label_features(**inputs)
    assert F.cosine_similarity(embeds[0.0], class_names).max() < 0.99  # the learnt part counts
    assert_same_outputs(embeds[1.0], class_names)
    assert_same_outputs(embeds[0.3], F.normalize(0.7 * embeds[0.0] + 0.3 * class_names, dim=-1))


def test_the_disagreement_gate_scales_each_labels_gate_by_its_disagreement_with_its_class_name(towers, inputs):
    """label_gate_form="disagreement": normalize(f_cls + g (1 - cos(f_cls, f_prompted)) f_prompted), so a label whose
    learnt embedding agrees with its class name keeps the class name's embedding."""
    model = open_gate(build(towers, label_gate_form="disagreement")).eval()
    encoder = model.label_encoder
    names = ("input_ids", "attention_mask", "llm_input_ids", "llm_attention_mask")
    with torch.no_grad():
        prompted = encoder.prompted_embedding(*(inputs[name] for name in names))
        class_names = F.normalize(encoder.text_tower(inputs["input_ids"], inputs["attention_mask"]), dim=-1)
        disagreement = 1 - (prompted * class_names).sum(-1, keepdim=True)
        assert_same_outputs(
            model.get_label_features(**inputs), F.normalize(class_names + disagreement * prompted, dim=-1)
        )
        assert_same_outputs(encoder.gates(class_names, class_names), torch.zeros(len(LABELS), 1))  # agreement: 0


def test_frozen_weights_unchanged_after_an_optimizer_step(towers, inputs):
    model = open_gate(build(towers)).train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    frozen = {name: p.detach().clone() for name, p in model.named_parameters() if not p.requires_grad}
    learnable = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    assert any(name.startswith("label_encoder.llm.") for name in frozen)
    optimizer = torch.optim.AdamW(trainable, lr=1e-2, weight_decay=0.1)
    backward_label_loss(model, inputs)
    optimizer.step()
    params = dict(model.named_parameters())
    assert all(torch.equal(params[name], before) for name, before in frozen.items())
    assert all(not torch.equal(params[name], before) for name, before in learnable.items())
    assert {id(p) for p in optimizer.state} == {id(p) for p in trainable}


@pytest.mark.parametrize(
    "overrides",
    [
        {"label_encoder": "class_name"},
        {"label_encoder": "templates"},
        {"label_encoder": "llm_prompted", "llm_adapter": "prefix", "connector": "prompt_transformer"},
        {"label_encoder": "llm_prompted", "llm_adapter": "lora", "connector": "prompt_transformer"},
        {"label_encoder": "llm_prompted", "llm_adapter": "prefix", "connector": "mlp"},
        {"label_encoder": "llm_prompted", "llm_adapter": "prefix", "connector": "linear"},
        {"label_encoder": "llm_fixed"},
    ],
    ids=lambda overrides: "-".join(overrides.values()),
)
def test_save_load_round_trip_gives_identical_label_embeddings(towers, processor, tmp_path, overrides):
    model = build(towers, **overrides).eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.requires_grad and name.startswith("label_encoder."):  # as if trained: no init value survives
                param.add_(torch.randn_like(param) * 0.1)
    inputs = processor(text=LABELS)
    with torch.no_grad():
        before = model.get_label_features(**inputs)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)  # llm_fixed reads its tokenizers from the model's own folder
    for code_file in ("llm_label_encoder.py", "fixed_llm_prompts.py", "soft_decoding.py", "prompt_connectors.py"):
        assert (tmp_path / code_file).exists(), code_file
    reloaded = OvmlvModel.from_pretrained(tmp_path).eval()
    assert_same_state(reloaded.state_dict(), model.state_dict())
    with torch.no_grad():
        after = reloaded.get_label_features(**inputs)
    assert_same_outputs(after, before)


def test_label_bank_builds_from_the_llm_encoder(model, processor):
    labels = ["dog", "beach", "surfing", "red circle", "moving left"]
    bank = LabelBank.build(model, processor, labels, batch_size=2, progress=False)
    with torch.no_grad():
        direct = model.get_label_features(**processor(text=labels))
    assert torch.allclose(bank.embeddings, direct, atol=1e-5)  # other batches pad differently


def test_lora_without_peft_says_how_to_get_it(towers, monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(ImportError, match="pip install peft"):
        build(towers, llm_adapter="lora")


@pytest.mark.parametrize(
    "text, truncated, expected",
    [
        ("fur 2. four legs 3. a tail", False, ["fur", "four legs", "a tail"]),
        ("fur. 2. Fur 3. fur  4. a  tail 5. A tail.", False, ["fur", "a  tail"]),
        ("", False, []),
        (" 2. 3. ... ", False, []),
        ("tail tail tail tail tail tail", False, []),
        ("black and white, black and white, black and white", False, []),
        ("very very soft fur 2. a mane", False, ["very very soft fur", "a mane"]),
        ("is 1.5 m tall 2) hooves", False, ["is 1.5 m tall", "hooves"]),
        ("- black stripes\n- a mane\n\n* whiskers", False, ["black stripes", "a mane", "whiskers"]),
        ("fur 2. whiskers 3. sharp cl", True, ["fur", "whiskers"]),
        ("a very long answer that never ends and goes on", True, []),
        ("1. fur 2. tail", False, ["fur", "tail"]),
    ],
)
def test_parse_descriptors_on_messy_llm_output(text, truncated, expected):
    assert parse_descriptors(text, truncated=truncated) == expected


def test_llm_fixed_prompts_clip_with_descriptors_and_falls_back_to_the_class_name(towers, processor, monkeypatch):
    model = build(towers, label_encoder="llm_fixed").eval()
    encoder = model.label_encoder
    monkeypatch.setattr(encoder, "describe", lambda ids, mask: [[], ["fur", "a tail"], ["wheels"]])
    inputs = processor(text=LABELS)
    with torch.no_grad():
        embeds = model.get_label_features(**inputs)
        bare = F.normalize(encoder.text_tower(inputs["input_ids"][:1], inputs["attention_mask"][:1]), dim=-1)
        prompts = ["surfing on the beach, which has fur.", "surfing on the beach, which has a tail."]
        tokens = processor.tokenizer(prompts, padding=True, return_tensors="pt")
        described = F.normalize(F.normalize(encoder.text_tower(**tokens), dim=-1).mean(0), dim=0)
    assert encoder.num_fallbacks == 1
    assert (embeds[0] - bare[0]).abs().max() <= 1e-6
    assert (embeds[1] - described).abs().max() <= 1e-5


def test_llm_fixed_generates_and_parses_real_llm_text(towers, processor):
    model = build(towers, label_encoder="llm_fixed").eval()
    inputs = processor(text=LABELS)
    descriptors = model.label_encoder.describe(inputs["llm_input_ids"], inputs["llm_attention_mask"])
    assert len(descriptors) == 3 and all(isinstance(item, str) and item for items in descriptors for item in items)


def test_an_untied_t5_loads_exactly_as_transformers_loads_it(towers, inputs, tmp_path):
    """Every Flan-T5 has an lm_head of its own (tie_word_embeddings: false); the tiny towers are laid out so. Our T5
    must be the checkpoint's T5: same weights, lm_head not shared, same encoder states and greedy tokens, before
    and after a save/load round trip (a tied build once let the lm_head overwrite the input embeddings)."""
    reference = T5ForConditionalGeneration.from_pretrained(towers.llm).eval()
    assert reference.lm_head.weight is not reference.shared.weight  # the fixture has the real layout
    model = build(towers)
    model.save_pretrained(tmp_path)
    with safe_open(tmp_path / "model.safetensors", "pt") as saved:
        assert "label_encoder.llm.lm_head.weight" in saved.keys()
    assert json.loads((tmp_path / "config.json").read_text())["llm_config"]["tie_word_embeddings"] is False
    reloaded = OvmlvModel.from_pretrained(tmp_path)

    ids, mask = inputs["llm_input_ids"], inputs["llm_attention_mask"]
    with torch.no_grad():
        expected_states = reference.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        expected_tokens = reference.generate(input_ids=ids, attention_mask=mask, max_new_tokens=8, do_sample=False)
    for ours in (model, reloaded):
        llm = ours.label_encoder.llm
        assert llm.lm_head.weight is not llm.shared.weight
        assert llm.encoder.embed_tokens.weight is llm.shared.weight  # input embeddings stay shared
        assert_same_state(llm.state_dict(), reference.state_dict())
        with torch.no_grad():
            states = llm.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            _, tokens = greedy_soft_decode(llm, states, mask, steps=8)
        assert_same_outputs(states, expected_states)
        generated = expected_tokens[:, 1:]  # after the decoder start token; generate stops a row at its EOS
        before_eos = (generated == reference.config.eos_token_id).cumsum(dim=1) == 0
        assert torch.equal(tokens[before_eos], generated[before_eos])


def test_llm_stays_out_of_fp16(towers, inputs):
    """Flan-T5 overflows in fp16: under an fp16 autocast (mixed_precision fp16 on a GPU without bf16) and when the
    model is loaded in fp16, the T5 computes in fp32, so the soft attributes equal the fp32 ones."""
    model = build(towers)
    ids, mask = inputs["llm_input_ids"], inputs["llm_attention_mask"]
    with torch.no_grad():
        expected = model.label_encoder.soft_attributes(ids, mask)
        with torch.autocast("cpu", dtype=torch.float16):
            autocast = model.label_encoder.soft_attributes(ids, mask)
    assert autocast.dtype == torch.float32
    assert_same_outputs(autocast, expected)


def test_loaded_in_fp16_the_llm_keeps_fp32_weights(towers, processor, tmp_path):
    build(towers).save_pretrained(tmp_path)
    half = OvmlvModel.from_pretrained(tmp_path, dtype=torch.float16)
    assert {p.dtype for p in half.label_encoder.llm.parameters()} == {torch.float32}
    assert half.label_encoder.text_tower.dtype == torch.float16
    with torch.no_grad():
        embeds = half.get_label_features(**processor(text=LABELS))
    assert embeds.dtype == torch.float16 and torch.isfinite(embeds).all()


@pytest.mark.parametrize(
    ("overrides", "learnable"),
    [
        ({"llm_adapter": "none"}, {"label_encoder.connector.", "label_encoder.label_gate"}),
        ({"freeze_prefixes": True}, {"label_encoder.connector.", "label_encoder.label_gate"}),
        ({}, {"label_encoder.connector.", "label_encoder.prefixes", "label_encoder.label_gate"}),
        ({"start_at_zero_shot": False}, {"label_encoder.connector.", "label_encoder.prefixes"}),
    ],
)
def test_prefix_ablations_train_only_what_they_say(towers, inputs, overrides, learnable):
    """Table 4's rows: without prefixes the LLM reads the bare instruction; frozen prefixes stay at their start."""
    model = build(towers, **overrides).train()
    if model.label_encoder.label_gate is not None:
        open_gate(model)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(name.startswith(tuple(learnable)) for name in trainable)
    assert {prefix for prefix in learnable if any(name.startswith(prefix) for name in trainable)} == learnable
    backward_label_loss(model, inputs)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters() if p.requires_grad)
    if overrides.get("llm_adapter") == "none":
        assert model.label_encoder.prefixes is None and model.label_encoder.num_prompts == 1


def test_a_config_saved_before_the_zero_start_gates_loads_as_it_was_trained(towers, tmp_path):
    """Its weights have no gates: with the new default its trained prompts would sit behind a closed one."""
    model = build(towers)
    model.save_pretrained(tmp_path)
    assert OvmlvModel.from_pretrained(tmp_path).config.start_at_zero_shot is True  # saved with the field
    config = json.loads((tmp_path / "config.json").read_text())
    del config["start_at_zero_shot"]
    assert OvmlvConfig.from_dict(config).start_at_zero_shot is False
    assert OvmlvConfig(label_encoder="class_name").start_at_zero_shot is True  # a new config starts at zero-shot
