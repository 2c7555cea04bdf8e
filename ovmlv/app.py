"""The model's Space: upload a video, type labels, see every label's score as a bar and the labels above threshold.

With the ovmlv package installed, the model runs through this package's own classes and no code from the model's
repo is executed. Without it (a Space: this file plus a requirements.txt with gradio, transformers, torch and av),
the model's own code must run, and that is allowed only explicitly:

    OVMLV_MODEL=org/name OVMLV_TRUST_REMOTE_CODE=1 python app.py   # in a Space: set both as Space variables
    ovmlv app --model outputs/hub --port 7860

`classify` is the logic without gradio; the threshold is the pipeline's to apply, as in `ovmlv classify`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import Pipeline

TASK = "zero-shot-video-classification"
MODEL_ENV = "OVMLV_MODEL"
TRUST_REMOTE_CODE_ENV = "OVMLV_TRUST_REMOTE_CODE"  # "1": run the model repo's own code (a Space without ovmlv)
UNCALIBRATED_DEFAULT = 0.5  # the slider's start for a model without a calibrated threshold
# Per-request bounds, so that one request cannot hold the app for everyone: labels typed (each is encoded; the
# label bank's are precomputed and not counted), the size of an upload, and requests waiting in the queue (one runs
# at a time; more get "queue full" at once rather than waiting minutes).
MAX_TYPED_LABELS = 200
MAX_UPLOAD = "200mb"
MAX_QUEUED_REQUESTS = 16
# What bad input raises (an unreadable upload is a VideoDecodeError, a ValueError): shown as a message, not a trace.
USER_ERRORS = (ValueError, OSError)


def check_model_source(name: str) -> None:
    """A ValueError in one sentence for a model name that is neither a saved model folder nor a Hub id (transformers
    would say "Repo id must be in the form ..." or fail deep inside the config)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValueError(
                f"{name} is a folder without config.json, so not a saved model: pass the folder a training run wrote "
                "(outputs/RUN/final) or one `ovmlv export` made."
            )
        return
    if path.exists():
        raise ValueError(f"{name} is a file; pass the folder the model was saved in.")
    try:
        validate_repo_id(name)
    except HFValidationError:
        raise ValueError(
            f"There is no model folder {name} (nor is it a Hub id like org/name); check the path."
        ) from None


def load_classifier(model: str, trust_remote_code: bool = False) -> Pipeline:
    """The pipeline for `model` (folder or Hub id) through this package's classes, so no code from the model's repo
    runs: a saved ovmlv model, or a plain CLIP checkpoint served zero-shot. `trust_remote_code=True` runs the
    repo's own code instead (needed where ovmlv is not installed)."""
    check_model_source(model)
    if trust_remote_code:
        from transformers import pipeline

        return pipeline(TASK, model=model, trust_remote_code=True)
    try:
        from ovmlv.modeling_ovmlv import OvmlvModel, ZeroShotVideoClassificationPipeline
        from ovmlv.processing import OvmlvProcessor
    except ImportError as err:
        raise ValueError(
            f"The ovmlv package is not installed here, so {model} can only run with its own code: pass "
            f"--trust-remote-code (on a Space, set {TRUST_REMOTE_CODE_ENV}=1) if you trust that repository."
        ) from err
    return ZeroShotVideoClassificationPipeline(
        model=OvmlvModel.from_pretrained(model), processor=OvmlvProcessor.from_pretrained(model)
    )


def bank_labels(classifier: Pipeline) -> list[str]:
    """The model's training vocabulary (its label bank), or [] for a model without one."""
    bank = getattr(classifier.model, "label_bank", None)
    return list(bank.labels) if bank is not None else []


def classify(classifier: Pipeline, video: str | None, labels_text: str, threshold: float) -> tuple[dict, str]:
    """The app's callback without gradio: ({label: score} of the labels the pipeline keeps at `threshold`, for the
    bars; the same labels as text).

    Labels are comma- or newline-separated; none typed means the model's training vocabulary.
    """
    if not video:
        raise ValueError("Upload a video first.")
    labels = [label.strip() for label in labels_text.replace("\n", ",").split(",") if label.strip()]
    if len(labels) > MAX_TYPED_LABELS:
        raise ValueError(
            f"{len(labels)} labels typed; this app scores at most {MAX_TYPED_LABELS} per request (run `ovmlv "
            "classify`, or add the vocabulary to the model's label bank with `ovmlv vocab add`, for more)."
        )
    labels = labels or bank_labels(classifier)
    if not labels:
        raise ValueError("Type at least one label, e.g. dog, beach, surfing.")
    kept = classifier(video, candidate_labels=labels, threshold=threshold)
    summary = ", ".join(item["label"] for item in kept) or f"(no label scores {threshold:.2f} or more)"
    return {item["label"]: item["score"] for item in kept}, summary


def build_demo(classifier: Pipeline, title: str = "Open-vocabulary multi-label video classification"):
    """The Blocks app around `classify`; gradio is imported here so the logic above works without it."""
    import gradio as gr

    def run(video: str | None, labels_text: str, threshold: float) -> tuple[dict, str]:
        try:
            return classify(classifier, video, labels_text, threshold)
        except USER_ERRORS as err:  # bad input (an unreadable upload too): the message in the app, not a trace
            raise gr.Error(str(err), print_exception=False) from err

    vocabulary = bank_labels(classifier)
    with gr.Blocks(title=title) as demo:
        gr.Markdown(
            f"# {title}\nEvery label gets its own probability (sigmoid), so a video can have many labels or none."
            + (
                f" Leave the labels empty to score the {len(vocabulary)}-label training vocabulary."
                if vocabulary
                else ""
            )
        )
        with gr.Row():
            with gr.Column():
                video = gr.Video(label="Video", sources=["upload"])
                labels = gr.Textbox(label="Labels (comma-separated)", placeholder="dog, beach, surfing")
                calibrated = classifier.model.config.deployment_config.threshold
                threshold = gr.Slider(
                    0.0,
                    1.0,
                    value=UNCALIBRATED_DEFAULT if calibrated is None else calibrated,
                    step=0.01,
                    label="Threshold" if calibrated is not None else "Threshold (this model's was never calibrated)",
                )
                button = gr.Button("Classify", variant="primary")
            with gr.Column():
                scores = gr.Label(label="Scores", num_top_classes=15)
                predicted = gr.Textbox(label="Labels at or above the threshold")
        button.click(
            run,
            inputs=[video, labels, threshold],
            outputs=[scores, predicted],
            api_name="classify",
            concurrency_limit=1,  # the model runs one request at a time; the rest wait in the queue
        )
    return demo.queue(max_size=MAX_QUEUED_REQUESTS)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__.split("\n")[0]
    parser.add_argument(
        "--model",
        default=os.environ.get(MODEL_ENV),
        required=MODEL_ENV not in os.environ,
        help=f"Hub id or exported folder (default: ${MODEL_ENV})",
    )
    parser.add_argument("--host", default=None, help="address to listen on (default: gradio's, 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default: gradio's, 7860)")
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        default=os.environ.get(TRUST_REMOTE_CODE_ENV) == "1",
        help=f"run the Python code shipped in the model's repo (needed without ovmlv installed; ${TRUST_REMOTE_CODE_ENV}=1)",
    )


def serve(model: str, *, host: str | None = None, port: int | None = None, trust_remote_code: bool = False) -> None:
    """Serve the app for `model` (a folder or a Hub id) on `host`:`port` (None: gradio's) until stopped; a bad
    `model` is a ValueError (one line from `ovmlv app`). `trust_remote_code` runs the code in the model's repo."""
    build_demo(load_classifier(model, trust_remote_code=trust_remote_code)).launch(
        server_name=host, server_port=port, max_file_size=MAX_UPLOAD
    )


def main(argv: list[str] | None = None) -> None:
    """`python app.py` in a Space, where ovmlv (and its `ovmlv app` command) is not installed."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        serve(args.model, host=args.host, port=args.port, trust_remote_code=args.trust_remote_code)
    except USER_ERRORS as err:
        parser.exit(1, f"{parser.prog}: error: {err}\n")


if __name__ == "__main__":
    main()
