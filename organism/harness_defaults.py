"""Where the research harness's commands start from (the organism towers, the recipe, the output folders, the
compared methods and variants), light to import: `ovmlv demo|compare|claims|budget --help` shows them without
waiting for torch, and the harness modules read them from here."""

from __future__ import annotations

from pathlib import Path

from ovmlv.training.config import OptimizerConfig
from ovmlv.yaml_files import load_yaml

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "training" / "configs" / "synthetic_tiny.yaml"
ORGANISM_TOWERS = REPO / "organism" / "towers"  # clip/ and t5/, made by `ovmlv organism`
# --quick: enough to run every step end to end in seconds, not to learn anything.
QUICK_STEPS = 3
TOKENIZERS_DIR = REPO / "organism" / "tiny_tokenizers"  # the tiny towers' tokenizers, remade by `ovmlv tiny-towers`
DEMO_OUT, QUICK_OUT = Path("outputs/demo"), Path("outputs/demo_quick")
DEFAULT_METHODS = (
    "ovmlv",
    "ovmlv_no_temporal",
    "coop",
    "dualcoop",
    "vifi_clip",
    "vilt_clip",
    "class_name",
    "templates",
)
BUDGET_REFERENCE = "frozen CLIP, class names"
BUDGET_VARIANTS = ("ovmlv (T=4 parallel, paper)", "branch + class names")


def default_steps(quick: bool) -> int:
    """The recipe's training steps, or `QUICK_STEPS` for a smoke test. Read from the YAML alone: validating the
    whole recipe would import the model (torch), and `ovmlv demo --help` shows this number."""
    if quick:
        return QUICK_STEPS
    optimizer = (load_yaml(RECIPE.read_text(encoding="utf-8"), str(RECIPE)) or {}).get("optimizer") or {}
    return int(optimizer.get("max_steps", OptimizerConfig.max_steps))
