"""`OvmlvConfig` against a config.json that ovmlv wrote before issue #25 (every saved model must keep loading with the
values it was saved with), and its defaults against the processor's, which own the video settings."""

from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path

from ovmlv.modeling_ovmlv import OvmlvConfig
from ovmlv.processing.processing_ovmlv import DEFAULT_NUM_FRAMES
from ovmlv.training.config import TrainConfig

# Written by `save_pretrained` of a tiny model with non-default values, before issue #25 (commit ba609bb).
SAVED_BEFORE = Path(__file__).parent / "fixtures" / "config_before_issue25.json"


def saved_values(config: OvmlvConfig) -> dict:
    return json.loads(config.to_json_string())


def test_a_config_saved_before_issue_25_loads_with_every_value(tmp_path):
    shutil.copy(SAVED_BEFORE, tmp_path / "config.json")
    saved = json.loads(SAVED_BEFORE.read_text(encoding="utf-8"))
    config = OvmlvConfig.from_pretrained(tmp_path)
    own_fields = set(inspect.signature(OvmlvConfig.__init__).parameters) - set(OvmlvConfig.sub_configs)
    for field, value in saved.items():
        if field in OvmlvConfig.sub_configs:  # the towers' configs: every value saved is read back
            loaded = json.loads(getattr(config, field).to_json_string(use_diff=False))
            assert {key: loaded.get(key) for key in value} == value, field
        elif field in own_fields:  # read as a user reads them, `config.temporal_layers`
            assert getattr(config, field) == value, field
        elif field != "transformers_version":  # transformers' own (architectures, auto_map, dtype, ...)
            assert config.to_dict()[field] == value, field
    config.save_pretrained(tmp_path / "again")
    assert saved_values(OvmlvConfig.from_pretrained(tmp_path / "again")) == saved_values(config)


def test_every_frame_count_defaults_to_the_processors():
    """The model's config cannot import the processor (each folder ships alone): its default is held equal here."""
    assert inspect.signature(OvmlvConfig.__init__).parameters["temporal_positions"].default == DEFAULT_NUM_FRAMES
    config = TrainConfig()
    assert config.data.num_frames == config.eval.num_frames == DEFAULT_NUM_FRAMES
