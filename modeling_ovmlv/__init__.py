"""The model: `OvmlvConfig`, `OvmlvModel`, the label bank and the `zero-shot-video-classification` pipeline.

These files are copied flat into every saved model folder and loaded with `trust_remote_code=True` where ovmlv is
not installed, so they import only each other, torch, numpy and transformers. Importing this package registers the
model with AutoConfig and AutoModel in this process, and defines every model class (`OvmlvModel.from_pretrained`
loads a fixed-vocabulary folder as the class its config names); `import ovmlv` registers the pipeline task
(`ovmlv.registration`).
"""

from transformers import AutoConfig, AutoModel

from .configuration_ovmlv import OvmlvConfig
from .fixed_vocabulary import OvmlvFixedVocabularyModel
from .label_bank import LabelBank
from .method_presets import METHOD_PRESETS, METHODS
from .modeling_ovmlv import OvmlvModel, OvmlvOutput, OvmlvPreTrainedModel
from .pipeline_ovmlv import PIPELINE_TASK, ZeroShotVideoClassificationPipeline

# Saved configs name these classes in `auto_map`, so a saved folder loads with AutoConfig/AutoModel.
OvmlvConfig.register_for_auto_class()
OvmlvModel.register_for_auto_class("AutoModel")
# In this process, AutoConfig and AutoModel load a saved folder with these classes (no `trust_remote_code`).
AutoConfig.register(OvmlvConfig.model_type, OvmlvConfig, exist_ok=True)
AutoModel.register(OvmlvConfig, OvmlvModel, exist_ok=True)

__all__ = [
    "LabelBank",
    "METHODS",
    "METHOD_PRESETS",
    "OvmlvConfig",
    "OvmlvFixedVocabularyModel",
    "OvmlvModel",
    "OvmlvOutput",
    "OvmlvPreTrainedModel",
    "PIPELINE_TASK",
    "ZeroShotVideoClassificationPipeline",
]
