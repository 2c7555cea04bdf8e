"""Export a trained model as a complete Hub repo folder with its model card, and optionally push it.

    python -m hub_cards.export --model outputs/run/final --out outputs/hub --eval results.json --push org/name

The folder is re-saved through the package (`OvmlvModel.from_pretrained(...).save_pretrained(out)` and the
processor's own save), so weights are safetensors only and the code files, `auto_map` and `custom_pipelines`
are those of the installed code, not whatever the training run wrote. It holds the label bank of the training
vocabulary (`--vocab FILE` builds it when the trained folder has none), a README.md rendered from
`model_card_template.md`, and `checksums.json`: the size and SHA-256 of every file that no ovmlv command changes in
place (weights, tokenizers, processor, code), which `OvmlvModel.from_pretrained` checks before loading, so a
truncated or bit-flipped file is named instead of loaded (safetensors has no checksum of its own).

`--eval FILE` takes evaluation results as JSON (the evaluation CLI writes this; so can a person):

    {
      "model_name": "ovmlv-clip-b32-flan-t5-xl",        optional: the card's title and model-index name
      "results": [
        {
          "dataset": "TAO",                               required: the name shown on the card
          "dataset_id": "tao",                            optional: Hub dataset id / type (default: dataset)
          "config": "objects",                            optional: dataset config or subset
          "split": "val",                                 optional (default: "test")
          "metrics": {"aupr_macro": 0.638, "aupr_micro": 0.61, "peak_f1": 0.566, "peak_f1_threshold": 0.41}
        }
      ]
    }

Metric values are numbers (fractions, as `training.metrics.multilabel_report` gives them) or null; null and NaN
are left out. Every metric shows in the card's table; scores also go to `model-index`, but counts and thresholds
(`NOT_SCORES`) do not, and `f1` / `precision` / `recall` carry the deployment `threshold` as their argument.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from huggingface_hub import EvalResult, HfApi, ModelCard, ModelCardData
from huggingface_hub.utils import HFValidationError, validate_repo_id

from .export_variants import VariantOptions, add_variant_arguments, save_variant, variant_options

if TYPE_CHECKING:
    from modeling_ovmlv.export_variants import TowerCheckpoints

TEMPLATE_PATH = Path(__file__).with_name("model_card_template.md")
PIPELINE_TAG = "video-classification"  # the Hub has no zero-shot video tag; the tags say the rest
TAGS = [
    "zero-shot-video-classification",
    "multi-label",
    "open-vocabulary",
    "video-classification",
    "clip",
    "custom_code",
    "ovmlv",
]
PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt"}
METRIC_NAMES = {
    "aupr_macro": "AUPR (macro)",
    "aupr_micro": "AUPR (micro)",
    "peak_f1": "Peak F1",
    "peak_f1_threshold": "Peak-F1 threshold",
    "threshold": "Threshold",
    "f1": "F1 at threshold",
    "precision": "Precision at threshold",
    "recall": "Recall at threshold",
    "top_1_accuracy": "Top-1 accuracy",
    "top_5_accuracy": "Top-5 accuracy",
    "num_videos": "Videos",
    "skipped_classes": "Classes without positives",
}
NOT_SCORES = {"num_videos", "skipped_classes", "peak_f1_threshold", "threshold"}
AT_THRESHOLD = {"f1", "precision", "recall"}
LABEL_ENCODER_DESCRIPTIONS = {
    "class_name": "the CLIP text embedding of the bare label",
    "templates": "the mean CLIP text embedding over a prompt-template ensemble",
    "llm_prompted": "learnable LLM prompts: a frozen Flan-T5 decodes soft attributes that a prompt transformer "
    "turns into soft prompts for the frozen CLIP text tower (the paper's method)",
    "llm_fixed": "fixed LLM prompts: CLIP text embeddings of the label with LLM-generated descriptors",
}


class ExportError(Exception):
    """A problem with the user's inputs (folder, vocabulary, results file), reported without a traceback."""


@dataclass(frozen=True)
class DatasetResult:
    dataset: str
    split: str
    metrics: dict[str, float]  # finite values only
    dataset_id: str | None = None
    config: str | None = None


@dataclass(frozen=True)
class EvalReport:
    results: list[DatasetResult] = field(default_factory=list)
    model_name: str | None = None


def read_labels(path: str | Path) -> list[str]:
    """A vocabulary file: one label per line; blank lines are skipped."""
    labels = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if not labels:
        raise ExportError(f"{path} holds no labels; write one label per line.")
    return labels


def read_eval_results(path: str | Path) -> EvalReport:
    """Parse and check an evaluation results file (schema in this module's docstring)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ExportError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(data, dict) or not isinstance(data.get("results"), list):
        raise ExportError(f'{path} must be a JSON object with a "results" list (see hub_cards/README.md).')
    if not isinstance(data.get("model_name", ""), str):
        raise ExportError(f'{path}: "model_name" must be a string.')
    results = [_dataset_result(entry, f"{path}: results[{i}]") for i, entry in enumerate(data["results"])]
    return EvalReport(results=results, model_name=data.get("model_name"))


def _dataset_result(entry: Any, where: str) -> DatasetResult:
    if not isinstance(entry, dict) or not isinstance(entry.get("dataset"), str) or not entry["dataset"]:
        raise ExportError(f'{where} needs a "dataset" name.')
    metrics = entry.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        raise ExportError(f'{where} needs a "metrics" object, e.g. {{"aupr_macro": 0.63}}.')
    for key in ("split", "dataset_id", "config"):
        if key in entry and not isinstance(entry[key], str):
            raise ExportError(f"{where}: {key!r} must be a string, got {entry[key]!r}.")
    for name, value in metrics.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ExportError(f"{where}: metric {name!r} must be a number or null, got {value!r}.")
    return DatasetResult(
        dataset=entry["dataset"],
        split=entry.get("split", "test"),
        metrics={name: value for name, value in metrics.items() if value is not None and math.isfinite(value)},
        dataset_id=entry.get("dataset_id"),
        config=entry.get("config"),
    )


def model_index_results(report: EvalReport) -> list[EvalResult]:
    """The card's `model-index` entries: one per (dataset, score), with the threshold as argument where it applies."""
    return [
        EvalResult(
            task_type=PIPELINE_TAG,
            task_name="Open-vocabulary multi-label video classification",
            dataset_type=result.dataset_id or result.dataset,
            dataset_name=result.dataset,
            dataset_config=result.config,
            dataset_split=result.split,
            metric_type=name,
            metric_name=METRIC_NAMES.get(name, name),
            metric_value=value,
            metric_args={"threshold": result.metrics["threshold"]}
            if name in AT_THRESHOLD and "threshold" in result.metrics
            else None,
        )
        for result in report.results
        for name, value in result.metrics.items()
        if name not in NOT_SCORES
    ]


def results_table(report: EvalReport) -> tuple[list[str], list[list[str]]]:
    """(column titles, rows) of the card's results table: known metrics in a fixed order, then the others."""
    seen = dict.fromkeys(name for result in report.results for name in result.metrics)
    names = [name for name in METRIC_NAMES if name in seen] + [name for name in seen if name not in METRIC_NAMES]
    rows = [
        [result.dataset, result.split]
        + [_format_number(result.metrics[name]) if name in result.metrics else "–" for name in names]
        for result in report.results
    ]
    return ["Dataset", "Split"] + [METRIC_NAMES.get(name, name) for name in names], rows


def _format_number(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:.3f}"


def hub_base_models(config) -> list[str]:
    """The towers' Hub ids from the config; local folders (tiny or private towers) cannot be a card's base_model."""
    found = []
    for name in (config.clip_name_or_path, config.llm_name_or_path):
        if name is None or Path(name).exists():
            continue
        try:
            validate_repo_id(name)
        except HFValidationError:
            continue
        found.append(name)
    return found


def build_model_card(
    model,
    processor,
    repo_id: str,
    eval_report: EvalReport | None = None,
    license: str = "apache-2.0",
    base_models: list[str] | None = None,
    datasets: list[str] | None = None,
    variant: str = "full",
    towers: TowerCheckpoints | None = None,
) -> ModelCard:
    """The README: YAML metadata (pipeline tag, tags, base models, model-index) and the template's text.
    `variant` and `towers` (an adapter's `TowerCheckpoints`) say what the folder holds (`export_variants.py`)."""
    config = model.config
    eval_report = eval_report or EvalReport()
    model_name = eval_report.model_name or repo_id.split("/")[-1]
    base_models = base_models or hub_base_models(config)
    card_data = ModelCardData(
        model_name=model_name,
        library_name="transformers",
        pipeline_tag=PIPELINE_TAG,
        tags=TAGS,
        license=license,
        language="en",
        base_model=base_models or None,
        datasets=datasets or None,
        eval_results=model_index_results(eval_report) or None,
    )
    columns, rows = results_table(eval_report)
    labels = model.label_bank.labels
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE_PATH),
        model_name=model_name,
        repo_id=repo_id,
        base_models=base_models,
        label_encoder=LABEL_ENCODER_DESCRIPTIONS.get(config.label_encoder, config.label_encoder),
        vision_frozen=config.freeze_vision_backbone,
        temporal_layers=config.temporal_layers,
        projection_dim=config.projection_dim,
        num_frames=processor.num_frames,
        num_clips=processor.num_clips,
        threshold=config.threshold,
        threshold_calibrated_on=config.threshold_calibrated_on,
        num_labels=len(labels),
        vocabulary_preview=", ".join(labels[:30]) + (", ..." if len(labels) > 30 else ""),
        eval_columns=columns,
        eval_rows=rows,
        training_datasets=datasets or [],
        variant=variant,
        towers=str(towers) if towers else None,
        example_labels=labels[:3] if variant == "fixed-vocabulary" else ["dog", "beach", "surfing"],
    )


def export_model(
    model_path: str | Path,
    out_dir: str | Path,
    repo_id: str,
    vocab: list[str] | None = None,
    eval_report: EvalReport | None = None,
    license: str = "apache-2.0",
    base_models: list[str] | None = None,
    datasets: list[str] | None = None,
    overwrite: bool = False,
    variant: VariantOptions | None = None,
) -> Path:
    """Write the Hub folder for the model at `model_path` (a trained folder or Hub id) into `out_dir`."""
    from modeling_ovmlv import LabelBank, OvmlvModel
    from processing import OvmlvProcessor

    print(f"Loading {model_path}")
    model = OvmlvModel.from_pretrained(model_path)
    processor = OvmlvProcessor.from_pretrained(model_path)
    if vocab is not None:
        if model.label_bank is not None:
            print(f"Replacing the folder's label bank ({len(model.label_bank)} labels) with the given vocabulary")
        model.label_bank = LabelBank.build(model, processor, vocab)
    if model.label_bank is None:
        raise ExportError(
            f"{model_path} has no label bank: pass --vocab FILE with the training vocabulary (one label per line)."
        )
    out_dir = Path(out_dir)
    _prepare_out_dir(out_dir, Path(model_path), overwrite)
    print(f"Writing the Hub folder {out_dir} ({len(model.label_bank)} labels in the label bank)")
    variant = variant or VariantOptions()
    towers = save_variant(model, processor, out_dir, variant)
    pickles = sorted(str(p.relative_to(out_dir)) for p in out_dir.rglob("*") if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise ExportError(f"The export wrote pickle files {pickles}; only safetensors may be shipped.")
    card = build_model_card(
        model, processor, repo_id, eval_report, license, base_models, datasets, variant.variant, towers
    )
    card.save(out_dir / "README.md")
    write_export_checksums(out_dir)
    return out_dir


def write_export_checksums(folder: Path) -> None:
    """`checksums.json` for every file except those documented commands rewrite after an export: the card (edited
    on the Hub), config.json (`training.evaluate` writes a calibrated threshold) and the label bank (`ovmlv vocab`;
    it carries its own checksum and model fingerprint)."""
    from transformers.utils import CONFIG_NAME

    from modeling_ovmlv.checksums import write_checksums
    from modeling_ovmlv.label_bank import BANK_LABELS_NAME, BANK_WEIGHTS_NAME

    write_checksums(folder, exclude=("README.md", CONFIG_NAME, BANK_LABELS_NAME, BANK_WEIGHTS_NAME))


def _prepare_out_dir(out_dir: Path, model_path: Path, overwrite: bool) -> None:
    """An empty `out_dir`; replacing a non-empty one needs `overwrite`, and never touches the model's own folder."""
    out, source = out_dir.resolve(), model_path.resolve()
    if model_path.exists() and (source == out or source.is_relative_to(out)):
        raise ExportError(f"--out {out_dir} holds the model being exported; write the export to another folder.")
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise ExportError(f"{out_dir} is not empty; pass --overwrite to replace it.")
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)


def push_folder(folder: str | Path, repo_id: str, private: bool = False) -> str:
    """Create the model repo if needed and upload `folder` as one commit; the token comes from the usual places
    (`HF_TOKEN`, `hf auth login`). Files already in the repo and not in `folder` are kept."""
    api = HfApi()
    url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message="Upload ovmlv model export")
    return str(url)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Export options, shared by `python -m hub_cards.export` and `ovmlv export`."""
    parser.add_argument(
        "--model", required=True, help="the trained model: a folder saved with its processor, or a Hub id"
    )
    parser.add_argument("--out", required=True, type=Path, metavar="DIR", help="the Hub repo folder to write")
    parser.add_argument(
        "--vocab",
        type=Path,
        metavar="FILE",
        help="training vocabulary, one label per line: builds the label bank (required when the model has none)",
    )
    parser.add_argument(
        "--eval",
        type=Path,
        metavar="FILE",
        help="evaluation results JSON for the card's model-index (schema: hub_cards/README.md)",
    )
    parser.add_argument(
        "--push",
        metavar="ORG/NAME",
        help="upload the folder to this Hub model repo (token: HF_TOKEN or hf auth login)",
    )
    parser.add_argument(
        "--repo-id", metavar="ORG/NAME", help="the id the card's usage snippets load (default: --push's)"
    )
    parser.add_argument("--private", action="store_true", help="create the pushed repo as private")
    parser.add_argument("--license", default="apache-2.0", help="the card's license (default: %(default)s)")
    parser.add_argument(
        "--base-model",
        action="append",
        dest="base_models",
        metavar="HUB_ID",
        help="a base model for the card, repeatable (default: the towers' Hub ids from the config)",
    )
    parser.add_argument(
        "--dataset", action="append", dest="datasets", metavar="HUB_ID", help="a training dataset, repeatable"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it is not empty")
    add_variant_arguments(parser)


def run(args: argparse.Namespace) -> int:
    repo_id = args.repo_id or args.push or f"your-username/{args.out.resolve().name}"
    folder = export_model(
        args.model,
        args.out,
        repo_id=repo_id,
        vocab=read_labels(args.vocab) if args.vocab else None,
        eval_report=read_eval_results(args.eval) if args.eval else None,
        license=args.license,
        base_models=args.base_models,
        datasets=args.datasets,
        overwrite=args.overwrite,
        variant=variant_options(args),
    )
    print(f"Exported {folder}")
    if args.push:
        try:
            url = push_folder(folder, args.push, private=args.private)
        except OSError as err:  # huggingface_hub's HTTP, token and offline errors
            raise ExportError(f"{folder} is complete, but pushing it to {args.push} failed: {err}") from err
        print(f"Pushed to {url}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m hub_cards.export ...` is `ovmlv export ...`: one parser, one error path."""
    from .cli import main as cli_main

    return cli_main(["export", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    raise SystemExit(main())
