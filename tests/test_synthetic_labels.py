"""The synthetic label pipeline (paper supp. I), stage by stage and end to end, offline.

Captioner and LLM are tiny random models (a LLaVA built here from the test CLIP's configs, the test T5, a tiny
Llama): their text is noise, so those tests check plumbing, batching and caching. The parser is checked on
hand-written LLM answers, de-duplication and assignment on known embeddings.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ovmlv import cli
from ovmlv.organism.world import SyntheticConfig, generate_dataset
from ovmlv.training.synthetic_labels import (
    PROMPTS,
    ClipTextEmbedder,
    ClusteredVocabulary,
    ConceptPrompt,
    ImageCaptioner,
    JsonlCache,
    SyntheticLabelsConfig,
    TextGenerator,
    assign_labels,
    augment_record,
    build_vocabulary,
    caption_videos,
    cluster_concepts,
    clusters_markdown,
    extract_concepts,
    parse_concepts,
    run,
    select_labels,
)
from ovmlv.training.synthetic_labels.pipeline import LazyModel
from ovmlv.training.synthetic_labels.vocabulary import kmeans
from tests.video_files import frame_index, index_frame, write_video

CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {% if m['content'] is string %}{{ m['content'] }}{% else %}"
    "{% for c in m['content'] %}{% if c['type'] == 'image' %}<image>{% else %}{{ c['text'] }}{% endif %}{% endfor %}"
    "{% endif %}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}"
)


def _chat_tokenizer(towers):
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(towers.clip)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _tiny_llama_config(tokenizer):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


@pytest.fixture(scope="module")
def tiny_llava(towers, tmp_path_factory) -> Path:
    """A random LLaVA (CLIP vision tower + Llama), with a chat template, that `pipeline("image-text-to-text")` loads."""
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    out = tmp_path_factory.mktemp("llava")
    tokenizer = _chat_tokenizer(towers)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=CHAT_TEMPLATE,
    ).save_pretrained(out)
    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=32, patch_size=8
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=_tiny_llama_config(tokenizer),
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def tiny_causal_lm(towers, tmp_path_factory) -> Path:
    """A random Llama whose tokenizer has a chat template, like an instruction-tuned LLM."""
    from transformers import LlamaForCausalLM

    out = tmp_path_factory.mktemp("llama")
    tokenizer = _chat_tokenizer(towers)
    torch.manual_seed(0)
    LlamaForCausalLM(_tiny_llama_config(tokenizer)).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _video_with_offset(path: Path, offset: int, num_frames: int = 16) -> Path:
    """Frame i shows index offset + i, so a caption can say which video and frame it came from."""
    return write_video(path, num_frames=num_frames, fps=8, frame_fn=lambda i: index_frame(offset + i, 64, 48))


def _index_captioner(calls: list[int]):
    def caption(images: list[Image.Image]) -> list[str]:
        calls.append(len(images))
        return [f"frame {frame_index(np.asarray(image))}" for image in images]

    return caption


# --- the cache -------------------------------------------------------------------------------------------------


def test_cache_resumes_cuts_a_torn_line_and_refuses_other_settings(tmp_path: Path) -> None:
    path = tmp_path / "cache.jsonl"
    cache = JsonlCache(path, {"model": "a", "frames": (8,)})
    processed: list[list[str]] = []

    def process(keys: list[str]) -> list[dict]:
        processed.append(keys)
        return [{"video": key, "value": key.upper()} for key in keys]

    cache.fill(["x", "y", "z"], process, chunk_size=2, desc="test", progress=False)
    assert processed == [["x", "y"], ["z"]]
    with path.open("a") as file:
        file.write('{"video": "w", "val')  # a crash in the middle of a line
    resumed = JsonlCache(path, {"model": "a", "frames": [8]})
    assert set(resumed.done) == {"x", "y", "z"}
    records = resumed.fill(["z", "w", "x"], process, chunk_size=2, desc="test", progress=False)
    assert processed[-1] == ["w"] and [record["value"] for record in records.values()] == ["Z", "W", "X"]
    assert len(path.read_text().splitlines()) == 5  # header + 4 records, the torn line gone
    with pytest.raises(ValueError, match="delete it"):
        JsonlCache(path, {"model": "b", "frames": [8]})


# --- stage 1: captions -----------------------------------------------------------------------------------------


def test_captions_map_back_to_their_videos_and_resume_after_a_crash(tmp_path: Path) -> None:
    videos = {f"v{v}.mp4": _video_with_offset(tmp_path / f"v{v}.mp4", 60 * v) for v in range(1, 4)}
    videos["broken.mp4"] = tmp_path / "broken.mp4"
    videos["broken.mp4"].write_text("not a video")
    settings = {"captioner": "index"}
    calls: list[int] = []
    index_captioner = _index_captioner(calls)

    def crash_on_second_call(images: list[Image.Image]) -> list[str]:
        if calls:
            raise RuntimeError("out of memory")
        return index_captioner(images)

    cache_path = tmp_path / "captions.jsonl"
    with pytest.raises(RuntimeError, match="out of memory"):
        caption_videos(videos, crash_on_second_call, JsonlCache(cache_path, settings), 4, 8, progress=False)
    assert calls == [8]  # two whole videos of 4 frames per call; the first call's results are on disk

    captions = caption_videos(videos, index_captioner, JsonlCache(cache_path, settings), 4, 8, progress=False)
    assert calls == [8, 4]  # the rerun captions only v3 (the broken video needs no captioner call)
    for v in range(1, 4):
        indices = [int(caption.split()[1]) for caption in captions[f"v{v}.mp4"]]
        assert len(indices) == 4 and indices == sorted(indices)  # uniform frames in time order
        assert all(60 * v <= index < 60 * v + 16 for index in indices)
    assert captions["broken.mp4"] == []
    assert "error" in JsonlCache(cache_path, settings).done["broken.mp4"]
    caption_videos(videos, index_captioner, JsonlCache(cache_path, settings), 4, 8, progress=False)
    assert calls == [8, 4]  # all done: nothing captioned again, the broken video is not retried


def test_image_captioner_runs_a_transformers_image_text_to_text_model(tiny_llava: Path) -> None:
    captioner = ImageCaptioner(str(tiny_llava), max_new_tokens=4, batch_size=2)
    assert captioner.chat and captioner.pipeline.processor.tokenizer.padding_side == "left"
    images = [Image.fromarray(index_frame(i, 64, 48)) for i in range(3)]
    captions = captioner(images)
    assert len(captions) == 3 and all(isinstance(caption, str) and "\n" not in caption for caption in captions)
    assert captioner(images[:1]) == captions[:1]  # greedy, and batching does not change a caption
    captioner.chat, captioner.prompt = False, "<image>a picture of"  # a plain captioner continues a text prefix
    assert len(captioner(images)) == 3


# --- stage 2: concepts -----------------------------------------------------------------------------------------


def test_verb_prompt_is_the_papers_few_shot_prompt() -> None:
    captions = ["A dog is surfing.", "A dog rides a wave."]
    text = PROMPTS["verbs"].format(captions)
    assert text.count("Verbs Found:") == 4 and text.count("Following is the description of a video.") == 4
    assert text.startswith(
        "Following is the description of a video. Output a numbered list of verbs representing visual actions "
        "performed in the video. Do not add any explanation.\n\nVideo 1 description:\n\n"
        "1. A group of people riding motorcycles at night.\n"
    )
    assert "Verbs Found:\n\n1. putting lotion\n2. putting nail polish\n3. writing\n4. putting ring\n\n" in text
    assert text.endswith("Video 4 description:\n\n1. A dog is surfing.\n2. A dog rides a wave.\n\nVerbs Found:")
    objects = PROMPTS["objects"].format(captions)
    assert objects.count("Objects Found:") == 4 and "1. motorcycle\n2. bike" in objects
    assert objects.split("Video 2")[0].count("A motorcycle parked in a dark room.") == 1  # same example videos
    assert PROMPTS["verbs"].fingerprint != PROMPTS["objects"].fingerprint


@pytest.mark.parametrize(
    ("answer", "concepts"),
    [
        ("\n\n1. riding motorcycle\n2. riding bike", ["riding motorcycle", "riding bike"]),
        (  # a chat model's preamble and sign-off
            "Sure! Here are the verbs representing visual actions in Video 4:\n\n1. Surfing\n2. Paddling on a "
            "surfboard\n3. Riding a wave.\n\nI hope this helps! Let me know if you have any other questions.",
            ["surfing", "paddling on a surfboard", "riding a wave"],
        ),
        (  # a repetition loop
            "1. cooking\n2. cutting vegetables\n3. cooking\n4. Cooking\n5. cooking\n6. cutting vegetables\n7. cook",
            ["cooking", "cutting vegetables", "cook"],
        ),
        (  # the model goes on writing a fifth example
            "1. dancing\n2. singing\n\nFollowing is the description of a video. Output a numbered list of verbs "
            "representing visual actions performed in the video.\n\nVideo 5 description:\n\n1. A man is running."
            "\n\nVerbs Found:\n\n1. running",
            ["dancing", "singing"],
        ),
        ("Verbs Found:\n1. skiing\n2) jumping\n1. falling", ["skiing", "jumping"]),  # echoed header; restart
        ("1. riding bike 2. playing guitar. 3. riding bike", ["riding bike", "playing guitar"]),  # one line
        (  # explanations, markdown, quotes
            '1. **Skateboarding**: riding a skateboard down a ramp\n2. Jumping (over the rail)\n3. "Falling".\n'
            "4. grinding - the skater slides along the rail\n5. Kick-flipping: a trick",
            ["skateboarding", "jumping", "falling", "grinding", "kick-flipping"],
        ),
        (
            "- mowing the lawn\n* trimming hedges\n• raking leaves\n**watering** plants",  # bold is no bullet
            ["mowing the lawn", "trimming hedges", "raking leaves"],
        ),
        ("1. *Diving*\n2. __swimming__\n3. `snorkeling`", ["diving", "swimming", "snorkeling"]),
        ("1. A man is standing in the kitchen next to the stove and talking\n2. talking", ["talking"]),  # a sentence
        ("", []),
        ("   \n\n", []),
        ("1. None", []),
        ("No verbs found.", []),
        ("1. No actions found", []),
        ("The video shows a person riding a bike at night.", []),  # no list at all
    ],
)
def test_parse_concepts_on_realistic_llm_answers(answer: str, concepts: list[str]) -> None:
    assert parse_concepts(answer) == concepts


def test_text_generator_runs_seq2seq_and_causal_lms(towers, tiny_causal_lm: Path) -> None:
    prompts = ["Verbs Found: a dog is surfing", "Objects Found: a red cat sleeps on a blue sofa in the kitchen"]
    t5 = TextGenerator(str(towers.llm), max_new_tokens=6)
    assert t5.seq2seq and not t5.chat_template
    answers = t5(prompts)
    assert len(answers) == 2 and all(isinstance(answer, str) for answer in answers)
    assert t5(prompts[:1]) == answers[:1]

    llama = TextGenerator(str(tiny_causal_lm), max_new_tokens=6)
    assert not llama.seq2seq and llama.chat_template and llama.tokenizer.padding_side == "left"
    answers = llama(prompts)
    assert len(answers) == 2
    # No prompt in the answer: 6 new tokens re-tokenize to at most 12 (a byte-level token cut mid-character
    # decodes to a replacement character that costs up to two tokens), the prompts to 15 or more.
    assert all(len(llama.tokenizer(answer, add_special_tokens=False).input_ids) <= 12 for answer in answers)
    assert llama(prompts[1:]) == answers[1:]  # the shorter prompt, left-padded in the batch, decodes the same alone


def test_extract_concepts_caches_raw_answers_and_skips_videos_without_captions(tmp_path: Path, towers) -> None:
    captions = {"a.mp4": ["A man surfs."], "b.mp4": [], "c.mp4": ["A dog runs.", "A dog jumps."]}
    seen: list[str] = []
    answers = {"surfs": "1. Surfing\n2. surfing", "runs": "Sure!\n1. running\n2. jumping (high)"}

    def llm(prompts: list[str]) -> list[str]:
        seen.extend(prompts)
        return [
            next(answer for word, answer in answers.items() if word in prompt.split("Video 4")[1])
            for prompt in prompts
        ]

    cache_path = tmp_path / "concepts.jsonl"
    concepts = extract_concepts(
        captions, llm, PROMPTS["verbs"], JsonlCache(cache_path, {}), batch_size=2, progress=False
    )
    assert concepts == {"a.mp4": ["surfing"], "b.mp4": [], "c.mp4": ["running", "jumping"]}
    assert len(seen) == 2 and all(prompt.endswith("Verbs Found:") for prompt in seen)
    assert JsonlCache(cache_path, {}).done["c.mp4"]["raw"] == answers["runs"]  # raw text: re-parsable later
    assert extract_concepts(captions, llm, PROMPTS["verbs"], JsonlCache(cache_path, {}), progress=False) == concepts
    assert len(seen) == 2  # resumed from the cache

    t5 = TextGenerator(str(towers.llm), max_new_tokens=8)  # a real (noise-writing) LLM through the same path
    short_prompt = ConceptPrompt("List the objects.", "Objects Found:", ())  # the tiny T5 is slow on 1.5k tokens
    noise = extract_concepts(captions, t5, short_prompt, JsonlCache(tmp_path / "t5.jsonl", {}), progress=False)
    assert set(noise) == set(captions) and noise["b.mp4"] == []


# --- stage 3: vocabulary ---------------------------------------------------------------------------------------

# Concept -> (group, number of videos). Groups are near-duplicates; the last two concepts stand alone.
CONCEPTS = {
    "riding a bike": (0, 9),
    "riding a bicycle": (0, 4),
    "bike riding": (0, 2),
    "grilling": (1, 3),
    "barbecue": (1, 5),
    "barbequing": (1, 1),
    "water slide": (2, 6),
    "riding water slide": (2, 2),
    "water sliding": (2, 2),
    "playing guitar": (3, 7),
    "surfing": (4, 1),
}


def group_embeddings(texts: list[str], dim: int = 16, noise: float = 0.1) -> np.ndarray:
    """Near-duplicates share a direction (one axis per group) plus a little text-specific noise."""
    rows = []
    for text in texts:
        group = CONCEPTS[text.removeprefix("a video of ")][0]
        rng = np.random.default_rng(sum(map(ord, text)))
        row = np.eye(dim)[group] + noise * rng.standard_normal(dim)
        rows.append(row / np.linalg.norm(row))
    return np.stack(rows).astype(np.float32)


def _groups(clusters) -> set[frozenset[str]]:
    return {frozenset(cluster.members) for cluster in clusters}


def test_kmeans_merges_near_duplicates_into_their_most_frequent_concept() -> None:
    counts = {concept: count for concept, (_, count) in CONCEPTS.items()}
    clusters = cluster_concepts(counts, group_embeddings, num_clusters=5, kind="verbs")
    expected = {frozenset(c for c, (g, _) in CONCEPTS.items() if g == group) for group in range(5)}
    assert _groups(clusters) == expected  # near-duplicates merge, distinct concepts do not
    assert {cluster.label for cluster in clusters} == {
        "riding a bike",
        "barbecue",
        "water slide",
        "playing guitar",
        "surfing",
    }
    slide = next(cluster for cluster in clusters if cluster.label == "water slide")
    assert slide.members == {"water slide": 6, "riding water slide": 2, "water sliding": 2}  # ties: alphabetical
    assert slide.count == 10 and slide.kind == "verbs"
    again = cluster_concepts(counts, group_embeddings, num_clusters=5, kind="verbs")
    assert [cluster.members for cluster in again] == [cluster.members for cluster in clusters]  # seeded

    # Too few clusters force unrelated concepts together; a similarity floor splits them apart again.
    forced = cluster_concepts(counts, group_embeddings, num_clusters=2, kind="verbs")
    assert len(forced) == 2
    vetoed = cluster_concepts(counts, group_embeddings, num_clusters=2, kind="verbs", min_similarity=0.5)
    assert _groups(vetoed) == expected


def test_build_vocabulary_counts_videos_per_kind_and_reports_clusters(tmp_path: Path) -> None:
    by_video = {
        "a": ["riding a bike", "riding a bike", "surfing"],  # a repeat within a video counts once
        "b": ["riding a bicycle", "riding a bike"],
        "c": ["bike riding", "riding a bicycle"],
        "d": ["riding a bicycle"],
    }
    objects = {"a": ["grilling"], "b": ["barbecue", "playing guitar"], "c": ["barbecue"], "d": []}
    vocabulary = build_vocabulary(
        {"verbs": by_video, "objects": objects}, group_embeddings, cluster_ratio=0.5, progress=False
    )
    bike = next(cluster for cluster in vocabulary.clusters if "bike riding" in cluster.members)
    assert bike.members == {"riding a bicycle": 3, "riding a bike": 2, "bike riding": 1}
    assert vocabulary.labels[0] == "riding a bicycle"  # most frequent first
    assert {cluster.kind for cluster in vocabulary.clusters if cluster.label == "barbecue"} == {"objects"}
    assert set(vocabulary.labels) == {"riding a bicycle", "surfing", "barbecue", "playing guitar"}  # k = 2 per kind

    vocabulary.save(tmp_path / "vocabulary.json")
    assert ClusteredVocabulary.load(tmp_path / "vocabulary.json") == vocabulary
    report = clusters_markdown(vocabulary, rows=5)
    assert "| Label | Kind | Videos | Concepts (videos) |" in report
    assert (
        "| riding a bicycle | verbs | 6 | 'riding a bicycle' (3), 'riding a bike' (2), 'bike riding' (1) |" in report
    )
    assert "| surfing |" not in report  # single-concept clusters merged nothing: not worth a row


def test_kmeans_backend_uses_faiss_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    from sklearn.cluster import KMeans

    built: list[dict] = []

    class FakeFaissKmeans:  # the part of faiss.Kmeans the backend uses
        def __init__(self, dim: int, k: int, **kwargs) -> None:
            built.append({"dim": dim, "k": k, **kwargs})
            self.model = KMeans(n_clusters=k, n_init=1, random_state=kwargs["seed"])

        def train(self, x: np.ndarray) -> None:
            self.model.fit(x)
            self.index = types.SimpleNamespace(search=lambda x, n: (None, self.model.predict(x)[:, None]))

    x = group_embeddings(list(CONCEPTS))
    monkeypatch.setitem(sys.modules, "faiss", None)  # as if not installed: importing it raises ImportError
    with pytest.raises(ImportError):
        kmeans(x, 5, backend="faiss")
    monkeypatch.setitem(sys.modules, "faiss", types.SimpleNamespace(Kmeans=FakeFaissKmeans))
    assignment = kmeans(x, 5, seed=3)
    assert built == [{"dim": 16, "k": 5, "nredo": 4, "seed": 3, "spherical": True}]
    assert len(set(assignment.tolist())) == 5
    kmeans(x, 5, backend="sklearn")
    assert len(built) == 1


def test_clip_text_embedder_gives_unit_norm_clip_text_features(towers) -> None:
    from transformers import AutoTokenizer, CLIPModel

    embedder = ClipTextEmbedder(str(towers.clip), batch_size=2)
    texts = ["a video of surfing", "riding a bike", "a dog"]
    embeddings = embedder(texts)
    clip, tokenizer = CLIPModel.from_pretrained(towers.clip).eval(), AutoTokenizer.from_pretrained(towers.clip)
    with torch.no_grad():
        reference = clip.get_text_features(**tokenizer(texts, padding=True, return_tensors="pt")).pooler_output
    reference = torch.nn.functional.normalize(reference, dim=-1).numpy()
    assert embeddings.shape == (3, clip.config.projection_dim)
    np.testing.assert_allclose(embeddings, reference, atol=1e-5)
    assert embedder([]).shape == (0, clip.config.projection_dim)


# --- stage 4: assignment ---------------------------------------------------------------------------------------


def test_assignment_takes_the_best_caption_and_applies_threshold_and_top_k() -> None:
    vectors = {  # unit vectors with known cosines: caption . label
        "a video of dog": [1.0, 0.0, 0.0],
        "a video of surfing": [0.0, 1.0, 0.0],
        "a video of piano": [0.0, 0.0, 1.0],
        "a dog on a beach": [0.8, 0.6, 0.0],
        "a dog rides a wave": [0.6, 0.8, 0.0],
        "waves": [0.0, 0.95, 0.3122],
    }
    asked: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        asked.append(texts)
        return np.array([vectors[text] for text in texts], dtype=np.float32)

    captions = {"v1": ["a dog on a beach", "a dog rides a wave"], "v2": ["waves"], "v3": []}
    labels = ["dog", "surfing", "piano"]
    assigned = assign_labels(captions, labels, embed, threshold=0.7, top_k=None, videos_per_batch=2, progress=False)
    assert asked[0] == ["a video of dog", "a video of surfing", "a video of piano"]  # the paper's template
    assert assigned == {"v1": {"dog": 0.8, "surfing": 0.8}, "v2": {"surfing": 0.95}, "v3": {}}  # max over captions
    top1 = assign_labels(captions, labels, embed, threshold=None, top_k=1, progress=False)
    assert top1 == {"v1": {"dog": 0.8}, "v2": {"surfing": 0.95}, "v3": {}}  # ties keep vocabulary order
    both = assign_labels(captions, labels, embed, threshold=0.9, top_k=1, progress=False)
    assert both == {"v1": {}, "v2": {"surfing": 0.95}, "v3": {}}
    with pytest.raises(ValueError, match="threshold"):
        assign_labels(captions, labels, embed, threshold=None, top_k=None)
    assert select_labels(np.array([[0.1, 0.5, 0.3]]), ["a", "b", "c"], None, 2) == {"b": 0.5, "c": 0.3}


def test_augmented_record_keeps_original_labels_and_marks_generated_ones() -> None:
    record = {"video": "v.mp4", "labels": ["Surfing", "beach"], "source": "yt8m"}
    augmented = augment_record(record, {"surfing": 0.9, "dog": 0.85, "wave": 0.81})
    assert augmented == {
        "video": "v.mp4",
        "labels": ["Surfing", "beach", "dog", "wave"],
        "source": "yt8m",
        "generated_labels": {"dog": 0.85, "wave": 0.81},
    }
    assert record["labels"] == ["Surfing", "beach"]  # the input is not modified


# --- end to end ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def shapes_manifest(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shapes")
    config = SyntheticConfig(num_train=3, num_val=0, num_heldout=0, size=32, fps=8, seconds=1.0)
    generate_dataset(out, config, progress=False)
    return out / "train.jsonl"


def test_pipeline_end_to_end_writes_an_augmented_manifest_and_resumes(
    shapes_manifest: Path, tiny_llava: Path, towers, tmp_path: Path
) -> None:
    answers = ["1. riding a bike\n2. surfing", "1. riding a bicycle\n2. bike riding", "Sure!\n1. riding a bike"]
    asked: list[str] = []

    def llm(prompts: list[str]) -> list[str]:  # realistic answers; the tiny LLM's noise parses to nothing
        asked.extend(prompts)
        return [answers[(len(asked) - len(prompts) + i) % 3] for i in range(len(prompts))]

    out = tmp_path / "labels"
    config = SyntheticLabelsConfig(
        manifest=str(shapes_manifest),
        out=str(out),
        captioner=str(tiny_llava),
        llm="fake",
        clip=str(towers.clip),
        num_frames=2,
        caption_max_new_tokens=3,
        kinds=("verbs",),
        num_clusters=2,
        threshold=None,
        top_k=2,
    )
    summary = run(config, generate_fn=llm, progress=False)
    assert len(asked) == 3
    original = [json.loads(line) for line in shapes_manifest.read_text().splitlines()]
    augmented = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    vocabulary = (out / "vocabulary.txt").read_text().splitlines()
    assert len(vocabulary) == 2 and "riding a bike" in vocabulary  # 4 concepts, k=2, the most frequent kept
    for before, after in zip(original, augmented, strict=True):
        assert after["labels"][: len(before["labels"])] == before["labels"]
        assert after["labels"][len(before["labels"]) :] == list(after["generated_labels"])
        assert set(after["generated_labels"]) <= set(vocabulary) and len(after["generated_labels"]) == 2
        assert (out / after["video"]).resolve() == (shapes_manifest.parent / before["video"]).resolve()
    assert summary["videos"] == 3 and summary["labels_per_video"]["generated"] == 2.0
    assert json.loads((out / "summary.json").read_text()) == summary
    assert "## Largest clusters" in (out / "clusters.md").read_text()
    captions = [json.loads(line) for line in (out / "captions.jsonl").read_text().splitlines()[1:]]
    assert [len(record["captions"]) for record in captions] == [2, 2, 2]

    def no_captioner(images: list[Image.Image]) -> list[str]:
        raise AssertionError("a finished stage must not run again")

    assert run(config, caption_fn=no_captioner, generate_fn=llm, progress=False) == summary
    assert len(asked) == 3
    with pytest.raises(ValueError, match="overwrite"):
        run(SyntheticLabelsConfig(**{**vars(config), "out": str(shapes_manifest.parent)}), progress=False)


def test_command_line_runs_all_stages_with_tiny_models(
    shapes_manifest: Path, tiny_llava: Path, tiny_causal_lm: Path, towers, tmp_path
) -> None:
    out = tmp_path / "cli"
    argv = [
        "--manifest", str(shapes_manifest), "--captioner", str(tiny_llava), "--llm", str(tiny_causal_lm),
        "--clip", str(towers.clip), "--out", str(out), "--num-frames", "2", "--caption-max-new-tokens", "3",
        "--llm-max-new-tokens", "8", "--threshold", "none", "--top-k", "3", "--kinds", "verbs",
    ]  # fmt: skip
    assert cli.main(["synth-labels", *argv]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["videos"] == 3 and (out / "train.jsonl").exists()
    assert json.loads((out / "synthetic_labels_config.json").read_text())["threshold"] is None
    answers = [json.loads(line) for line in (out / "concepts_verbs.jsonl").read_text().splitlines()[1:]]
    assert len(answers) == 3 and all(isinstance(answer["raw"], str) for answer in answers)  # the LLM ran per video
    assert {path.name for path in out.iterdir()} >= {
        "captions.jsonl",
        "concepts_verbs.jsonl",
        "vocabulary.json",
        "vocabulary.txt",
        "clusters.md",
        "summary.json",
    }


def test_models_load_only_when_a_stage_has_work_and_settings_fail_early(shapes_manifest: Path, tmp_path) -> None:
    built: list[str] = []
    model = LazyModel(lambda: built.append("model") or str.upper)
    assert built == []
    assert model("a") == "A" and model("b") == "B" and built == ["model"]
    model.close()
    assert model.model is None

    settings = dict(manifest=str(shapes_manifest), out=str(tmp_path), captioner="c", llm="l")
    for bad, message in [
        ({"kinds": ("adverbs",)}, "kinds"),
        ({"label_template": "a video of {}"}, "label"),
        ({"threshold": None, "top_k": None}, "threshold"),
        ({"kmeans_backend": "cuml"}, "backend"),
    ]:
        with pytest.raises(ValueError, match=message):
            SyntheticLabelsConfig(**settings, **bad)
