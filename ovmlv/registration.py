"""How ovmlv joins transformers in this process without making `import ovmlv` wait for torch.

`import ovmlv` imports nothing heavy: it installs `install_pipeline_task`, which adds the
`zero-shot-video-classification` task to transformers' pipeline registry the moment `transformers.pipelines` is
imported (at once when it already is). The task names the pipeline class by its dotted path, as transformers' own
tasks do, so the model code loads only when `pipeline(...)` is called. `AutoConfig` and `AutoModel` learn the ovmlv
classes when `ovmlv.modeling_ovmlv` is imported; `AutoProcessor` when `register_auto_classes` runs (on the first
`from ovmlv import ...` of a model class, and before `pipeline(...)` loads a model).
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Callable

PIPELINE_TASK = "zero-shot-video-classification"  # `modeling_ovmlv.pipeline_ovmlv.PIPELINE_TASK`, without torch
PIPELINE_CLASS = "ovmlv.modeling_ovmlv.pipeline_ovmlv.ZeroShotVideoClassificationPipeline"
PIPELINES_MODULE = "transformers.pipelines"


def register_auto_classes() -> None:
    """AutoConfig, AutoModel and AutoProcessor load ovmlv folders in this process (no `trust_remote_code`)."""
    from transformers import AutoProcessor

    from ovmlv.modeling_ovmlv import OvmlvConfig  # registers AutoConfig and AutoModel
    from ovmlv.processing import OvmlvProcessor

    AutoProcessor.register(OvmlvConfig, OvmlvProcessor, exist_ok=True)


class OvmlvAutoModel:
    """The model class `pipeline("zero-shot-video-classification", model=NAME)` loads NAME with: ovmlv's own, so
    that a saved ovmlv model loads as itself and a plain CLIP checkpoint as the frozen zero-shot model
    (`OvmlvModel.from_pretrained`), where `AutoModel` would give a bare `CLIPModel`."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        register_auto_classes()  # the pipeline then finds the processor of a plain checkpoint's wrapped model
        from ovmlv.modeling_ovmlv import OvmlvModel

        return OvmlvModel.from_pretrained(pretrained_model_name_or_path, *args, **kwargs)


def register_pipeline_task() -> None:
    """Add the task to transformers' registry; `transformers.pipelines` must be imported (it is, when called)."""
    from transformers.pipelines import PIPELINE_REGISTRY

    PIPELINE_REGISTRY.supported_tasks[PIPELINE_TASK] = {
        "impl": PIPELINE_CLASS,  # imported by `pipeline()` on use, as transformers' own tasks are
        "pt": (OvmlvAutoModel,),
        "type": "multimodal",
    }


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs `callback` once, right after the module `name` is first imported (a post-import hook)."""

    def __init__(self, name: str, callback: Callable[[], None]):
        self.name = name
        self.callback = callback

    def find_spec(self, fullname, path, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)  # once; the other finders find the real module
        spec = next(
            (
                spec
                for finder in sys.meta_path
                if hasattr(finder, "find_spec") and (spec := finder.find_spec(fullname, path, target)) is not None
            ),
            None,
        )
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module, callback = spec.loader.exec_module, self.callback

        def exec_then_register(module) -> None:  # this module's loader only: others keep theirs
            exec_module(module)
            callback()

        spec.loader.exec_module = exec_then_register
        return spec


def install_pipeline_task() -> None:
    """Register the task now if transformers' pipelines are loaded, else the moment they are (idempotent)."""
    if PIPELINES_MODULE in sys.modules:
        register_pipeline_task()
    elif not any(isinstance(finder, _AfterImport) and finder.name == PIPELINES_MODULE for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport(PIPELINES_MODULE, register_pipeline_task))
