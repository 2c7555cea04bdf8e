"""The model organism: its data (canonical captions, the T5 corpus), deterministic tokenizers in the real checkpoints'
layouts, the command end to end at toy size (seeded: the same towers twice), and the committed towers, which load
through the package's front doors and know what docs/organism.md says they know."""

import json
import re
from collections import Counter
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from transformers import AutoTokenizer, CLIPModel, T5ForConditionalGeneration

from ovmlv.cli import main
from ovmlv.modeling_ovmlv import OvmlvModel
from ovmlv.organism.pretraining.corpus import corpus
from ovmlv.organism.pretraining.stills import caption, caption_targets, render_stills, sample_batch, sample_still
from ovmlv.organism.pretraining.tokenizer_training import train_clip_tokenizer, train_t5_tokenizer
from ovmlv.organism.runs import ORGANISM_TOWERS
from ovmlv.organism.synonyms import SYNONYMS
from ovmlv.organism.world import MOTIONS, SyntheticConfig, render_video
from ovmlv.organism.world_labels import CATEGORIES, HELDOUT_CATEGORIES
from ovmlv.processing import OvmlvProcessor
from tests.process_state import reset_accelerate_state, torch_threads

WORLD = SyntheticConfig()
SYNONYM_WORDS = {word for synonyms in SYNONYMS.values() for synonym in synonyms for word in re.split(r"[ -]", synonym)}


@pytest.fixture(autouse=True, scope="module")
def _leave_no_state():
    """Measuring evaluates through an Accelerator and sets torch's thread count; undo both afterwards."""
    with torch_threads(1):
        yield
    reset_accelerate_state()


def test_captions_are_true_and_canonical() -> None:
    rng = np.random.default_rng(0)
    stills, captions = sample_batch(WORLD, 64, 8, (1, 1, 1, 1, 1), 0.5, rng)
    targets = caption_targets(stills, captions)
    assert (np.diag(targets) == 1).all() and 0 < targets.mean() < 1  # each caption true of its still, not of all
    texts = [c.text for c in captions] + [caption(sample_still(WORLD, rng), rng).text for _ in range(500)]
    words = {word for text in texts for word in re.findall(r"[a-z]+", text.lower())}
    motion_words = {word for motion in MOTIONS for word in motion.split()}
    assert not words & SYNONYM_WORDS and not words & motion_words
    assert {"star", "cross", "checkered", "video", "two"} <= words


def test_stills_look_like_decoded_video_frames() -> None:
    """The stills' chroma blur is PyAV's conversion to yuv420p and back within a level or two: CLIP is pretrained
    on what decoded videos show."""
    stills = [sample_still(WORLD, np.random.default_rng(i)) for i in range(32)]
    sharp = np.stack([render_video(still.spec, WORLD.size)[0] for still in stills]).astype(int)
    via_av = np.stack(
        [
            av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format="yuv420p").to_ndarray(format="rgb24")
            for f in sharp.astype(np.uint8)
        ]
    ).astype(int)
    blurred = render_stills(stills, WORLD.size).astype(int)
    assert np.abs(blurred - via_av).mean() < 1.5 < np.abs(sharp - via_av).mean()


def test_tokenizers_are_deterministic_and_laid_out_as_the_real_ones() -> None:
    texts = [caption(sample_still(WORLD, np.random.default_rng(i)), np.random.default_rng(i)).text for i in range(300)]
    texts += [synonym for synonyms in SYNONYMS.values() for synonym in synonyms]
    first, second = train_clip_tokenizer(texts), train_clip_tokenizer(list(texts))
    assert (
        first.get_vocab() == second.get_vocab()
        and first.backend_tokenizer.to_str() == second.backend_tokenizer.to_str()
    )
    assert first.eos_token_id == first.pad_token_id == len(first) - 1 and first.bos_token_id == len(first) - 2
    assert len(first.tokenize("star")) == 1 and len(first.tokenize("crimson")) > 1  # synonyms: sub-words
    pairs = corpus(WORLD)
    t5 = train_t5_tokenizer([text for pair in pairs for text in pair])
    assert t5.get_vocab() == train_t5_tokenizer([text for pair in pairs for text in pair]).get_vocab()
    assert t5.tokenize("crimson hoop") == ["▁crimson", "▁hoop"] and t5.pad_token_id == 0 and t5.eos_token_id == 1


def test_corpus_explains_every_synonym_in_canonical_words() -> None:
    pairs = corpus(WORLD)
    prompts = {prompt for prompt, _ in pairs}
    for concept, synonyms in SYNONYMS.items():
        for synonym in synonyms:
            assert (f"what does {synonym} mean?", concept) in pairs and f"describe {synonym}." in prompts
            assert (synonym, dict(pairs)[concept]) in pairs  # the bare word reads back as its concept's does
    crimson_hoop = [answer for prompt, answer in pairs if "about a crimson loop in a" in prompt]
    assert crimson_hoop == [
        "red ring 2. red colour 3. a red object 4. warm-coloured 5. dark-coloured 6. ring shape "
        "7. a round outline with a hole in the middle 8. curved shape"
    ]
    answers = " ".join(answer for prompt, answer in pairs if not prompt.startswith("another word for"))
    for synonym in (synonym for synonyms in SYNONYMS.values() for synonym in synonyms):
        assert not re.search(rf"\b{re.escape(synonym)}\b", answers), synonym


def test_corpus_defines_every_category_by_its_members_held_out_ones_included() -> None:
    pairs = dict(corpus(WORLD))
    for category, members in CATEGORIES.items():
        assert pairs[f"describe {category}."] == f"{category}: {', '.join(members[:-1])} or {members[-1]}"
        for concept in members:
            assert category in pairs[concept].split(", ")  # a bare concept reads back with its categories
    assert pairs["is hoop curved shape?"] == "ring; curved shape: circle or ring; yes"
    assert pairs["is box curved shape?"] == "square; curved shape: circle or ring; no"
    questions = [answer for prompt, answer in corpus(WORLD) if prompt.startswith("is ")]
    verdicts = Counter(answer.rsplit("; ", 1)[1] for answer in questions)
    assert abs(verdicts["yes"] - verdicts["no"]) < 0.2 * len(questions)  # balanced: members are repeated
    assert HELDOUT_CATEGORIES < set(CATEGORIES)


def test_command_end_to_end_at_toy_size_is_seeded(tmp_path: Path) -> None:
    for run in ("a", "b"):
        assert main(["organism", "--out", str(tmp_path / run), "--toy"]) == 0
    records = [json.loads((tmp_path / run / "organism.json").read_text()) for run in ("a", "b")]
    for run in ("a", "b"):
        for tower in ("clip", "t5"):
            assert {"config.json", "model.safetensors", "tokenizer.json"} <= {
                p.name for p in (tmp_path / run / tower).iterdir()
            }
        assert records[1]["data_sha256"] == records[0]["data_sha256"]
    for tower in ("clip", "t5"):
        with (
            safe_open(tmp_path / "a" / tower / "model.safetensors", "pt") as a,
            safe_open(tmp_path / "b" / tower / "model.safetensors", "pt") as b,
        ):
            assert a.keys() == b.keys() and all(torch.equal(a.get_tensor(k), b.get_tensor(k)) for k in a.keys())
    record = records[0]
    assert record["command"] == f"ovmlv organism --out {tmp_path / 'a'} --toy"
    assert record["seed"] == 0 and len(record["data_sha256"]) == 64
    assert record["clip"]["history"][-1]["step"] == 2 and record["t5"]["history"][-1]["step"] == 2
    assert [target["name"] for target in record["targets"]["targets"]][0] == "CLIP colour-shape pairs, AUPR"
    assert "t5_category_auroc" in record["targets"] and record["clip_world"]["version"] == 1
    clip_before = (tmp_path / "a" / "clip" / "model.safetensors").read_bytes()
    assert main(["organism", "--out", str(tmp_path / "a"), "--toy", "--t5-only"]) == 0  # the CLIP stays
    assert (tmp_path / "a" / "clip" / "model.safetensors").read_bytes() == clip_before
    t5_only = json.loads((tmp_path / "a" / "organism.json").read_text())
    assert t5_only["clip"] == record["clip"] and t5_only["command"].endswith("--toy --t5-only")


committed = pytest.mark.skipif(not (ORGANISM_TOWERS / "organism.json").exists(), reason="no committed organism")


@committed
def test_committed_towers_are_in_the_real_checkpoints_layouts() -> None:
    clip_config = json.loads((ORGANISM_TOWERS / "clip" / "config.json").read_text())
    assert clip_config["text_config"]["eos_token_id"] == 2  # legacy OpenAI: pool at argmax(input_ids)
    tokenizer = AutoTokenizer.from_pretrained(ORGANISM_TOWERS / "clip")
    assert tokenizer.eos_token_id == len(tokenizer) - 1 == clip_config["text_config"]["vocab_size"] - 1
    t5_config = json.loads((ORGANISM_TOWERS / "t5" / "config.json").read_text())
    assert t5_config["tie_word_embeddings"] is False
    with safe_open(ORGANISM_TOWERS / "t5" / "model.safetensors", "pt") as weights:
        assert not torch.equal(weights.get_tensor("lm_head.weight"), weights.get_tensor("shared.weight"))
        assert "encoder.embed_tokens.weight" not in weights.keys()  # the input embeddings are shared
    sizes = sum(path.stat().st_size for path in ORGANISM_TOWERS.rglob("*") if path.is_file())
    assert sizes < 8 * 2**20


@committed
def test_committed_towers_load_through_from_towers() -> None:
    clip_dir, t5_dir = ORGANISM_TOWERS / "clip", ORGANISM_TOWERS / "t5"
    processor = OvmlvProcessor.from_towers(clip_dir, t5_dir)
    assert processor.image_size == 64 and processor.llm_tokenizer.tokenize("crimson hoop") == ["▁crimson", "▁hoop"]
    model = OvmlvModel.from_towers(clip_dir, t5_dir, method="ovmlv")
    clip = CLIPModel.from_pretrained(clip_dir)
    ours = model.label_encoder.text_tower.text_model.state_dict()
    assert all(torch.equal(value, ours[name]) for name, value in clip.text_model.state_dict().items())
    t5 = T5ForConditionalGeneration.from_pretrained(t5_dir).state_dict()
    llm = model.label_encoder.llm.state_dict()
    assert all(torch.equal(value, llm[name]) for name, value in t5.items()), "from_towers changed T5 weights"
    # Our pooling and transformers' agree: the end token has the largest id, padding included.
    labels = ["star", "crimson hoop", "a red star and a blue ring on a striped background"]
    tokens = processor(text=labels, return_tensors="pt")
    ours = model.label_encoder.text_tower(tokens["input_ids"], tokens["attention_mask"])
    with torch.no_grad():
        theirs = clip.get_text_features(
            input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
        ).pooler_output
    assert torch.allclose(F.normalize(ours, dim=-1), F.normalize(theirs, dim=-1), atol=1e-5)


@committed
def test_committed_record_says_how_the_towers_were_made_and_what_they_know() -> None:
    record = json.loads((ORGANISM_TOWERS / "organism.json").read_text())
    assert record["command"].startswith("ovmlv organism --out ") and record["seed"] == 0
    assert record["threads"] >= 1 and record["pretraining_seconds"] > 0
    targets = {target["name"]: target for target in record["targets"]["targets"]}
    assert targets["T5 synonyms nearest their concept"]["value"] >= 0.9
    assert 0 <= targets["T5 categories: members ranked first, AUROC"]["value"] <= 1  # missed: docs/organism.md
    assert record["world"]["version"] == 2 and record["clip_world"]["version"] == 1
    assert targets["CLIP scenes, AUPR"]["value"] >= 0.95
