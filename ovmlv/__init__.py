"""ovmlv: open-vocabulary multi-label video classification (Gupta et al., ECCV 2024) on Hugging Face transformers.

The one import root of the installed package: `ovmlv.modeling_ovmlv` (the model, shipped with every saved model),
`ovmlv.processing` (video decoding and the processor, shipped too), `ovmlv.training`, `ovmlv.hub_cards` and
`ovmlv.video_library`; the `ovmlv` command is `ovmlv.cli`. Importing it registers the model with AutoConfig,
AutoModel and AutoProcessor and the `zero-shot-video-classification` pipeline task in this process.
"""

from transformers import AutoConfig, AutoModel, AutoProcessor
from transformers.pipelines import PIPELINE_REGISTRY

from .modeling_ovmlv import (
    METHOD_PRESETS,
    METHODS,
    PIPELINE_TASK,
    LabelBank,
    OvmlvConfig,
    OvmlvModel,
    OvmlvOutput,
    ZeroShotVideoClassificationPipeline,
)
from .processing import OvmlvProcessor, VideoDecodeError, load_video

AutoConfig.register(OvmlvConfig.model_type, OvmlvConfig, exist_ok=True)
AutoModel.register(OvmlvConfig, OvmlvModel, exist_ok=True)
AutoProcessor.register(OvmlvConfig, OvmlvProcessor, exist_ok=True)
PIPELINE_REGISTRY.register_pipeline(
    PIPELINE_TASK, pipeline_class=ZeroShotVideoClassificationPipeline, pt_model=AutoModel, type="multimodal"
)

__all__ = [
    "METHODS",
    "METHOD_PRESETS",
    "LabelBank",
    "OvmlvConfig",
    "OvmlvModel",
    "OvmlvOutput",
    "OvmlvProcessor",
    "VideoDecodeError",
    "ZeroShotVideoClassificationPipeline",
    "load_video",
]
