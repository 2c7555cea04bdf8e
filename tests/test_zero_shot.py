"""A plain CLIP checkpoint, laid out as openai/clip-vit-base-patch32 is on the Hub, served zero-shot with no training:
through `OvmlvModel.from_pretrained`, `pipeline(...)` after `import ovmlv`, and every command that takes --model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import CLIPModel, CLIPTokenizer

from ovmlv import arguments, cli
from ovmlv.app import load_classifier
from ovmlv.modeling_ovmlv import OvmlvModel, ZeroShotVideoClassificationPipeline
from ovmlv.processing import OvmlvProcessor
from ovmlv.processing.processing_ovmlv import PROMPT_TEMPLATES

LABELS = ["dog", "red circle", "beach"]
# openai/clip-vit-base-patch32's preprocessor_config.json, at the tiny towers' 32 px.
PREPROCESSOR_CONFIG = {
    "crop_size": 32,
    "do_center_crop": True,
    "do_normalize": True,
    "do_resize": True,
    "feature_extractor_type": "CLIPFeatureExtractor",
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
    "resample": 3,
    "size": 32,
}


@pytest.fixture(scope="module")
def clip_checkpoint(towers, tmp_path_factory) -> Path:
    """The Hub repo's files: config.json (legacy text config), model.safetensors, tokenizer files,
    preprocessor_config.json; nothing ovmlv wrote."""
    folder = tmp_path_factory.mktemp("hub") / "clip-vit-base-patch32"
    shutil.copytree(towers.clip, folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR_CONFIG, indent=2))
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "clip" and config["text_config"]["eos_token_id"] == 2  # the legacy layout
    return folder


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    """A 1-frame video: (1, H, W, 3) uint8."""
    return np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)


def clip_cosines(checkpoint: Path, pixel_values: torch.Tensor, labels: list[str]) -> torch.Tensor:
    """CLIPModel's image-text cosines, each label the re-normalised mean of its prompt templates' text embeddings."""
    clip = CLIPModel.from_pretrained(checkpoint).eval()
    tokenizer = CLIPTokenizer.from_pretrained(checkpoint)
    with torch.no_grad():
        image = F.normalize(clip.get_image_features(pixel_values=pixel_values).pooler_output, dim=-1)
        texts = [[template.format(label=label) for template in PROMPT_TEMPLATES] for label in labels]
        label_embeds = torch.stack(
            [
                F.normalize(
                    F.normalize(
                        clip.get_text_features(**tokenizer(t, padding=True, return_tensors="pt")).pooler_output, dim=-1
                    ).mean(0),
                    dim=-1,
                )
                for t in texts
            ]
        )
    return image @ label_embeds.T  # (1, C)


def test_from_pretrained_is_clip_zero_shot(clip_checkpoint, frame):
    model = OvmlvModel.from_pretrained(clip_checkpoint).eval()
    config = model.config
    assert (
        config.method,
        config.label_encoder,
        config.temporal_config.temporal_layers,
        config.deployment_config.threshold,
    ) == (
        "templates",
        "templates",
        0,
        None,
    )
    assert not any(p.requires_grad for p in model.parameters())  # nothing to train: every tower frozen
    processor = OvmlvProcessor.from_pretrained(clip_checkpoint)
    assert processor.image_size == 32 and processor.num_frames == 8
    inputs = processor(videos=frame, text=LABELS)
    with torch.no_grad():
        output = model(**inputs)
    cosines = clip_cosines(clip_checkpoint, inputs["pixel_values_videos"][:, 0], LABELS)
    torch.testing.assert_close(output.video_embeds @ output.label_embeds.T, cosines, atol=1e-5, rtol=0)
    torch.testing.assert_close(output.logits_per_video, cosines / config.score_temperature, atol=1e-4, rtol=0)


def test_pipeline_after_import_ovmlv(clip_checkpoint, frame, tmp_path):
    """In a new interpreter: `import ovmlv` alone, then transformers' own `pipeline()`; every label comes back,
    ranked (uncalibrated), scored as the zero-shot model scores it."""
    np.save(tmp_path / "frame.npy", frame)
    script = textwrap.dedent(
        """
        import json, sys
        import numpy as np
        import ovmlv
        assert "torch" not in sys.modules  # registered lazily
        from transformers import pipeline
        classifier = pipeline("zero-shot-video-classification", model=sys.argv[1])
        result = classifier(np.load(sys.argv[2]), candidate_labels=sys.argv[3].split("|"))
        print(json.dumps({"type": type(classifier.model).__name__, "result": result}))
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script, str(clip_checkpoint), str(tmp_path / "frame.npy"), "|".join(LABELS)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    )
    assert completed.returncode == 0, completed.stderr
    output = json.loads(completed.stdout.strip().splitlines()[-1])
    assert output["type"] == "OvmlvModel"
    assert "never calibrated" in completed.stderr
    expected = ZeroShotVideoClassificationPipeline(
        model=OvmlvModel.from_pretrained(clip_checkpoint), processor=OvmlvProcessor.from_pretrained(clip_checkpoint)
    )(frame, candidate_labels=LABELS)
    assert [item["label"] for item in output["result"]] == [item["label"] for item in expected]
    assert [item["score"] for item in output["result"]] == pytest.approx(
        [item["score"] for item in expected], abs=1e-6
    )


def test_every_command_serves_it(clip_checkpoint, video_path, tmp_path, capsys):
    """classify, index, tag, search and the app take the checkpoint as --model: uncalibrated, so every label is
    returned ranked (classify), and tags hold the top-k only (no threshold to predict with)."""
    model = ["--model", str(clip_checkpoint)]
    assert cli.main(["classify", str(video_path), *model, "--labels", *LABELS, "--json"]) == arguments.EXIT_OK
    [result] = json.loads(capsys.readouterr().out)
    app = load_classifier(str(clip_checkpoint))
    expected = app(str(video_path), candidate_labels=LABELS)
    assert result["threshold"] is None and [item["label"] for item in result["labels"]] == [
        e["label"] for e in expected
    ]
    assert [item["score"] for item in result["labels"]] == pytest.approx([e["score"] for e in expected], abs=1e-6)

    index = tmp_path / "library.index"
    assert cli.main(["index", str(video_path), *model, "--out", str(index), "--workers", "0"]) == arguments.EXIT_OK
    tags = tmp_path / "tags.jsonl"
    assert cli.main(["tag", str(index), "--labels", *LABELS, "--top-k", "2", "--out", str(tags)]) == arguments.EXIT_OK
    [row] = [json.loads(line) for line in tags.read_text().splitlines()]
    assert row["threshold"] is None and "predicted" not in row
    assert [item["label"] for item in row["top_k"]] == [e["label"] for e in expected[:2]]
    assert [item["score"] for item in row["top_k"]] == pytest.approx([e["score"] for e in expected[:2]], abs=1e-5)
    capsys.readouterr()
    assert cli.main(["search", str(index), "red circle", "--json"]) == arguments.EXIT_OK
    [found] = json.loads(capsys.readouterr().out)
    assert [item["video"] for item in found["videos"]] == [str(video_path)]


def test_other_checkpoints_are_named(tmp_path):
    from transformers import BertConfig

    BertConfig(vocab_size=10, hidden_size=8, num_hidden_layers=1, num_attention_heads=1).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="is a 'bert' checkpoint: ovmlv loads the models it saved, and serves clip"):
        OvmlvModel.from_pretrained(tmp_path)


@pytest.mark.parametrize("variant", ["siglip", "siglip2", "siglip2_naflex"])
def test_from_pretrained_is_siglip_zero_shot(siglip_towers, variant):
    """A plain SigLIP or SigLIP 2 checkpoint is served as `from_towers(method="templates")`, whose logits
    test_siglip.py checks against `SiglipModel`'s: SigLIP's own scale and bias, no calibration needed."""
    checkpoint = siglip_towers(variant).clip
    model = OvmlvModel.from_pretrained(checkpoint).eval()
    config = model.config
    assert (config.label_encoder, config.temporal_config.temporal_layers, config.deployment_config.threshold) == (
        "templates",
        0,
        None,
    )
    processor = OvmlvProcessor.from_pretrained(checkpoint)
    size = processor.image_size
    frame = np.random.default_rng(0).integers(0, 256, (1, size, size, 3), dtype=np.uint8)
    inputs = processor(videos=frame, text=LABELS)
    reference = OvmlvModel.from_towers(checkpoint, method="templates").eval()
    with torch.no_grad():
        torch.testing.assert_close(model(**inputs).logits_per_video, reference(**inputs).logits_per_video)
