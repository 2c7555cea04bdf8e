"""`OvmlvConfig` against a config.json that ovmlv wrote before issue #25 (every saved model must keep loading with the
values it was saved with), and its defaults against the processor's, which own the video settings."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from ovmlv.modeling_ovmlv import OvmlvConfig, OvmlvModel
from ovmlv.modeling_ovmlv.configuration_ovmlv import FIELD_GROUPS, GROUP_CONFIGS, OvmlvTemporalConfig
from ovmlv.processing.processing_ovmlv import DEFAULT_NUM_FRAMES
from ovmlv.training.config import TrainConfig

# Written by `save_pretrained` of a tiny model with non-default values, before issue #25 (commit ba609bb).
SAVED_BEFORE = Path(__file__).parent / "fixtures" / "config_before_issue25.json"


def saved_values(config: OvmlvConfig) -> dict:
    return json.loads(config.to_json_string())


def test_a_config_saved_before_issue_25_loads_with_every_value(tmp_path):
    """Every field was saved at the top then; each is read back in its group, and saved again grouped."""
    shutil.copy(SAVED_BEFORE, tmp_path / "config.json")
    saved = json.loads(SAVED_BEFORE.read_text(encoding="utf-8"))
    config = OvmlvConfig.from_pretrained(tmp_path)
    towers = {"text_config", "vision_config", "llm_config"}
    own_fields = set(vars(OvmlvConfig)["__annotations__"]) | set(FIELD_GROUPS)
    for field, value in saved.items():
        if field in towers:  # the towers' configs: every value saved is read back
            loaded = json.loads(getattr(config, field).to_json_string(use_diff=False))
            assert {key: loaded.get(key) for key in value} == value, field
        elif field in own_fields:  # read as a user reads them, `config.temporal_config.temporal_layers`
            assert config.field_value(field) == value, field
        elif field != "transformers_version":  # transformers' own (architectures, auto_map, dtype, ...)
            assert config.to_dict()[field] == value, field
    assert config.temporal_config.temporal_layers == saved["temporal_layers"] == 1
    config.save_pretrained(tmp_path / "again")
    again = json.loads((tmp_path / "again" / "config.json").read_text(encoding="utf-8"))
    assert set(GROUP_CONFIGS) <= set(again) and not set(FIELD_GROUPS) & set(again)  # saved grouped
    assert again["temporal_config"]["temporal_pooling"] == "branch_frames"
    assert saved_values(OvmlvConfig.from_pretrained(tmp_path / "again")) == saved_values(config)


def test_a_model_folder_saved_before_issue_25_loads_its_weights_and_settings(tmp_path):
    """A whole saved model whose config.json is the flat one: its weights load, not freshly initialised ones."""
    config = OvmlvConfig.from_json_file(SAVED_BEFORE)
    model = OvmlvModel(config)
    model.save_pretrained(tmp_path)
    shutil.copy(SAVED_BEFORE, tmp_path / "config.json")  # the folder as today's code wrote it
    loaded = OvmlvModel.from_pretrained(tmp_path)
    assert loaded.config.deployment_config.threshold == 0.375
    assert loaded.config.temporal_config.temporal_pooling == "branch_frames"
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name


def test_fields_given_by_name_join_their_group_and_win_over_it():
    config = OvmlvConfig(label_encoder="class_name", temporal_config={"temporal_layers": 3, "temporal_mode": "serial"})
    assert (config.temporal_config.temporal_layers, config.temporal_config.temporal_mode) == (3, "serial")
    config = OvmlvConfig(label_encoder="class_name", temporal_config={"temporal_layers": 3}, temporal_layers=1)
    assert config.temporal_config.temporal_layers == 1
    with pytest.raises(ValueError, match="OvmlvConfig.temporal_config.temporal_mode='sideways' is not one of"):
        OvmlvConfig(label_encoder="class_name", temporal_mode="sideways")
    with pytest.raises(ValueError, match="OvmlvConfig.deployment_config.threshold must lie in"):
        OvmlvConfig(label_encoder="class_name", deployment_config={"threshold": 2.0})


def test_every_frame_count_defaults_to_the_processors():
    """The model's config cannot import the processor (each folder ships alone): its default is held equal here."""
    assert OvmlvTemporalConfig().temporal_positions == DEFAULT_NUM_FRAMES
    config = TrainConfig()
    assert config.data.num_frames == config.eval.num_frames == DEFAULT_NUM_FRAMES
