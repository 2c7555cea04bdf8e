"""The Space app: its callback without gradio, then the real app served on localhost and driven by gradio_client."""

from __future__ import annotations

import re
import socket

import pytest

from ovmlv.app import (
    MAX_QUEUED_REQUESTS,
    MAX_TYPED_LABELS,
    bank_labels,
    build_demo,
    classify,
    load_classifier,
    main,
)
from ovmlv.modeling_ovmlv import ZeroShotVideoClassificationPipeline
from tests.hub_model_folder import VOCABULARY, save_trained_folder
from tests.video_files import write_not_video


@pytest.fixture(scope="module")
def classifier(towers, processor, tmp_path_factory):
    """Loaded as on a Space: remote code from the folder (allowed explicitly), not this package's classes."""
    folder = save_trained_folder(tmp_path_factory.mktemp("space_model"), towers, processor, VOCABULARY)
    return load_classifier(str(folder), trust_remote_code=True)


def test_classify_shows_the_labels_the_pipeline_keeps(classifier, video_path):
    expected = classifier(str(video_path), candidate_labels=["dog", "beach", "surfing"], threshold=0.0)
    middle = expected[1]["score"]
    scores, predicted = classify(classifier, str(video_path), "dog, beach\nsurfing", middle)
    assert scores == pytest.approx({item["label"]: item["score"] for item in expected[:2]})  # at or above: the top 2
    assert predicted == ", ".join(item["label"] for item in expected[:2])
    _, none = classify(classifier, str(video_path), "dog", 1.0)
    assert none == "(no label scores 1.00 or more)"


def test_empty_labels_score_the_training_vocabulary(classifier, video_path):
    assert bank_labels(classifier) == VOCABULARY
    scores, _ = classify(classifier, str(video_path), " ", 0.0)
    assert set(scores) == set(VOCABULARY)


def test_bad_input_is_a_clear_error(classifier, video_path, monkeypatch):
    with pytest.raises(ValueError, match="Upload a video first"):
        classify(classifier, None, "dog", 0.5)
    with pytest.raises(ValueError, match=f"{MAX_TYPED_LABELS + 1} labels typed; this app scores at most"):
        classify(classifier, str(video_path), ",".join(f"label {i}" for i in range(MAX_TYPED_LABELS + 1)), 0.5)
    monkeypatch.setattr(classifier.model, "label_bank", None)
    with pytest.raises(ValueError, match="Type at least one label"):
        classify(classifier, str(video_path), "", 0.5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.filterwarnings("ignore::DeprecationWarning:gradio.queueing")  # gradio's own pandas calls
def test_served_app_through_gradio_client(classifier, video_path, tmp_path, monkeypatch):
    pytest.importorskip("gradio")
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))
    demo = build_demo(classifier)
    assert demo._queue.max_size == MAX_QUEUED_REQUESTS
    assert [dependency.concurrency_limit for dependency in demo.fns.values()] == [1]
    demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        scores, predicted = client.predict(handle_file(str(video_path)), "dog, surfing", 0.0, api_name="/classify")
        expected = classifier(str(video_path), candidate_labels=["dog", "surfing"], threshold=0.0)
        assert scores["label"] == expected[0]["label"]
        assert [c["label"] for c in scores["confidences"]] == [item["label"] for item in expected]
        assert [c["confidence"] for c in scores["confidences"]] == pytest.approx([i["score"] for i in expected])
        assert predicted == ", ".join(item["label"] for item in expected)
        with pytest.raises(AppError, match="Upload a video first"):
            client.predict(None, "dog", 0.5, api_name="/classify")
        broken = write_not_video(tmp_path / "broken.mp4")  # an unreadable upload: its reason, not "an exception"
        with pytest.raises(AppError, match="Cannot decode video .*broken.mp4: FFmpeg cannot open it"):
            client.predict(handle_file(str(broken)), "dog", 0.5, api_name="/classify")
    finally:
        demo.close()


MARKER = "import pathlib; pathlib.Path({path!r}).write_text('the repo ran its own code')\n"


def test_the_repos_own_code_runs_only_when_asked(towers, processor, tmp_path, video_path, monkeypatch):
    """A model repo ships Python; by default the app loads the model through ovmlv's classes, so none of it runs."""
    monkeypatch.setenv("HF_MODULES_CACHE", str(tmp_path / "modules"))
    folder = save_trained_folder(tmp_path / "model", towers, processor, VOCABULARY)
    ran = tmp_path / "ran.txt"
    code = folder / "pipeline_ovmlv.py"  # the repo's pipeline class is what a remote-code load runs
    code.write_text(code.read_text() + MARKER.format(path=str(ran)))

    default = load_classifier(str(folder))
    assert isinstance(default, ZeroShotVideoClassificationPipeline) and not ran.exists()
    scores, _ = classify(default, str(video_path), "dog, beach", 0.0)
    assert set(scores) == {"dog", "beach"}
    load_classifier(str(folder), trust_remote_code=True)
    assert ran.read_text() == "the repo ran its own code"


def test_a_model_of_another_kind_is_named(tmp_path):
    from transformers import BertConfig

    BertConfig(vocab_size=10, hidden_size=8, num_hidden_layers=1, num_attention_heads=1).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="is a 'bert' checkpoint: ovmlv loads the models it saved"):
        load_classifier(str(tmp_path))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda path: path / "nowhere" / "final", "There is no model folder .*nowhere/final"),
        (lambda path: path, "is a folder without config.json"),
    ],
)
def test_a_wrong_model_argument_is_one_sentence(tmp_path, capsys, make, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["--model", str(make(tmp_path))])
    assert exit_info.value.code == 1
    error = capsys.readouterr().err
    assert len(error.strip().splitlines()) == 1 and re.search(message, error)
