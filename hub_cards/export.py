"""`ovmlv export`: a trained model as a complete Hub repo folder with its model card, optionally pushed.

    ovmlv export --model outputs/run/final --out outputs/hub --eval results.json --push org/name

The folder is re-saved through the package (`OvmlvModel.from_pretrained(...).save_pretrained(out)` and the
processor's own save), so weights are safetensors only and the code files, `auto_map` and `custom_pipelines`
are those of the installed code, not whatever the training run wrote. It holds the label bank of the training
vocabulary (`--vocab FILE` builds it when the trained folder has none), a README.md rendered from
`model_card_template.md`, and `checksums.json`: the size and SHA-256 of every file that no ovmlv command changes in
place (weights, tokenizers, processor, code), which `OvmlvModel.from_pretrained` checks before loading, so a
truncated or bit-flipped file is named instead of loaded (safetensors has no checksum of its own).

`--eval FILE` takes evaluation results as JSON (`ovmlv evaluate` writes it; the schema: `eval_results.py` and
hub_cards/README.md). Every metric shows in the card's table; scores also go to `model-index`, but counts and
thresholds do not, and `f1` / `precision` / `recall` carry the deployment `threshold` as their argument.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from ovmlv.app import check_model_source
from ovmlv.arguments import CommandError
from ovmlv.modeling_ovmlv.atomic_files import write_folder_atomically
from ovmlv.modeling_ovmlv.label_encoder_registry import LABEL_ENCODERS
from ovmlv.modeling_ovmlv.towers import TOWER_KINDS

from .eval_results import AT_THRESHOLD, METRIC_NAMES, NOT_SCORES, EvalReport, results_table
from .export_variants import VariantOptions, save_variant

if TYPE_CHECKING:
    from ovmlv.modeling_ovmlv.saved_variants import TowerCheckpoints

logger = logging.getLogger(__name__)

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


class ExportError(CommandError):
    """A problem with the user's inputs (folder, vocabulary, results file), reported without a traceback."""


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


def hub_base_models(config) -> list[str]:
    """The towers' Hub ids from the config (it keeps none for towers loaded from a local folder)."""
    return [
        name
        for name in (config.deployment_config.clip_name_or_path, config.deployment_config.llm_name_or_path)
        if name
    ]


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
        label_encoder=LABEL_ENCODERS[config.label_encoder].description,
        vision_frozen=config.freeze_vision_backbone,
        towers_name=TOWER_KINDS[config.towers_type].name,
        text_positions=config.text_config.max_position_embeddings,
        temporal_layers=config.temporal_config.temporal_layers,
        projection_dim=config.projection_dim,
        num_frames=processor.num_frames,
        num_clips=processor.num_clips,
        threshold=config.deployment_config.threshold,
        threshold_calibrated_on=config.deployment_config.threshold_calibrated_on,
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
    from ovmlv.modeling_ovmlv import LabelBank, OvmlvModel
    from ovmlv.processing import OvmlvProcessor

    check_model_source(str(model_path))  # a missing folder is named as one, not as a malformed Hub id
    logger.info(f"Loading {model_path}")
    model = OvmlvModel.from_pretrained(model_path)
    processor = OvmlvProcessor.from_pretrained(model_path)
    if vocab is not None:
        if model.label_bank is not None:
            logger.info(
                f"Replacing the folder's label bank ({len(model.label_bank)} labels) with the given vocabulary"
            )
        model.label_bank = LabelBank.build(model, processor, vocab)
    if model.label_bank is None:
        raise ExportError(
            f"{model_path} has no label bank: pass --vocab FILE with the training vocabulary (one label per line)."
        )
    out_dir = Path(out_dir)
    _check_out_dir(out_dir, Path(model_path), overwrite)
    logger.info(f"Writing the Hub folder {out_dir} ({len(model.label_bank)} labels in the label bank)")
    variant = variant or VariantOptions()
    with write_folder_atomically(out_dir) as folder:  # a kill leaves the previous export, or none, never a part
        towers = save_variant(model, processor, folder, variant)
        pickles = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.suffix in PICKLE_SUFFIXES)
        if pickles:
            raise ExportError(f"The export wrote pickle files {pickles}; only safetensors may be shipped.")
        card = build_model_card(
            model, processor, repo_id, eval_report, license, base_models, datasets, variant.variant, towers
        )
        card.save(folder / "README.md")
        write_export_checksums(folder)
    return out_dir


def write_export_checksums(folder: Path) -> None:
    """`checksums.json` for every file except those documented commands rewrite after an export: the card (edited
    on the Hub), config.json (`training.evaluate` writes a calibrated threshold) and the label bank (`ovmlv vocab`;
    it carries its own checksum and model fingerprint)."""
    from transformers.utils import CONFIG_NAME

    from ovmlv.modeling_ovmlv.checksums import write_checksums
    from ovmlv.modeling_ovmlv.label_bank import BANK_LABELS_NAME, BANK_WEIGHTS_NAME

    write_checksums(folder, exclude=("README.md", CONFIG_NAME, BANK_LABELS_NAME, BANK_WEIGHTS_NAME))


def _check_out_dir(out_dir: Path, model_path: Path, overwrite: bool) -> None:
    """`out_dir` may be replaced: replacing a non-empty one needs `overwrite`, and never the model's own folder."""
    out, source = out_dir.resolve(), model_path.resolve()
    if model_path.exists() and (source == out or source.is_relative_to(out)):
        raise ExportError(f"--out {out_dir} holds the model being exported; write the export to another folder.")
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"--out {out_dir} is a file; give a folder.")
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise ExportError(f"{out_dir} is not empty; pass --overwrite to replace it.")
