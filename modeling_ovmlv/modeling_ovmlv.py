"""OvmlvModel: scores any list of labels against a video, each label independently (sigmoid, not softmax)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel, T5ForConditionalGeneration
from transformers.dynamic_module_utils import custom_object_save
from transformers.utils import CONFIG_NAME, ModelOutput, cached_file
from transformers.utils import logging as hf_logging

from .checksums import verify_model_checksums
from .configuration_ovmlv import OvmlvConfig
from .deep_prompts import DeepPrompts
from .direction_head import LabelDirection, VideoDirection
from .label_bank import LabelBank, save_bank_beside, usable_bank
from .label_encoder import LabelEncoder, TokenizerSource, TokenizerSources
from .label_encoder_registry import LABEL_ENCODERS
from .llm_label_encoder import LlmLabelEncoder, LlmPromptedLabelEncoder
from .loss import weighted_multilabel_bce
from .method_presets import method_overrides
from .pipeline_ovmlv import PIPELINE_TASK, ZeroShotVideoClassificationPipeline
from .prompt_connectors import PromptTransformer
from .prompt_learning import PromptLearningLabelEncoder
from .saved_variants import TowerCheckpoints, saved_architecture
from .score_head import ScoreHead
from .temporal import TemporalBranch
from .towers import TOWER_KINDS, check_tower_kind, joint_embedding_dim, load_vision_language_model, score_settings
from .video_encoder import FrameTokens, VideoEncoder
from .weights_fingerprint import label_encoder_fingerprint, model_weights_files

# The pretrained towers inside the model; every one of their weights must come from the checkpoints.
TOWER_PREFIXES = ("label_encoder.text_tower.", "label_encoder.llm.", "video_encoder.vision_tower.")
LLM_TOKENIZER_SUBFOLDER = "llm_tokenizer"  # where OvmlvProcessor saves the T5 tokenizer
# Plain checkpoints (no ovmlv weights) that `from_pretrained` serves as the frozen zero-shot model, by their config's
# `model_type`: the vision-language towers `from_towers` loads (CLIP, SigLIP, SigLIP 2).
ZERO_SHOT_MODEL_TYPES = tuple(TOWER_KINDS)
# The label inputs the direction head reads: the bare labels and their time reversals (`OvmlvProcessor`).
DIRECTION_INPUT_NAMES = ("input_ids", "attention_mask", "reversed_input_ids", "reversed_attention_mask")
ZERO_SHOT_METHOD = "templates"  # the prompt-template ensemble, frame mean (T = 0): nothing to train


def checkpoint_model_type(name_or_path: str | os.PathLike, **hub_kwargs) -> str | None:
    """The `model_type` in a checkpoint's config.json ("ovmlv", "clip", ...), or None without one."""
    found = cached_file(name_or_path, CONFIG_NAME, _raise_exceptions_for_missing_entries=False, **hub_kwargs)
    return None if found is None else json.loads(Path(found).read_text(encoding="utf-8")).get("model_type")


def hub_id(name_or_path: str | os.PathLike | None) -> str | None:
    """`name_or_path` when it names a Hub repo, None when it is a local folder: a saved config must not carry a path
    that exists only on the machine that made it."""
    if name_or_path is None or Path(name_or_path).exists():
        return None
    return str(name_or_path)


def portable(config: PretrainedConfig) -> dict:
    """A tower's config as a dict without the path it was loaded from (a local path means nothing elsewhere)."""
    return {key: value for key, value in config.to_dict().items() if key != "_name_or_path"}


@contextmanager
def quiet_transformers_logs() -> Iterator[None]:
    """Errors only: building from towers leaves the new layers "missing" from the checkpoint, as they should be."""
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)


def load_towers(
    clip: str | os.PathLike,
    llm: str | os.PathLike | None = None,
    clip_revision: str | None = None,
    llm_revision: str | None = None,
    **hub_kwargs,
) -> tuple[PreTrainedModel, T5ForConditionalGeneration | None]:
    """The pretrained CLIP (or SigLIP) and T5 (None without `llm`) as their checkpoints hold them: Hub ids (at a
    revision) or local folders."""
    clip_model = load_vision_language_model(clip, revision=clip_revision, **hub_kwargs)
    if llm is None:
        return clip_model, None
    with quiet_transformers_logs():  # an own lm_head (Flan-T5) is "not tied" by its forced config: expected
        llm_model = T5ForConditionalGeneration.from_pretrained(llm, revision=llm_revision, **hub_kwargs)
    # What the checkpoint holds decides, not its config: transformers 5 forces T5's tie flag to True.
    llm_model.config.tie_word_embeddings = llm_model.lm_head.weight is llm_model.shared.weight
    return clip_model, llm_model


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
    # Every attention goes through transformers' attention functions. Flash attention cannot add T5's relative
    # position bias, which the LLM label encoder's decoding needs.
    _supports_sdpa = True
    _supports_flash_attn = False
    _no_split_modules = [
        "CLIPEncoderLayer",
        "CLIPTextEmbeddings",
        "CLIPVisionEmbeddings",
        "SiglipEncoderLayer",
        "SiglipTextEmbeddings",
        "SiglipVisionEmbeddings",
        "SiglipMultiheadAttentionPoolingHead",
        "Siglip2EncoderLayer",
        "Siglip2TextEmbeddings",
        "Siglip2VisionEmbeddings",
        "Siglip2MultiheadAttentionPoolingHead",
        "T5Block",
        "TemporalBlock",
    ]
    # Flan-T5 overflows in fp16 (its own code clamps; our decode loop does not): loaded in fp16, the T5 stays fp32.
    _keep_in_fp32_modules = ["label_encoder.llm."]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """New layers as the method prescribes; called after the towers' weights are in place (`from_towers`), so
        inits that read them (prefixes from T5's embeddings, the prompt scale from CLIP's) see the real ones.

        transformers calls this only for modules with parameters of their own that were not loaded, so each
        module with a custom init holds a parameter directly (`PromptTransformer.positions`, `ScoreHead`).
        """
        super()._init_weights(module)
        if isinstance(module, TemporalBranch):
            module.init_weights()
        if isinstance(module, LlmPromptedLabelEncoder):
            module.init_weights()
        if isinstance(module, PromptTransformer):
            module.init_weights(self.label_encoder.text_tower.token_embedding.weight)
        if isinstance(module, PromptLearningLabelEncoder):
            module.init_contexts()
        if isinstance(module, DeepPrompts):
            module.init_prompts()
        if isinstance(module, (ScoreHead, VideoDirection, LabelDirection)):
            module.init_weights()


class OvmlvModel(OvmlvPreTrainedModel):
    """Open-vocabulary multi-label video classifier: p(l, v) = sigmoid(f_t(l) . f_v(v) / tau + b).

    Build it from pretrained towers with `from_towers` (the one front door); `from_pretrained` loads a saved
    model, including its label bank when the folder has one.
    """

    def __init__(self, config: OvmlvConfig):
        super().__init__(config)
        self.label_encoder = self.build_label_encoder(config)
        self.video_encoder = VideoEncoder(config)
        # ViLT-CLIP's prompts: the model's, as both towers read them (`vilt_clip.py`).
        self.deep_prompts = DeepPrompts(config) if config.uses_deep_prompts else None
        self.score_head = ScoreHead(config)
        # The direction head's two halves (`direction_head.py`): None without one.
        self.video_direction = VideoDirection(config) if config.direction_dims else None
        self.label_direction = LabelDirection(config) if config.direction_dims else None
        self.label_bank: LabelBank | None = None
        self.label_encoder_fingerprint: str | None = None  # of the weights last loaded or saved (banks must match)
        self.post_init()
        self.freeze_pretrained_towers()

    @property
    def label_input_names(self) -> tuple[str, ...]:
        """The processor outputs this model reads for labels: its label encoder's, those the encoder's training loss
        reads, and with a direction head the labels' time reversals (what a processor for it must make)."""
        names = (*self.label_encoder.input_names, *self.label_encoder.loss_input_names)
        if self.label_direction is not None:
            names += tuple(name for name in DIRECTION_INPUT_NAMES if name not in names)
        return tuple(dict.fromkeys(names))

    def build_label_encoder(self, config: OvmlvConfig) -> LabelEncoder | None:
        """f_t as `config.label_encoder` names it (a fixed-vocabulary model has none: `fixed_vocabulary.py`)."""
        return LABEL_ENCODERS[config.label_encoder].encoder(config)

    def freeze_pretrained_towers(self) -> None:
        """Pretrained weights stay frozen unless the config says otherwise (the paper trains only new layers)."""
        self.score_head.logit_scale.requires_grad_(self.config.learnable_temperature)
        self.score_head.logit_bias.requires_grad_(self.config.learnable_bias)
        if self.label_encoder is not None:  # a fixed-vocabulary model has none
            self.label_encoder.text_tower.requires_grad_(not self.config.freeze_text_tower)
        if isinstance(self.label_encoder, LlmLabelEncoder):
            self.label_encoder.freeze_llm()
        self.video_encoder.vision_tower.requires_grad_(not self.config.freeze_vision_backbone)

    def clip_initialised_parameter_names(self) -> set[str]:
        """Trainable parameters that start from CLIP weights: the recipe gives them no weight decay
        (docs/design.md §7).

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
    ) -> OvmlvModel:
        """A new model on pretrained CLIP or SigLIP (+ T5) towers: Hub ids or local folders. Returned in eval mode.

        method: a named method ("ovmlv", "coop", "dualcoop", "vifi_clip", ...; see `method_presets`), whose
            preset `config_overrides` then refine. `config_overrides` are `OvmlvConfig` fields (label_encoder,
            temporal_layers, ...). The towers keep their checkpoints' weights exactly (an untied Flan-T5 keeps its
            own lm_head); new layers are initialised as the method prescribes. On SigLIP towers the score head starts
            from SigLIP's learnt logit scale and bias (`towers.score_settings`) unless `config_overrides` set them.

        Loaded as transformers loads any checkpoint: the model is built on the meta device and the towers' tensors
        are put in place, so no time goes into random weights that would be overwritten.
        """
        config_overrides = method_overrides(method, **config_overrides)
        clip_model, llm_model = load_towers(clip, llm)
        config = OvmlvConfig(
            text_config=portable(clip_model.config.text_config),
            vision_config=portable(clip_model.config.vision_config),
            llm_config=None if llm_model is None else portable(llm_model.config),
            projection_dim=joint_embedding_dim(clip_model),
            clip_name_or_path=hub_id(clip),
            llm_name_or_path=hub_id(llm),
            **{**score_settings(clip_model), **config_overrides},
        )
        weights = cls.weights_from_towers(
            config, clip_model, llm_model, f"CLIP {clip}" + (f" and T5 {llm}" if llm else "")
        )
        with quiet_transformers_logs():
            model = cls.from_pretrained(None, config=config, state_dict=weights, dtype=torch.float32)
        model.label_encoder.tokenizer_sources = TokenizerSources(
            clip=TokenizerSource(str(clip)), llm=None if llm is None else TokenizerSource(str(llm))
        )
        model.label_encoder.init_from_towers()
        return model

    @classmethod
    def zero_shot(cls, checkpoint: str | os.PathLike, **hub_kwargs) -> OvmlvModel:
        """A plain vision-language checkpoint (a Hub CLIP id or folder, no ovmlv weights) as the frozen zero-shot
        model, with no training: its towers untouched, each label the mean of its prompt-template embeddings, the
        frames' embeddings averaged (T = 0), and no calibrated threshold (the pipeline returns every label,
        ranked, and says so). `from_pretrained` calls it for such a checkpoint, deciding by its `model_type`."""
        model_type = checkpoint_model_type(checkpoint, **hub_kwargs)
        if model_type not in ZERO_SHOT_MODEL_TYPES:
            raise ValueError(
                f"{checkpoint} is a {model_type!r} checkpoint: ovmlv loads the models it saved, and serves "
                f"{' or '.join(ZERO_SHOT_MODEL_TYPES)} checkpoints zero-shot."
            )
        model = cls.from_towers(checkpoint, method=ZERO_SHOT_METHOD)
        model.name_or_path = str(checkpoint)  # where `pipeline()` and `OvmlvProcessor` find its tokenizer
        return model

    @classmethod
    def weights_from_towers(
        cls, config: OvmlvConfig, clip: PreTrainedModel, llm: T5ForConditionalGeneration | None, source: str
    ) -> dict[str, torch.Tensor]:
        """`tower_weights` of a model of `config`, read off a skeleton on the meta device (no layers built)."""
        with torch.device("meta"):
            skeleton = cls(config)
        return skeleton.tower_weights(clip, llm, source)

    @classmethod
    def adapter_weights(
        cls, config: OvmlvConfig, towers: TowerCheckpoints, folder: str | os.PathLike, **hub_kwargs
    ) -> dict[str, torch.Tensor]:
        """An adapter-style folder's trained weights on the tower checkpoints it names (`saved_variants.py`)."""
        loading = {key: value for key, value in hub_kwargs.items() if key != "revision"}  # the folder's own
        llm_id, llm_revision = (towers.llm.id, towers.llm.revision) if towers.llm else (None, None)
        clip_model, llm_model = load_towers(towers.clip.id, llm_id, towers.clip.revision, llm_revision, **loading)
        weights = cls.weights_from_towers(config, clip_model, llm_model, str(towers))
        for path in model_weights_files(folder, **hub_kwargs):
            weights.update(load_file(path))
        return weights

    def tower_weights(
        self, clip: PreTrainedModel, llm: T5ForConditionalGeneration | None, source: str
    ) -> dict[str, torch.Tensor]:
        """Every weight this model takes from the towers, under its own names; a checkpoint that does not fit this
        configuration (a weight missing, or one this model has no place for) is an error naming `source`."""
        check_tower_kind(self.config, clip, source)
        weights = {
            **{
                f"label_encoder.{key}": value
                for key, value in self.label_encoder.pretrained_weights(clip, llm).items()
            },
            **{f"video_encoder.{key}": value for key, value in self.video_encoder.pretrained_weights(clip).items()},
        }
        expected = self.state_dict().keys()
        tower_keys = {key for key in expected if key.startswith(TOWER_PREFIXES) and "lora_" not in key}
        missing, unexpected = sorted(tower_keys - weights.keys()), sorted(weights.keys() - expected)
        if missing or unexpected:
            raise ValueError(
                f"The towers {source} do not fit this configuration: missing {missing[:5]}, unexpected "
                f"{unexpected[:5]}. Check that the checkpoints are a CLIP and a T5 of the kind the config describes."
            )
        return weights

    def get_video_features(self, pixel_values_videos: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) or multi-clip (B, clips, T, 3, H, W) -> (B, D) unit norm.

        Multi-clip embeddings are the re-normalised mean of the clips' embeddings (4 x 8 frames at evaluation).
        """
        return self._embed_clips(*self._encode_clips(pixel_values_videos))

    def _encode_clips(self, pixel_values_videos: torch.Tensor) -> tuple[FrameTokens, int]:
        """The backbone pass over every clip of every video (clips flattened into the batch), and the clip count."""
        prompts = None if self.deep_prompts is None else self.deep_prompts().vision
        if pixel_values_videos.dim() == 5:
            return self.video_encoder.encode_frames(pixel_values_videos, prompts), 1
        if pixel_values_videos.dim() != 6:
            raise ValueError(
                "pixel_values_videos must be (batch, frames, 3, H, W) or (batch, clips, frames, 3, H, W), got shape "
                f"{tuple(pixel_values_videos.shape)}."
            )
        clips = pixel_values_videos.shape[1]
        return self.video_encoder.encode_frames(pixel_values_videos.flatten(0, 1), prompts), clips

    def _embed_clips(self, tokens: FrameTokens, clips: int, toward_clip: float = 0.0) -> torch.Tensor:
        """FrameTokens of B * clips clips -> (B, D): the re-normalised mean of each video's clip embeddings; with a
        direction head (B, D + K), the mean of its clips' direction codes after it."""
        clip_embeds = self.video_encoder.embed(tokens, toward_clip).unflatten(0, (-1, clips))  # (B, clips, D)
        video_embeds = F.normalize(clip_embeds.mean(dim=1), dim=-1)
        if self.video_direction is None:
            return video_embeds
        codes = self.video_direction(tokens.backbone_tokens).unflatten(0, (-1, clips)).mean(dim=1)  # (B, K)
        return torch.cat([video_embeds, codes.to(video_embeds.dtype)], dim=-1)

    def patch_temporal_branch(self, ratio: float) -> None:
        """Test-time patching (Open-VCLIP's trade-off knob): move the temporal branch's CLIP-initialised weights
        toward CLIP's, theta = (1 - ratio) theta_ft + ratio theta_clip, in place. 0 keeps the fine-tuned branch,
        1 restores CLIP's weights exactly; the temporal attention, Proj_t, positions (and TMP gate) are kept."""
        if not 0 <= ratio <= 1:
            raise ValueError(f"patch_temporal_branch: ratio must lie in [0, 1], got {ratio}.")
        if self.video_encoder.temporal_branch is not None:
            self.video_encoder.temporal_branch.patch_toward_clip(ratio)

    def weight_interpolation_loss(
        self,
        tokens: FrameTokens,
        clips: int,
        label_embeds: torch.Tensor,
        labels: torch.Tensor,
        logits_per_video: torch.Tensor,
    ) -> torch.Tensor:
        """The weight regulariser (paper §3.2; docs/design.md §4): the batch scored again with the branch's
        CLIP-initialised weights at alpha theta_ft + (1 - alpha) theta_clip, alpha ~ U(0, lambda) drawn once per
        step from torch's global generator (`torch.manual_seed` / accelerate's `set_seed` make it repeatable).
        Only the branch is re-run, on the backbone tokens of the main pass; gradients reach theta_ft.

        `config.regulariser_config.weight_interpolation_form`: "task_loss" is the training loss of those scores;
        "consistency" is the binary KL divergence from the fine-tuned predictions (`logits_per_video`) to them,
        summed over labels and averaged over videos like the loss.
        """
        alpha = self.config.regulariser_config.weight_interpolation_max * torch.rand(()).item()
        interpolated = self.logits(self._embed_clips(tokens, clips, toward_clip=1.0 - alpha), label_embeds)
        if self.config.regulariser_config.weight_interpolation_form == "task_loss":
            return weighted_multilabel_bce(interpolated, labels, self.config.negative_weight)
        finetuned = logits_per_video.sigmoid()
        return (
            (
                F.binary_cross_entropy_with_logits(interpolated, finetuned, reduction="none")
                - F.binary_cross_entropy_with_logits(logits_per_video, finetuned, reduction="none")
            )
            .sum(dim=-1)
            .mean()
        )

    def get_label_features(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        prompt_input_ids: torch.Tensor | None = None,
        prompt_attention_mask: torch.Tensor | None = None,
        llm_input_ids: torch.Tensor | None = None,
        llm_attention_mask: torch.Tensor | None = None,
        reversed_input_ids: torch.Tensor | None = None,
        reversed_attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The processor's text outputs -> (C, D) unit-norm label embeddings f_t(l) ((C, 2D) pairs for DualCoOp),
        with a direction head followed by each label's K direction-code values, (C, D + K).

        Each label encoder reads some of them (`label_encoder.input_names`): bare-label tokens, the template
        ensemble's (C, M, W) tokens, the T5 prompt's tokens. ViLT-CLIP's also reads the model's deep text prompts.
        The direction head reads the bare labels' tokens and their time reversals' (`reversed_input_ids`).
        """
        given = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "prompt_input_ids": prompt_input_ids,
            "prompt_attention_mask": prompt_attention_mask,
            "llm_input_ids": llm_input_ids,
            "llm_attention_mask": llm_attention_mask,
        }
        encoder = self.label_encoder
        missing = [name for name in encoder.input_names if given[name] is None]
        if missing:
            raise ValueError(
                f"label_encoder={self.config.label_encoder!r} needs {missing}: build the label inputs with "
                "OvmlvProcessor(text=[...]) from the same towers."
            )
        inputs = {name: given[name] for name in encoder.input_names}
        if self.deep_prompts is not None:
            inputs["layer_prompts"] = self.deep_prompts().text
        label_embeds = encoder(**inputs)
        if self.label_direction is None:
            return label_embeds
        if reversed_input_ids is None or input_ids is None:
            raise ValueError(
                "This model's direction head needs input_ids and reversed_input_ids: build the label inputs with the "
                "model's own processor (OvmlvProcessor.from_pretrained(<its folder>)), which reverses labels in time."
            )
        codes = self.direction_codes(input_ids, attention_mask, reversed_input_ids, reversed_attention_mask)
        return torch.cat([label_embeds, codes.to(label_embeds.dtype)], dim=-1)

    def direction_codes(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        reversed_input_ids: torch.Tensor,
        reversed_attention_mask: torch.Tensor | None,
    ) -> torch.Tensor:
        """(C, K) labels' direction codes from the frozen text tower's features of each label and its reversal (0
        for a label that has none). Only the labels with a reversal are encoded, but the tower and the head are
        called on every batch alike (on one label if none has one): ZeRO-3 gathers their weights collectively."""
        differs = (input_ids != reversed_input_ids).any(dim=-1)  # (C,)
        if not len(differs):
            return input_ids.new_zeros(0, self.config.direction_dims, dtype=torch.float32)
        rows = differs.nonzero().squeeze(-1) if differs.any() else differs.new_zeros(1, dtype=torch.long)
        ids = torch.cat([input_ids[rows], reversed_input_ids[rows]])
        mask = None if attention_mask is None else torch.cat([attention_mask[rows], reversed_attention_mask[rows]])
        with torch.no_grad():  # a fixed reference: the projection learns, the text tower's features do not
            features = F.normalize(self.label_encoder.text_tower(ids, mask), dim=-1)
        codes = self.label_direction(*features.chunk(2))  # (len(rows), K)
        codes = codes * differs[rows, None].to(codes.dtype)  # exactly 0 where the label has no reversal
        return codes.new_zeros(len(input_ids), codes.shape[-1]).index_copy(0, rows, codes)

    def logits(self, video_embeds: torch.Tensor, label_embeds: torch.Tensor) -> torch.Tensor:
        """(B, D) x (C, D) -> (B, C) logits s / tau + b (`ScoreHead`); label embeddings may live on another device."""
        return self.score_head(video_embeds, label_embeds)

    def forward(
        self,
        pixel_values_videos: torch.Tensor,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        prompt_input_ids: torch.Tensor | None = None,
        prompt_attention_mask: torch.Tensor | None = None,
        llm_input_ids: torch.Tensor | None = None,
        llm_attention_mask: torch.Tensor | None = None,
        reversed_input_ids: torch.Tensor | None = None,
        reversed_attention_mask: torch.Tensor | None = None,
        label_embeds: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        return_dict: bool | None = None,
    ) -> OvmlvOutput | tuple:
        """Score every video against every label.

        pixel_values_videos: (B, T, 3, H, W), or (B, clips, T, 3, H, W) whose clip embeddings are averaged.
        input_ids ... reversed_attention_mask: the processor's text outputs (see `get_label_features`).
        label_embeds: precomputed (C, D) (DualCoOp: (C, 2D)) label embeddings (e.g. from a `LabelBank`), used
            instead of the text inputs.
        labels: optional (B, C) multi-hot targets; the loss is the paper's weighted BCE, plus in training the
            weight regulariser (`weight_interpolation_loss`) when its weight is positive, and for ViLT-CLIP its
            scenario-guided loss on labels given as text (both weights in `config.regulariser_config`).
        return_dict: a tuple when False; default `config.return_dict`.
        """
        tokens, clips = self._encode_clips(pixel_values_videos)
        video_embeds = self._embed_clips(tokens, clips)
        labels_from_text = label_embeds is None
        if labels_from_text:
            label_embeds = self.get_label_features(
                input_ids,
                attention_mask,
                prompt_input_ids,
                prompt_attention_mask,
                llm_input_ids,
                llm_attention_mask,
                reversed_input_ids,
                reversed_attention_mask,
            )
        logits_per_video = self.logits(video_embeds, label_embeds)
        loss = None
        if labels is not None:
            loss = weighted_multilabel_bce(logits_per_video, labels, self.config.negative_weight)
            reg_weight = self.config.regulariser_config.weight_interpolation_loss_weight
            if self.training and reg_weight > 0 and self.video_encoder.temporal_branch is not None:
                regulariser = self.weight_interpolation_loss(tokens, clips, label_embeds, labels, logits_per_video)
                loss = loss + reg_weight * regulariser
            scenario_weight = self.config.regulariser_config.scenario_loss_weight
            if self.training and labels_from_text and self.config.uses_deep_prompts and scenario_weight > 0:
                scenario = self.label_encoder.scenario_loss(label_embeds, prompt_input_ids, prompt_attention_mask)
                loss = loss + scenario_weight * scenario
        output = OvmlvOutput(
            loss=loss, logits_per_video=logits_per_video, video_embeds=video_embeds, label_embeds=label_embeds
        )
        return_dict = self.config.return_dict if return_dict is None else return_dict
        return output if return_dict else output.to_tuple()

    def bank_fingerprint(self, weights_files: list[str] | None) -> str | None:
        """The fingerprint a label bank beside these saved weights must carry: that of their label encoder."""
        return label_encoder_fingerprint(weights_files)

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
        if kwargs.get("is_main_process", True):  # the bank goes with the weights just written, and carries their
            before = self.label_encoder_fingerprint  # fingerprint; a bank left there by another model is removed
            self.label_encoder_fingerprint = self.bank_fingerprint(model_weights_files(save_directory))
            save_bank_beside(self.label_bank, save_directory, before, self.label_encoder_fingerprint)

    @classmethod
    def saved_subclass(cls, architecture: str | None) -> type[OvmlvModel]:
        """The subclass of this class that a saved config names in `architectures` (e.g. the fixed-vocabulary
        model), else this class. Found among the subclasses defined, so this module never imports one: the package
        defines them all, and a folder loaded as remote code gets its class from `auto_map`."""
        return next((subclass for subclass in cls.__subclasses__() if subclass.__name__ == architecture), cls)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike | None, *args, **kwargs) -> OvmlvModel:
        """A saved model with its label bank; label encoders that tokenize text themselves read the tokenizers
        the processor saved beside it (`None` as the path: a `state_dict` given instead, as `from_towers` does).
        Files listed in a `checksums.json` (an export's) are checked first; a damaged label bank, or one made by
        another model, is reported and left out. A plain CLIP checkpoint (a Hub id or folder) loads as the frozen
        zero-shot model (`zero_shot`)."""
        hub_kwargs = {
            key: kwargs[key] for key in ("cache_dir", "revision", "token", "local_files_only") if key in kwargs
        }
        load_from = pretrained_model_name_or_path
        saved_type = None if load_from is None else checkpoint_model_type(load_from, **hub_kwargs)
        if saved_type not in (None, cls.config_class.model_type):  # a plain checkpoint: no ovmlv weights in it
            return cls.zero_shot(load_from, **hub_kwargs)
        if load_from is not None:
            if (saved_class := cls.saved_subclass(saved_architecture(load_from, **hub_kwargs))) is not cls:
                return saved_class.from_pretrained(load_from, *args, **kwargs)
            verify_model_checksums(load_from, **hub_kwargs)
            towers = TowerCheckpoints.find(load_from, **hub_kwargs)
            if towers is not None:  # adapter-style: the folder holds the trained weights, the towers the rest
                config = kwargs.get("config")
                if not isinstance(config, PretrainedConfig):
                    config = cls.config_class.from_pretrained(config or load_from, **hub_kwargs)
                kwargs.update(config=config, state_dict=cls.adapter_weights(config, towers, load_from, **hub_kwargs))
                load_from = None
        wants_loading_info = kwargs.pop("output_loading_info", False)
        with quiet_transformers_logs():  # its load report is replaced by the error of `check_complete_weights`
            model, loading_info = super().from_pretrained(load_from, *args, output_loading_info=True, **kwargs)
        if pretrained_model_name_or_path is not None:
            check_complete_weights(pretrained_model_name_or_path, loading_info)
        # Loading puts fresh (trainable) parameters in place: freeze again what the config keeps frozen.
        model.freeze_pretrained_towers()
        model.video_encoder.refresh_clip_reference()
        if model.config.deployment_config.temporal_patch_ratio:
            # Applied once: the config then describes the (patched) weights it sits beside, so a re-save and
            # re-load does not patch twice.
            model.patch_temporal_branch(model.config.deployment_config.temporal_patch_ratio)
            model.config.deployment_config.temporal_patch_ratio = 0.0
        if pretrained_model_name_or_path is None:
            return (model, loading_info) if wants_loading_info else model
        folder = str(pretrained_model_name_or_path)
        if model.label_encoder is not None:  # a fixed-vocabulary model has none
            model.label_encoder.tokenizer_sources = TokenizerSources(
                clip=TokenizerSource(folder, hub_kwargs=hub_kwargs),
                llm=TokenizerSource(folder, LLM_TOKENIZER_SUBFOLDER, hub_kwargs) if model.config.uses_llm else None,
            )
        weights = model_weights_files(pretrained_model_name_or_path, **hub_kwargs)
        model.label_encoder_fingerprint = model.bank_fingerprint(weights)
        model.label_bank = usable_bank(pretrained_model_name_or_path, model.label_encoder_fingerprint, **hub_kwargs)
        return (model, loading_info) if wants_loading_info else model


class IncompleteWeightsError(ValueError):
    """Saved weights that do not fill the model their config describes; the message lists the keys."""


def check_complete_weights(name_or_path: str | os.PathLike, loading_info: dict[str, list]) -> None:
    """A saved model must hold every weight its config needs and none it has no place for: transformers would
    leave the missing ones randomly initialised and only log it, so the model would score with random layers.
    (An adapter-style export is checked with its towers' weights added, which is when it is complete.)"""
    missing, unexpected = sorted(loading_info["missing_keys"]), sorted(loading_info["unexpected_keys"])
    mismatched = sorted(str(key) for key in loading_info.get("mismatched_keys", []))
    if not (missing or unexpected or mismatched):
        return
    listed = [
        f"{what} {len(keys)} ({', '.join(keys[:4])}{', ...' if len(keys) > 4 else ''})"
        for what, keys in (("missing", missing), ("unexpected", unexpected), ("of another shape", mismatched))
        if keys
    ]
    raise IncompleteWeightsError(
        f"The weights of {name_or_path} do not match its config.json: {'; '.join(listed)}. The weights file is "
        "incomplete or from another model; re-export or re-download the model folder."
    )
