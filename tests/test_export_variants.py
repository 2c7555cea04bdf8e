"""The two light exports: adapter-style (trained weights only, towers fetched by Hub id and commit) and
fixed-vocabulary (no label encoder, the label bank only), each exported through `ovmlv export --variant`, loaded
bit-exactly here, and used in a fresh process that cannot import this package."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import huggingface_hub
import pytest
import torch
from safetensors.torch import load_file

from ovmlv import arguments, cli
from ovmlv.modeling_ovmlv import LabelBank, OvmlvModel
from ovmlv.modeling_ovmlv.fixed_vocabulary import NO_LABEL_ENCODER, OvmlvFixedVocabularyModel
from ovmlv.modeling_ovmlv.saved_variants import TOWER_CHECKPOINTS_NAME
from ovmlv.organism.tiny_siglip import build_tiny_siglip
from ovmlv.organism.tiny_towers import build_tiny_towers
from ovmlv.processing import OvmlvProcessor
from tests.fresh_process import run_without_ovmlv
from tests.hub_model_folder import VOCABULARY
from tests.numerics import assert_same_outputs, assert_same_state
from tests.test_export import FRESH_PROCESS_SCRIPT as CARD_SNIPPETS_SCRIPT
from tests.test_training import TINY_MODEL

CLIP_ID, LLM_ID, OTHER_CLIP_ID = "test-org/tiny-clip", "test-org/tiny-t5", "test-org/other-clip"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
TOWER_PREFIXES = ("label_encoder.text_tower.", "label_encoder.llm.", "video_encoder.vision_tower.")
# The exported model has a direction head (`direction_head.py`): "surfing" and "diving" reverse each other here.
REVERSAL = [["surfing", "diving"]]


def publish_to_hub_cache(cache: Path, repo_id: str, folder: Path) -> None:
    """`folder` laid out as huggingface_hub caches a model repo downloaded at COMMIT (main points there)."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)


@pytest.fixture(scope="module", params=["clip", "siglip"])
def kind_towers(request, towers, siglip_towers):
    """Both exports on either kind of vision-language towers (CLIP_ID then names the SigLIP)."""
    return towers if request.param == "clip" else siglip_towers("siglip")


def other_towers_of_a_kind(kind_towers, folder: Path) -> Path:
    """Another tiny checkpoint of the same kind as `kind_towers.clip`, with other weights."""
    if json.loads((kind_towers.clip / "config.json").read_text())["model_type"] == "clip":
        return build_tiny_towers(folder, seed=1).clip
    return build_tiny_siglip(folder, "siglip", seed=1)


@pytest.fixture(scope="module")
def processor(kind_towers):
    return OvmlvProcessor.from_towers(kind_towers.clip, kind_towers.llm, time_reversal_phrases=REVERSAL)


@pytest.fixture(scope="module")
def hub_cache(kind_towers, tmp_path_factory) -> Path:
    """An offline Hub cache holding the tiny towers as CLIP_ID / LLM_ID, and another CLIP as OTHER_CLIP_ID."""
    cache = tmp_path_factory.mktemp("hub-cache")
    publish_to_hub_cache(cache, CLIP_ID, kind_towers.clip)
    publish_to_hub_cache(cache, LLM_ID, kind_towers.llm)
    publish_to_hub_cache(cache, OTHER_CLIP_ID, other_towers_of_a_kind(kind_towers, tmp_path_factory.mktemp("other")))
    return cache


@pytest.fixture
def offline_hub(hub_cache, monkeypatch) -> Path:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub_cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache))  # for the fresh processes
    return hub_cache


@pytest.fixture(scope="module")
def trained_folder(kind_towers, processor, tmp_path_factory) -> Path:
    """The paper's model at toy sizes (LLM prompts, a temporal branch, a direction head), its trainable weights moved
    as training would move them, with a label bank and a threshold."""
    model = OvmlvModel.from_towers(
        kind_towers.clip,
        kind_towers.llm,
        **TINY_MODEL,
        threshold=0.0,
        direction_dims=4,
        time_reversal_phrases=REVERSAL,
    )
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(0.01 * torch.randn_like(parameter))
    model.label_bank = LabelBank.build(model, processor, VOCABULARY, progress=False)
    folder = tmp_path_factory.mktemp("trained")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def export(trained: Path, out: Path, *options: str) -> Path:
    assert cli.main(["export", "--model", str(trained), "--out", str(out), *options]) == arguments.EXIT_OK
    return out


def test_adapter_holds_trained_weights_and_names_the_towers_by_commit(trained_folder, offline_hub, tmp_path):
    out = export(trained_folder, tmp_path / "adapter", "--variant", "adapter", "--clip", CLIP_ID, "--llm", LLM_ID)
    assert json.loads((out / TOWER_CHECKPOINTS_NAME).read_text()) == {
        "clip": {"id": CLIP_ID, "revision": COMMIT},  # "main" pinned to the commit it points at
        "llm": {"id": LLM_ID, "revision": COMMIT},
    }
    shipped, trained = load_file(out / "model.safetensors"), load_file(trained_folder / "model.safetensors")
    assert not [key for key in shipped if key.startswith(TOWER_PREFIXES)]
    assert {"label_encoder.prefixes", "score_head.logit_scale"} <= shipped.keys()
    assert any(key.startswith("video_encoder.temporal_branch.") for key in shipped)  # CLIP copies, trained
    shipped_bytes, trained_bytes = (sum(t.numel() * t.element_size() for t in w.values()) for w in (shipped, trained))
    assert shipped_bytes < trained_bytes / 3

    loaded, original = OvmlvModel.from_pretrained(out), OvmlvModel.from_pretrained(trained_folder)
    assert_same_state(loaded.state_dict(), original.state_dict())  # towers from the cache + trained weights
    assert loaded.label_bank.labels == VOCABULARY and "Export | adapter-style" in (out / "README.md").read_text()


def test_adapter_export_refuses_towers_the_model_was_not_built_on(trained_folder, offline_hub, tmp_path, capsys):
    argv = ["--variant", "adapter", "--clip", OTHER_CLIP_ID, "--llm", LLM_ID]
    assert (
        cli.main(["export", "--model", str(trained_folder), "--out", str(tmp_path / "a"), *argv])
        == arguments.EXIT_ERROR
    )
    assert "are not the checkpoints this model was built on" in capsys.readouterr().err
    assert cli.main(["export", "--model", str(trained_folder), "--out", str(tmp_path / "b"), "--variant", "adapter"])
    assert "pass --clip HUB_ID" in capsys.readouterr().err  # the tiny towers came from a local folder


def test_fixed_vocabulary_drops_the_label_encoder_and_serves_the_bank(trained_folder, tmp_path, video_path):
    out = export(trained_folder, tmp_path / "fixed", "--variant", "fixed-vocabulary")
    shipped = load_file(out / "model.safetensors")
    assert not [key for key in shipped if key.startswith("label_encoder.")]
    assert not (out / "llm_tokenizer").exists()
    assert json.loads((out / "config.json").read_text())["auto_map"]["AutoModel"] == (
        "fixed_vocabulary.OvmlvFixedVocabularyModel"
    )
    fixed, full = OvmlvModel.from_pretrained(out), OvmlvModel.from_pretrained(trained_folder)
    assert isinstance(fixed, OvmlvFixedVocabularyModel) and fixed.label_bank.labels == VOCABULARY
    full_state = full.state_dict()
    assert_same_state(fixed.state_dict(), {k: v for k, v in full_state.items() if not k.startswith("label_encoder.")})
    pixels = OvmlvProcessor.from_pretrained(out)(videos=str(video_path))["pixel_values_videos"]
    with torch.no_grad():
        assert_same_outputs(
            fixed.logits(fixed.get_video_features(pixels), fixed.label_bank.embeddings),
            full.logits(full.get_video_features(pixels), full.label_bank.embeddings),
        )
    with pytest.raises(ValueError, match="fixed vocabulary"):
        fixed.get_label_features(input_ids=torch.ones(1, 3, dtype=torch.long))


def test_a_fixed_vocabulary_folder_refuses_the_bank_of_another_models_export(trained_folder, tmp_path):
    """Each export keeps the fingerprint of the label encoder that made its bank: a bank copied from the export of
    another model is reported and not used; one from another export of the same model is."""
    other = OvmlvModel.from_pretrained(trained_folder)
    with torch.no_grad():
        next(p for n, p in other.named_parameters() if n.startswith("label_encoder.") and p.requires_grad).add_(1.0)
    other.save_pretrained(tmp_path / "other")
    OvmlvProcessor.from_pretrained(trained_folder).save_pretrained(tmp_path / "other")
    ours = export(trained_folder, tmp_path / "ours", "--variant", "fixed-vocabulary")
    again = export(trained_folder, tmp_path / "again", "--variant", "fixed-vocabulary")
    theirs = export(tmp_path / "other", tmp_path / "theirs", "--variant", "fixed-vocabulary")
    assert OvmlvModel.from_pretrained(ours).label_bank is not None
    for name in ("label_bank.json", "label_bank.safetensors"):
        shutil.copy(again / name, ours / name)
    assert OvmlvModel.from_pretrained(ours).label_bank.labels == VOCABULARY
    for name in ("label_bank.json", "label_bank.safetensors"):
        shutil.copy(theirs / name, ours / name)
    assert OvmlvModel.from_pretrained(ours).label_bank is None


FRESH_ADAPTER_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch
    from transformers import AutoModel, AutoProcessor, pipeline

    folder, video = sys.argv[1:]
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    classifier = pipeline("zero-shot-video-classification", model=folder, trust_remote_code=True)
    with torch.no_grad():
        logits = model(**processor(videos=video, text=["dog", "cat"])).logits_per_video
    print(json.dumps({"module": type(model).__module__, "logits": logits.tolist(), "pipeline": classifier(video)}))
    """
)


def test_both_variants_load_with_remote_code_in_a_fresh_process(trained_folder, offline_hub, tmp_path, video_path):
    """Adapter: AutoModel fetches the towers from the (offline) Hub cache. Fixed vocabulary: the card's snippets,
    and a label outside the bank refused with a message that says why."""
    adapter = export(trained_folder, tmp_path / "adapter", "--variant", "adapter", "--clip", CLIP_ID, "--llm", LLM_ID)
    fresh = run_without_ovmlv(FRESH_ADAPTER_SCRIPT, [str(adapter), str(video_path)], tmp_path)
    assert fresh["module"].startswith("transformers_modules.")
    model, processor = OvmlvModel.from_pretrained(trained_folder).eval(), OvmlvProcessor.from_pretrained(adapter)
    with torch.no_grad():
        expected = model(**processor(videos=str(video_path), text=["dog", "cat"])).logits_per_video
    assert_same_outputs(torch.tensor(fresh["logits"]), expected)
    assert sorted(item["label"] for item in fresh["pipeline"]) == sorted(VOCABULARY)  # the bank, threshold 0

    fixed = export(trained_folder, tmp_path / "fixed", "--variant", "fixed-vocabulary", "--repo-id", "org/fixed")
    script = CARD_SNIPPETS_SCRIPT.replace(
        "print(json.dumps({",
        "try:\n    namespace['classifier'](video, candidate_labels=['not in the bank'])\n"
        "except ValueError as err:\n    refused = str(err)\nprint(json.dumps({'refused': refused, ",
    )
    (tmp_path / "second").mkdir()  # a fresh modules cache: the fixed folder's code, not the adapter's
    card = run_without_ovmlv(
        script, [str(fixed / "README.md"), str(fixed), str(video_path), "org/fixed"], tmp_path / "second"
    )
    assert card["module"].startswith("transformers_modules.") and NO_LABEL_ENCODER in card["refused"]
    with torch.no_grad():
        video_embeds = model.get_video_features(processor(videos=str(video_path))["pixel_values_videos"])
        probabilities = model.logits(video_embeds, model.label_bank.embeddings).sigmoid()[0]
    expected = dict(zip(VOCABULARY, probabilities.tolist(), strict=True))
    assert card["probabilities"] == pytest.approx({label: expected[label] for label in VOCABULARY[:3]}, abs=1e-5)
    assert [item["label"] for item in card["best"]] == sorted(expected, key=expected.get, reverse=True)
