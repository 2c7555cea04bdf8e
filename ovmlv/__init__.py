"""ovmlv: open-vocabulary multi-label video classification (Gupta et al., ECCV 2024) on Hugging Face transformers.

The one import root of the installed package: `ovmlv.modeling_ovmlv` (the model, shipped with every saved model),
`ovmlv.processing` (video decoding and the processor, shipped too), `ovmlv.training`, `ovmlv.hub_cards` and
`ovmlv.video_library`; `ovmlv.organism`, the research harness built on them (the synthetic world, the model organism
and the experiments on it); the `ovmlv` command is `ovmlv.cli`, and what its commands share sits beside it (loading
a saved model, Hub access, tables, the Gradio app: README.md here).

Importing it is instant (no torch, no transformers): the `zero-shot-video-classification` pipeline task joins
transformers' registry when `transformers.pipelines` is imported, and the names below load on first use
(`ovmlv.registration`).
"""

from __future__ import annotations

import importlib

from .registration import install_pipeline_task

install_pipeline_task()

# Public name -> the module that defines it, imported on first access (PEP 562).
_LAZY_EXPORTS = {
    "METHODS": "ovmlv.modeling_ovmlv",
    "METHOD_PRESETS": "ovmlv.modeling_ovmlv",
    "LabelBank": "ovmlv.modeling_ovmlv",
    "OvmlvConfig": "ovmlv.modeling_ovmlv",
    "OvmlvModel": "ovmlv.modeling_ovmlv",
    "OvmlvOutput": "ovmlv.modeling_ovmlv",
    "ZeroShotVideoClassificationPipeline": "ovmlv.modeling_ovmlv",
    "OvmlvProcessor": "ovmlv.processing",
    "VideoDecodeError": "ovmlv.processing",
    "load_video": "ovmlv.processing",
}

__all__ = sorted(_LAZY_EXPORTS)


def __getattr__(name: str):
    if name not in _LAZY_EXPORTS:
        raise AttributeError(f"module 'ovmlv' has no attribute {name!r}")
    from .registration import register_auto_classes

    register_auto_classes()
    value = getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY_EXPORTS])
