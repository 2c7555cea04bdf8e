"""OvmlvModel: scores any list of labels against a video, each label independently (sigmoid, not softmax)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch
from torch import nn
from transformers import CLIPConfig, CLIPModel, PreTrainedModel, T5Config
from transformers.dynamic_module_utils import custom_object_save
from transformers.utils import ModelOutput

from .configuration_ovmlv import PAIRED_LABEL_ENCODERS, OvmlvConfig
from .fixed_llm_prompts import LlmFixedPromptLabelEncoder
from .label_bank import LabelBank
from .label_encoder import ClassNameLabelEncoder, LabelEncoder, TemplateEnsembleLabelEncoder
from .llm_label_encoder import LlmLabelEncoder, LlmPromptedLabelEncoder
from .loss import weighted_multilabel_bce
from .method_presets import method_overrides
from .pipeline_ovmlv import PIPELINE_TASK, ZeroShotVideoClassificationPipeline
from .prompt_learning import CoOpLabelEncoder, DualCoOpLabelEncoder, PromptLearningLabelEncoder
from .temporal import TemporalBranch
from .video_encoder import FrameTokens, VideoEncoder

LABEL_ENCODER_CLASSES: dict[str, type[LabelEncoder]] = {
    "class_name": ClassNameLabelEncoder,
    "templates": TemplateEnsembleLabelEncoder,
    "llm_prompted": LlmPromptedLabelEncoder,
    "llm_fixed": LlmFixedPromptLabelEncoder,
    "coop": CoOpLabelEncoder,
    "dualcoop": DualCoOpLabelEncoder,
}


@dataclass
class OvmlvOutput(ModelOutput):
    """
    Args:
        loss: the weighted multi-label BCE, when `labels` (B, C) targets were given.
        logits_per_video: (B, C) = s / tau + b; `sigmoid` gives each label's probability.
        video_embeds: (B, D) unit-norm f_v(v).
        label_embeds: (C, D) unit-norm f_t(l); (C, 2D) [f_pos; f_neg] pairs for DualCoOp.
    """

    loss: torch.FloatTensor | None = None
    logits_per_video: torch.FloatTensor | None = None
    video_embeds: torch.FloatTensor | None = None
    label_embeds: torch.FloatTensor | None = None


class OvmlvPreTrainedModel(PreTrainedModel):
    config_class = OvmlvConfig
    base_model_prefix = "ovmlv"
    main_input_name = "pixel_values_videos"
    input_modalities = ("video", "text")
    supports_gradient_checkpointing = True
    _no_split_modules = ["CLIPEncoderLayer", "CLIPTextEmbeddings", "CLIPVisionEmbeddings", "T5Block"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, TemporalBranch):
            module.init_weights()
        if isinstance(module, LlmPromptedLabelEncoder):
            module.init_prefixes()
        if isinstance(module, PromptLearningLabelEncoder):
            module.init_contexts()
        if isinstance(module, OvmlvModel):
            module.logit_scale.fill_(math.log(1.0 / self.config.score_temperature))
            module.logit_bias.fill_(self.config.score_bias)


class OvmlvModel(OvmlvPreTrainedModel):
    """Open-vocabulary multi-label video classifier: p(l, v) = sigmoid(f_t(l) . f_v(v) / tau + b).

    Build it from pretrained towers with `from_towers` (the one front door); `from_pretrained` loads a saved
    model, including its label bank when the folder has one.
    """

    def __init__(self, config: OvmlvConfig):
        super().__init__(config)
        if config.label_encoder not in LABEL_ENCODER_CLASSES:
            raise ValueError(
                f"label_encoder={config.label_encoder!r} is not available; choose from {sorted(LABEL_ENCODER_CLASSES)}."
            )
        self.label_encoder = LABEL_ENCODER_CLASSES[config.label_encoder](config)
        self.video_encoder = VideoEncoder(config)
        # Shape (1,), not 0-dim: DeepSpeed cannot partition 0-dim parameters.
        self.logit_scale = nn.Parameter(torch.full((1,), math.log(1.0 / config.score_temperature)))
        self.logit_bias = nn.Parameter(torch.full((1,), float(config.score_bias)))
        self.label_bank: LabelBank | None = None
        self.post_init()
        self.freeze_pretrained_towers()

    def freeze_pretrained_towers(self) -> None:
        """Pretrained weights stay frozen unless the config says otherwise (the paper trains only new layers)."""
        self.logit_scale.requires_grad_(self.config.learnable_temperature)
        self.logit_bias.requires_grad_(self.config.learnable_bias)
        self.label_encoder.text_tower.requires_grad_(not self.config.freeze_text_tower)
        if isinstance(self.label_encoder, LlmLabelEncoder):
            self.label_encoder.freeze_llm()
        self.video_encoder.vision_tower.requires_grad_(not self.config.freeze_vision_backbone)

    def clip_initialised_parameter_names(self) -> set[str]:
        """Trainable parameters that start from CLIP weights: the recipe gives them no weight decay (DESIGN §4).

        Any parameter of a module with a `clip_initialised_modules()` method counts when that method lists it
        (e.g. the temporal branch's attention/MLP copied from CLIP layers), as do the CLIP towers when unfrozen.
        """
        modules = [self.label_encoder.text_tower, self.video_encoder.vision_tower]
        for module in self.modules():
            if hasattr(module, "clip_initialised_modules") and module is not self:
                modules += list(module.clip_initialised_modules())
        ids = {id(p) for module in modules for p in module.parameters()}
        return {name for name, p in self.named_parameters() if p.requires_grad and id(p) in ids}

    @classmethod
    def from_towers(
        cls,
        clip: str | os.PathLike,
        llm: str | os.PathLike | None = None,
        method: str | None = None,
        **config_overrides,
    ):
        """A new model on pretrained CLIP (+ T5) towers: Hub ids or local folders.

        method: a named method ("ovmlv", "coop", "dualcoop", "vifi_clip", ...; see `method_presets`), whose
            preset `config_overrides` then refine. `config_overrides` are `OvmlvConfig` fields (label_encoder,
            temporal_layers, ...). New layers are initialised as the method prescribes; the towers keep their
            pretrained weights.
        """
        config_overrides = method_overrides(method, **config_overrides)
        clip_config = CLIPConfig.from_pretrained(clip)
        llm_config = T5Config.from_pretrained(llm) if llm is not None else None
        config = OvmlvConfig(
            text_config=clip_config.text_config.to_dict(),
            vision_config=clip_config.vision_config.to_dict(),
            llm_config=None if llm_config is None else llm_config.to_dict(),
            projection_dim=clip_config.projection_dim,
            clip_name_or_path=str(clip),
            llm_name_or_path=None if llm is None else str(llm),
            **config_overrides,
        )
        model = cls(config)
        clip_model = CLIPModel.from_pretrained(clip)
        model.label_encoder.load_pretrained(clip_model, llm)
        model.video_encoder.load_pretrained(clip_model)
        return model

    def get_video_features(self, pixel_values_videos: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) or multi-clip (B, clips, T, 3, H, W) -> (B, D) unit norm.

        Multi-clip embeddings are the re-normalised mean of the clips' embeddings (4 x 8 frames at evaluation).
        """
        return self._embed_clips(*self._encode_clips(pixel_values_videos))

    def _encode_clips(self, pixel_values_videos: torch.Tensor) -> tuple[FrameTokens, int]:
        """The backbone pass over every clip of every video (clips flattened into the batch), and the clip count."""
        if pixel_values_videos.dim() == 5:
            return self.video_encoder.encode_frames(pixel_values_videos), 1
        if pixel_values_videos.dim() != 6:
            raise ValueError(
                "pixel_values_videos must be (batch, frames, 3, H, W) or (batch, clips, frames, 3, H, W), got shape "
                f"{tuple(pixel_values_videos.shape)}."
            )
        return self.video_encoder.encode_frames(pixel_values_videos.flatten(0, 1)), pixel_values_videos.shape[1]

    def _embed_clips(self, tokens: FrameTokens, clips: int, toward_clip: float = 0.0) -> torch.Tensor:
        """FrameTokens of B * clips clips -> (B, D): the re-normalised mean of each video's clip embeddings."""
        clip_embeds = self.video_encoder.embed(tokens, toward_clip).unflatten(0, (-1, clips))  # (B, clips, D)
        return nn.functional.normalize(clip_embeds.mean(dim=1), dim=-1)

    def patch_temporal_branch(self, ratio: float) -> None:
        """Test-time patching (Open-VCLIP's trade-off knob): move the temporal branch's CLIP-initialised weights
        toward CLIP's, theta = (1 - ratio) theta_ft + ratio theta_clip, in place. 0 keeps the fine-tuned branch,
        1 restores CLIP's weights exactly; the temporal attention, Proj_t, positions and TMP gate are kept."""
        if not 0 <= ratio <= 1:
            raise ValueError(f"patch_temporal_branch: ratio must lie in [0, 1], got {ratio}.")
        branch = self.video_encoder.temporal_branch
        if branch is None:
            return
        with torch.no_grad():
            for name, value in branch.interpolated_weights(ratio).items():
                branch.get_parameter(name).copy_(value)

    def weight_interpolation_loss(
        self, tokens: FrameTokens, clips: int, label_embeds: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """The weight regulariser (paper §3.2, DESIGN §2.3): the same loss, scored with the branch's
        CLIP-initialised weights at alpha theta_ft + (1 - alpha) theta_clip, alpha ~ U(0, lambda) drawn once per
        step from torch's global generator (`torch.manual_seed` / accelerate's `set_seed` make it repeatable).
        Only the branch is re-run, on the backbone tokens of the main pass; gradients reach theta_ft."""
        alpha = self.config.weight_interpolation_max * torch.rand(()).item()
        video_embeds = self._embed_clips(tokens, clips, toward_clip=1.0 - alpha)
        return weighted_multilabel_bce(self.logits(video_embeds, label_embeds), labels, self.config.negative_weight)

    def get_label_features(self, **label_inputs: torch.Tensor) -> torch.Tensor:
        """Processor text outputs -> (C, D) unit-norm label embeddings f_t(l) ((C, 2D) pairs for DualCoOp)."""
        encoder = self.label_encoder
        missing = [name for name in encoder.input_names if label_inputs.get(name) is None]
        if missing:
            raise ValueError(
                f"label_encoder={self.config.label_encoder!r} needs {missing}: build the label inputs with "
                "OvmlvProcessor(text=[...]) from the same towers."
            )
        return encoder(**{name: label_inputs[name] for name in encoder.input_names})

    def logits(self, video_embeds: torch.Tensor, label_embeds: torch.Tensor) -> torch.Tensor:
        """(B, D) x (C, D) -> (B, C) logits s / tau + b; the one place scores are made.

        DualCoOp's label embeddings are (C, 2D) pairs [f_pos; f_neg] and s = s_pos - s_neg, so that (with b = 0)
        sigmoid(logits) is the softmax over (s_pos, s_neg) / tau taken at the positive.
        """
        if label_embeds.shape[-1] != self.config.label_embedding_dim:
            raise ValueError(
                f"label_encoder={self.config.label_encoder!r} scores {self.config.label_embedding_dim}-wide label "
                f"embeddings, got {tuple(label_embeds.shape)}: were they made by another model?"
            )
        label_embeds = label_embeds.to(video_embeds.dtype)
        if self.config.label_encoder in PAIRED_LABEL_ENCODERS:
            positive, negative = label_embeds.chunk(2, dim=-1)
            label_embeds = positive - negative  # f_v . f_pos - f_v . f_neg
        similarity = video_embeds @ label_embeds.T
        return similarity * self.logit_scale.exp() + self.logit_bias

    def forward(
        self,
        pixel_values_videos: torch.Tensor,
        label_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **label_inputs: torch.Tensor,
    ) -> OvmlvOutput | tuple:
        """Score every video against every label.

        label_embeds: precomputed (C, D) (DualCoOp: (C, 2D)) label embeddings (e.g. from a `LabelBank`); otherwise they are encoded
            from `label_inputs` (the processor's text outputs).
        labels: optional (B, C) multi-hot targets; the loss is the paper's weighted BCE, plus in training the
            weight regulariser (`weight_interpolation_loss`) when `config.weight_interpolation_loss_weight > 0`.
        """
        tokens, clips = self._encode_clips(pixel_values_videos)
        video_embeds = self._embed_clips(tokens, clips)
        if label_embeds is None:
            label_embeds = self.get_label_features(**label_inputs)
        logits_per_video = self.logits(video_embeds, label_embeds)
        loss = None
        if labels is not None:
            loss = weighted_multilabel_bce(logits_per_video, labels, self.config.negative_weight)
            reg_weight = self.config.weight_interpolation_loss_weight
            if self.training and reg_weight > 0 and self.video_encoder.temporal_branch is not None:
                loss = loss + reg_weight * self.weight_interpolation_loss(tokens, clips, label_embeds, labels)
        output = OvmlvOutput(
            loss=loss, logits_per_video=logits_per_video, video_embeds=video_embeds, label_embeds=label_embeds
        )
        return output if return_dict is not False else output.to_tuple()

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs) -> None:
        """Also writes the label bank and the pipeline code, so the folder works with `trust_remote_code=True`."""
        self.config.custom_pipelines = {
            PIPELINE_TASK: {
                "impl": f"pipeline_ovmlv.{ZeroShotVideoClassificationPipeline.__name__}",
                "pt": ["AutoModel"],
                "tf": [],
                "type": "multimodal",
            }
        }
        super().save_pretrained(save_directory, **kwargs)
        custom_object_save(ZeroShotVideoClassificationPipeline, save_directory)
        if self.label_bank is not None:
            self.label_bank.save(save_directory)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args, **kwargs):
        model = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        # Loading puts fresh (trainable) parameters in place: freeze again what the config keeps frozen.
        model.freeze_pretrained_towers()
        model.video_encoder.refresh_clip_reference()
        if model.config.temporal_patch_ratio:
            # Applied once: the config then describes the (patched) weights it sits beside, so a re-save and
            # re-load does not patch twice.
            model.patch_temporal_branch(model.config.temporal_patch_ratio)
            model.config.temporal_patch_ratio = 0.0
        hub_kwargs = {
            key: kwargs[key] for key in ("cache_dir", "revision", "token", "local_files_only") if key in kwargs
        }
        model.label_bank = LabelBank.from_pretrained(pretrained_model_name_or_path, **hub_kwargs)
        return model
