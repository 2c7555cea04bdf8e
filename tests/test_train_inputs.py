"""What a training run refuses up front: an output folder holding another run, a vocabulary label the text tower
cannot take, a config value of the wrong type. Each fails before the first step, in a sentence."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from ovmlv.training import train
from ovmlv.training.checkpointing import CHECKPOINTS_DIR
from ovmlv.training.config import load_config
from tests.process_state import reset_accelerate_state
from tests.test_training import tiny_config

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")

LONG_LABEL = " ".join(["red"] * 80)


def old_run(output_dir: Path) -> dict[str, bytes]:
    """An output folder as an earlier, longer run left it; returns its files' contents."""
    (output_dir / CHECKPOINTS_DIR / "step_6").mkdir(parents=True)
    (output_dir / CHECKPOINTS_DIR / "step_6" / "model.safetensors").write_bytes(b"the old run's weights")
    (output_dir / "final").mkdir()
    (output_dir / "final" / "config.json").write_text("{}")
    return contents(output_dir)


def contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_new_run_refuses_a_folder_that_holds_a_run(tmp_path, towers, synthetic):
    output_dir = tmp_path / "run"
    before = old_run(output_dir)
    config = tiny_config(tmp_path / "config.yaml", towers, synthetic, output_dir)
    with pytest.raises(FileExistsError, match="already holds a run .*: pass --resume to continue it, --overwrite"):
        train.main(["--config", str(config)])
    assert contents(output_dir) == before  # not a byte written
    with pytest.raises(ValueError, match="--resume continues the run in output_dir, --overwrite deletes it"):
        train.main(["--config", str(config), "--resume", "--overwrite"])
    with pytest.raises(ValueError, match="--overwrite would delete .* which holds the working directory"):
        train.main(["--config", str(config), "--overwrite", "--output_dir", "."])


def test_overwrite_starts_afresh_and_resume_then_continues_the_new_run(tmp_path, towers, synthetic):
    output_dir = tmp_path / "run"
    old_run(output_dir)
    config = tiny_config(tmp_path / "config.yaml", towers, synthetic, output_dir)
    train.main(["--config", str(config), "--overwrite", "--eval.every_steps", "0"])
    assert sorted(p.name for p in (output_dir / CHECKPOINTS_DIR).iterdir()) == ["step_2", "step_4"]
    assert (output_dir / "final" / "model.safetensors").is_file()  # the old final/ is gone with the old run
    reset_accelerate_state()
    summary = train.main(["--config", str(config), "--resume", "--eval.every_steps", "0"])
    assert summary["completed_steps"] == 4 and summary["processes"][0]["steps_this_run"] == 0


@pytest.mark.parametrize(
    "vocabulary, where", [("vocab_train.txt", "the training vocabulary"), ("vocab_all.txt", "'val'")]
)
def test_a_label_too_long_fails_before_the_first_step(tmp_path, towers, synthetic, vocabulary, where):
    data = shutil.copytree(synthetic, tmp_path / "data")
    with (data / vocabulary).open("a") as file:
        file.write(f"\n{LONG_LABEL}\n")
    output_dir = tmp_path / "run"
    config = tiny_config(tmp_path / "config.yaml", towers, data, output_dir)
    with pytest.raises(ValueError, match=f"1 label\\(s\\) in .*{where}.* are too long for CLIP's text tower"):
        train.main(["--config", str(config)])
    assert not (output_dir / CHECKPOINTS_DIR).exists()


def test_a_config_value_of_the_wrong_type_names_the_field(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"model": {"temporal_layers": "four"}}))
    with pytest.raises(ValueError, match="model.temporal_layers: expected a number, got 'four'"):
        load_config(path)
    with pytest.raises(ValueError, match="model.freeze_prefixes: expected true or false"):
        load_config(None, ["--model.freeze_prefixes", "3"])
    assert load_config(None, ["--model.text_config", "{hidden_size: 8}"]).model == {"text_config": {"hidden_size": 8}}
