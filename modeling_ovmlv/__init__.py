"""Open-vocabulary multi-label video classification (Gupta et al., ECCV 2024) for transformers.

Importing this package registers the model with AutoConfig/AutoModel and the
`zero-shot-video-classification` pipeline task.
"""

from transformers import AutoConfig, AutoModel, AutoProcessor
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_ovmlv import OvmlvConfig
from .label_bank import LabelBank
from .method_presets import METHOD_PRESETS, METHODS
from .modeling_ovmlv import OvmlvModel, OvmlvOutput, OvmlvPreTrainedModel
from .pipeline_ovmlv import PIPELINE_TASK, ZeroShotVideoClassificationPipeline

AutoConfig.register(OvmlvConfig.model_type, OvmlvConfig, exist_ok=True)
AutoModel.register(OvmlvConfig, OvmlvModel, exist_ok=True)
OvmlvConfig.register_for_auto_class()
OvmlvModel.register_for_auto_class("AutoModel")
PIPELINE_REGISTRY.register_pipeline(
    PIPELINE_TASK, pipeline_class=ZeroShotVideoClassificationPipeline, pt_model=AutoModel, type="multimodal"
)

try:  # the processor lives in the sibling package; register it when both are installed
    from processing import OvmlvProcessor
except ImportError:
    pass
else:
    AutoProcessor.register(OvmlvConfig, OvmlvProcessor, exist_ok=True)

__all__ = [
    "LabelBank",
    "METHODS",
    "METHOD_PRESETS",
    "OvmlvConfig",
    "OvmlvModel",
    "OvmlvOutput",
    "OvmlvPreTrainedModel",
    "ZeroShotVideoClassificationPipeline",
]
