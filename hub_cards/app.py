"""The model's Space: upload a video, type labels, see every label's score as a bar and the labels above threshold.

It needs only gradio, transformers, torch and av, never the ovmlv package (the model's code comes with the model,
`trust_remote_code=True`), so this file plus a requirements.txt with those four is a complete Gradio Space:

    OVMLV_MODEL=org/name python app.py                    # in a Space: set OVMLV_MODEL as a Space variable
    python -m hub_cards.app --model outputs/hub --port 7860

`score_labels` is the logic without gradio; the `ovmlv classify` command uses it too.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from transformers import Pipeline, pipeline

TASK = "zero-shot-video-classification"
MODEL_ENV = "OVMLV_MODEL"
UNCALIBRATED_DEFAULT = 0.5  # the slider's start for a model without a calibrated threshold


def load_classifier(model: str) -> Pipeline:
    return pipeline(TASK, model=model, trust_remote_code=True)


def bank_labels(classifier: Pipeline) -> list[str]:
    """The model's training vocabulary (its label bank), or [] for a model without one."""
    bank = getattr(classifier.model, "label_bank", None)
    return list(bank.labels) if bank is not None else []


def score_labels(
    classifier: Pipeline, video: Any, labels: list[str], threshold: float | None, **pipeline_kwargs: Any
) -> tuple[list[dict], list[str]]:
    """Every label's score, best first, and the predicted set: the labels scoring at least `threshold` (none
    without a threshold: an uncalibrated model only ranks).

    `pipeline_kwargs` go to the pipeline (num_frames, clips). Scores are independent sigmoids, so the set can be
    empty or hold every label.
    """
    ranked = classifier(video, candidate_labels=labels, threshold=0.0, **pipeline_kwargs)
    return ranked, [item["label"] for item in ranked if threshold is not None and item["score"] >= threshold]


def classify(classifier: Pipeline, video: str | None, labels_text: str, threshold: float) -> tuple[dict, str]:
    """The app's callback without gradio: ({label: score} for the bars, the predicted labels as text).

    Labels are comma- or newline-separated; none typed means the model's training vocabulary.
    """
    if not video:
        raise ValueError("Upload a video first.")
    labels = [label.strip() for label in labels_text.replace("\n", ",").split(",") if label.strip()]
    labels = labels or bank_labels(classifier)
    if not labels:
        raise ValueError("Type at least one label, e.g. dog, beach, surfing.")
    ranked, predicted = score_labels(classifier, video, labels, threshold)
    summary = ", ".join(predicted) if predicted else f"(no label scores {threshold:.2f} or more)"
    return {item["label"]: item["score"] for item in ranked}, summary


def build_demo(classifier: Pipeline, title: str = "Open-vocabulary multi-label video classification"):
    """The Blocks app around `classify`; gradio is imported here so the logic above works without it."""
    import gradio as gr

    def run(video: str | None, labels_text: str, threshold: float) -> tuple[dict, str]:
        try:
            return classify(classifier, video, labels_text, threshold)
        except ValueError as err:  # bad input: show the message in the app, not a stack trace
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
                calibrated = classifier.model.config.threshold
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
        button.click(run, inputs=[video, labels, threshold], outputs=[scores, predicted], api_name="classify")
    return demo


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--model",
        default=os.environ.get(MODEL_ENV),
        required=MODEL_ENV not in os.environ,
        help=f"Hub id or exported folder (default: ${MODEL_ENV})",
    )
    parser.add_argument("--host", default=None, help="address to listen on (default: gradio's, 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default: gradio's, 7860)")
    args = parser.parse_args(argv)
    build_demo(load_classifier(args.model)).launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
