"""Configuration of the open-vocabulary multi-label video classifier (Gupta et al., ECCV 2024)."""

from __future__ import annotations

import math
from typing import Any

from transformers import (
    CLIPTextConfig,
    CLIPVisionConfig,
    PretrainedConfig,
    Siglip2TextConfig,
    Siglip2VisionConfig,
    SiglipTextConfig,
    SiglipVisionConfig,
    T5Config,
)

from .method_presets import METHOD_PRESETS, METHODS, allowed_label_encoders, method_overrides

# The label encoders `label_encoder` names (`label_encoders.LABEL_ENCODERS` holds their classes), and which of them
# own a T5 (`llm_config` must be set) or embed a label as a (positive; negative) pair, 2D wide (DualCoOp): plain
# names, so that the configuration imports nothing of the model, as transformers' configurations.
LABEL_ENCODER_NAMES = ("class_name", "templates", "llm_prompted", "llm_fixed", "coop", "dualcoop", "vilt_clip")
LLM_LABEL_ENCODERS = ("llm_prompted", "llm_fixed")
PAIRED_LABEL_ENCODERS = ("dualcoop",)
DEEP_PROMPT_LABEL_ENCODERS = ("vilt_clip",)  # both towers read the model's layer-wise prompts (ViLT-CLIP)
LLM_ADAPTERS = ("prefix", "lora", "none")
CONNECTORS = ("prompt_transformer", "mlp", "linear")
TEMPORAL_MODES = ("parallel", "serial")
# How the video embedding pools the branch's TMP token with the frames' CLS tokens (`video_encoder.VideoEncoder`).
TEMPORAL_POOLINGS = ("clip_frames", "branch_frames")
# What the weight regulariser compares under the interpolated weights (`OvmlvModel.weight_interpolation_loss`).
WEIGHT_INTERPOLATION_FORMS = ("task_loss", "consistency")
# Upper bounds on sizes a config.json sets, far above any CLIP (projection 1024 for ViT-L, 1280 for bigG; 336 px),
# so that a damaged or hostile config fails in one line instead of allocating terabytes.
SIZE_LIMITS = {
    "projection_dim": 16384,
    "temporal_positions": 1024,
    "vision_config.image_size": 1024,
    "deep_prompt_length": 1024,
}
# The vision-language towers' sub-configs by model_type (`towers.TOWER_KINDS` builds the towers of each kind).
TEXT_CONFIGS = {
    "clip_text_model": CLIPTextConfig,
    "siglip_text_model": SiglipTextConfig,
    "siglip2_text_model": Siglip2TextConfig,
}
VISION_CONFIGS = {
    "clip_vision_model": CLIPVisionConfig,
    "siglip_vision_model": SiglipVisionConfig,
    "siglip2_vision_model": Siglip2VisionConfig,
}


def _sub_config(value: PretrainedConfig | dict | None, config_class: type[PretrainedConfig]) -> PretrainedConfig:
    if isinstance(value, config_class):
        return value
    return config_class(**(value or {}))


def _tower_config(
    value: PretrainedConfig | dict | None, classes: dict[str, type[PretrainedConfig]], field: str
) -> PretrainedConfig:
    """A CLIP or SigLIP tower config by its model_type (a dict without one, or None, is CLIP's, as saved before)."""
    if isinstance(value, PretrainedConfig):
        model_type = value.model_type
    else:
        model_type = (value or {}).get("model_type", next(iter(classes)))
    if model_type not in classes:
        raise ValueError(f"OvmlvConfig.{field} is a {model_type!r} config; it must be one of {tuple(classes)}.")
    return _sub_config(value, classes[model_type])


def fixed_resolution(config: PretrainedConfig) -> PretrainedConfig:  # a vision config
    """SigLIP 2's NaFlex vision config names a patch budget, not an image size: ovmlv runs it on square frames at its
    native position grid, `image_size` = sqrt(num_patches) x patch_size, recorded in the config (saved with it)."""
    if not hasattr(config, "image_size"):
        config.image_size = math.isqrt(config.num_patches) * config.patch_size
    return config


def _llm_config(value: T5Config | dict | None) -> T5Config | None:
    """The T5 config, keeping whether the checkpoint's lm_head is its own (`tie_word_embeddings: false`).

    transformers 5's `T5Config` forces `tie_word_embeddings=True` and keeps the given value only as
    `scale_decoder_outputs`; every Flan-T5 has an lm_head of its own, so the flag is put back for the label encoder
    to build the T5 as its checkpoint is laid out (`llm_label_encoder.build_llm`), and saved as the Hub saves it.
    """
    if value is None:
        return None
    tied = value.get("tie_word_embeddings", True) if isinstance(value, dict) else value.tie_word_embeddings
    config = _sub_config(value, T5Config)
    config.tie_word_embeddings = tied is not False
    return config


class OvmlvConfig(PretrainedConfig):
    r"""
    Holds the three towers' configs (CLIP text, CLIP vision, T5) and the method's knobs.

    Args:
        text_config / vision_config: the vision-language towers: CLIP's ([`CLIPTextConfig`], [`CLIPVisionConfig`])
            or SigLIP's ([`SiglipTextConfig`], [`SiglipVisionConfig`]; SigLIP 2 at a fixed resolution too), picked by
            their model_type (`towers_type`).
        llm_config: the T5 tower ([`T5Config`]); `None` while `label_encoder` needs no LLM.
        projection_dim: D, the joint embedding size (512 for CLIP B/32).
        method: the named method this config was built from (`method_presets.METHOD_PRESETS`: "ovmlv",
            "coop", "vifi_clip", ...), recorded so a saved model says what it is; `None` for a hand-made config.
            Build from a name with `OvmlvConfig.from_method` or `OvmlvModel.from_towers(..., method=...)`.
        label_encoder: how a label becomes an embedding f_t(l): `"class_name"` (CLIP text of the bare label),
            `"templates"` (mean over a prompt-template ensemble), `"llm_prompted"` (the paper's learnable LLM
            prompts, the default), `"llm_fixed"` (the fixed-LLM-prompt baseline), `"coop"` (learnable context
            vectors shared by all labels), `"dualcoop"` (a positive and a negative learnable context; f_t(l) is then
            the pair [f_pos(l); f_neg(l)], 2D wide, see `label_embedding_dim`), `"vilt_clip"` (ViLT-CLIP: the bare
            label read by CLIP's text tower with learnt deep prompts coupled to the vision tower's; CLIP towers,
            frame mean pooling).
        context_length: `"coop"` / `"dualcoop"`: M learnable context vectors read as `[BOS] ctx label [EOS]`.
        context_init: optional phrase ("a video of a") whose token embeddings start the last context vectors (the
            rest start at N(0, 0.02), CoOp's random init); needs `clip_name_or_path` for its tokenizer.
        negative_context_init: the same for DualCoOp's negative context.
        deep_prompt_length: `"vilt_clip"`: b, the prompt tokens each prompted layer of either tower reads (paper: 10).
        deep_prompt_depth: `"vilt_clip"`: J, the layers of both towers that read new prompts; `None`: every layer
            both towers have.
        deep_prompt_text_led_layers: `"vilt_clip"`: K, the first prompted layers whose text prompts are learnt and
            whose vision prompts are mapped from them (the later ones the other way round); `None`: half the
            towers' depth (the paper's K = N/2), at most J.
        scenario_loss_weight: `"vilt_clip"`: alpha, the weight of the scenario-guided loss, the squared distance from
            each label's learnt embedding to its frozen prompt-template embedding (KgCoOp's; 0 turns it off).
        num_prefixes: N learnable LLM prefixes. prefix_length: vectors per prefix.
        num_attributes: K soft attributes decoded per prefix. attribute_length: L decoder states per attribute.
        prompt_transformer_layers: depth of the prompt transformer that maps soft attributes to CLIP soft prompts.
        llm_adapter: `"prefix"` (paper), `"lora"` (Table 10 ablation: LoRA on T5's attention q/v instead of
            prefixes) or `"none"` (ablation: the LLM reads the instruction alone; only the connector trains);
            lora_rank: LoRA rank (Table 10 tries 2 and 4 and finds 2 enough).
        freeze_prefixes: keep the prefixes at their initial values (ablation: prompts that are not learnt).
        connector: `"prompt_transformer"` (paper), `"mlp"` or `"linear"` (Table 10 ablations).
        descriptor_template: `"llm_fixed"` only: the CLIP prompt made of `{label}` and one LLM `{descriptor}`.
        descriptor_max_new_tokens: `"llm_fixed"` only: the LLM's token budget for its list of descriptors.
        temporal_layers: T, blocks of the temporal branch beside CLIP's last T layers (paper: 4); 0 = frame
            mean-pooling.
        temporal_mode: `"parallel"` (paper) or `"serial"` (ablation).
        temporal_pooling: `"clip_frames"` (paper §3.2: the mean of the branch's final TMP token and the frozen
            backbone's final CLS token of every frame) or `"branch_frames"` (the branch's own frame CLS tokens, CLIP's
            last layer skipped, TMP's share under a learnable gate starting at 0); see `VideoEncoder`.
        temporal_positions: learnt temporal positional embeddings, one per frame of a training clip (training sets
            its clip's length; the default is the processor's frame count, `DEFAULT_NUM_FRAMES`, held equal by a
            test since this folder cannot import that one); clips of any other length get them linearly resampled.
        temporal_frame_weights: TMP averages its per-frame reads with learnt softmax weights per block and head
            (`tmp_frame_gates`, from 0: the plain mean), a path from frame order to TMP that is first order from the
            start (docs/design.md §4.2); off by default (not the paper's, and not yet enough within 100 steps).
        temporal_position_std: the std the spatial and temporal positions start at; None: the tower's embedding
            init (CLIP's 0.02, 2 % of the tokens they join on the organism); 1 puts them at the scale of those
            tokens' normalised values (docs/design.md §4.2).
        freeze_vision_backbone / freeze_text_tower: keep the CLIP towers frozen (the paper's setting).
        weight_interpolation_max: lambda, the upper bound of alpha ~ U(0, lambda) of the weight regulariser.
        weight_interpolation_loss_weight: weight of the regulariser's loss; 0 turns it off. Open-VCLIP uses 0.5
            (the default here); the paper's supplement (K.2) gives 1e-6 (`configs/paper_recipe.yaml`).
        weight_interpolation_form: `"task_loss"` (the training loss scored with the interpolated weights, as
            Open-VCLIP's regulariser) or `"consistency"` (paper §3.2, "matches predictions": the binary KL divergence
            from the fine-tuned model's predictions to the interpolated one's).
        temporal_patch_ratio: test-time patching toward CLIP applied at load (0 = the fine-tuned branch).
        start_at_zero_shot: a new model scores exactly as its frozen zero-shot reference (class names, frame mean)
            until it learns (docs/design.md §4.1): TMP's share of the video embedding and the learnt part of the LLM
            label embedding sit behind gates that start at 0 (`*_gate` parameters), so the branch's new layers
            start random, as the paper says, and the positions are added to the patch tokens (§3.2). `False`:
            the paper's form as first built here (no gates; zero-initialised temporal output and Proj_t; the
            label embedding is the soft-prompted one alone), kept for the claims table's comparison.
        label_interpolation: r, the test-time mix of the learnt label embedding with the frozen class-name one,
            normalize((1 - r) f_t(l) + r f_class_name(l)) (WiSE-FT on the label side); 0 = the learnt one, 1 = the
            frozen one. Chosen on validation with the threshold (`ovmlv evaluate`); `"llm_prompted"` only.
        score_temperature: tau in p = sigmoid(s / tau + b). learnable_temperature: train tau.
        score_bias: b, off (0) by default to stay faithful to the paper. learnable_bias: train b.
            On SigLIP towers `from_towers` sets both from SigLIP's learnt logit scale and bias (`towers.score_settings`).
        negative_weight: w, the weight of negative labels in the BCE loss.
        threshold: the decision threshold the pipeline uses by default, calibrated on validation sets (training and
            `training.evaluate` write it); `None` until calibrated: the pipeline then returns every label, ranked.
        threshold_calibrated_on: the validation sets that chose `threshold`, for the model card.
        clip_name_or_path / llm_name_or_path: the towers' Hub ids, for model cards; `None` for towers loaded from
            a local folder (a saved model never depends on the machine it was made on).
    """

    model_type = "ovmlv"
    sub_configs = {"text_config": CLIPTextConfig, "vision_config": CLIPVisionConfig, "llm_config": T5Config}

    def __init__(
        self,
        text_config: CLIPTextConfig | dict | None = None,
        vision_config: CLIPVisionConfig | dict | None = None,
        llm_config: T5Config | dict | None = None,
        projection_dim: int = 512,
        method: str | None = None,
        label_encoder: str = "llm_prompted",
        num_prefixes: int = 4,
        prefix_length: int = 1,
        num_attributes: int = 5,
        attribute_length: int = 5,
        prompt_transformer_layers: int = 2,
        llm_adapter: str = "prefix",
        lora_rank: int = 2,
        freeze_prefixes: bool = False,
        connector: str = "prompt_transformer",
        context_length: int = 16,
        context_init: str | None = None,
        negative_context_init: str | None = None,
        deep_prompt_length: int = 10,
        deep_prompt_depth: int | None = None,
        deep_prompt_text_led_layers: int | None = None,
        scenario_loss_weight: float = 8.0,
        descriptor_template: str = "{label}, which has {descriptor}.",
        descriptor_max_new_tokens: int = 64,
        temporal_layers: int = 4,
        temporal_mode: str = "parallel",
        temporal_pooling: str = "clip_frames",
        temporal_positions: int = 8,
        temporal_frame_weights: bool = False,
        temporal_position_std: float | None = None,
        freeze_vision_backbone: bool = True,
        freeze_text_tower: bool = True,
        weight_interpolation_max: float = 0.5,
        weight_interpolation_loss_weight: float = 0.5,
        weight_interpolation_form: str = "task_loss",
        temporal_patch_ratio: float = 0.0,
        start_at_zero_shot: bool = True,
        label_interpolation: float = 0.0,
        score_temperature: float = 0.07,
        learnable_temperature: bool = False,
        score_bias: float = 0.0,
        learnable_bias: bool = False,
        negative_weight: float = 1.0,
        threshold: float | None = None,
        threshold_calibrated_on: list[str] | None = None,
        clip_name_or_path: str | None = None,
        llm_name_or_path: str | None = None,
        **kwargs,
    ):
        self.text_config = _tower_config(text_config, TEXT_CONFIGS, "text_config")
        self.vision_config = fixed_resolution(_tower_config(vision_config, VISION_CONFIGS, "vision_config"))
        self.llm_config = _llm_config(llm_config)
        self.projection_dim = projection_dim
        self.method = method
        self.label_encoder = label_encoder
        self.num_prefixes = num_prefixes
        self.prefix_length = prefix_length
        self.num_attributes = num_attributes
        self.attribute_length = attribute_length
        self.prompt_transformer_layers = prompt_transformer_layers
        self.llm_adapter = llm_adapter
        self.lora_rank = lora_rank
        self.freeze_prefixes = freeze_prefixes
        self.descriptor_template = descriptor_template
        self.descriptor_max_new_tokens = descriptor_max_new_tokens
        self.connector = connector
        self.context_length = context_length
        self.context_init = context_init
        self.negative_context_init = negative_context_init
        self.deep_prompt_length = deep_prompt_length
        self.deep_prompt_depth = deep_prompt_depth
        self.deep_prompt_text_led_layers = deep_prompt_text_led_layers
        self.scenario_loss_weight = scenario_loss_weight
        self.temporal_layers = temporal_layers
        self.temporal_mode = temporal_mode
        self.temporal_pooling = temporal_pooling
        self.temporal_positions = temporal_positions
        self.temporal_frame_weights = temporal_frame_weights
        self.temporal_position_std = temporal_position_std
        self.freeze_vision_backbone = freeze_vision_backbone
        self.freeze_text_tower = freeze_text_tower
        self.weight_interpolation_max = weight_interpolation_max
        self.weight_interpolation_loss_weight = weight_interpolation_loss_weight
        self.weight_interpolation_form = weight_interpolation_form
        self.temporal_patch_ratio = temporal_patch_ratio
        self.start_at_zero_shot = start_at_zero_shot
        self.label_interpolation = label_interpolation
        self.score_temperature = score_temperature
        self.learnable_temperature = learnable_temperature
        self.score_bias = score_bias
        self.learnable_bias = learnable_bias
        self.negative_weight = negative_weight
        self.threshold = threshold
        self.threshold_calibrated_on = threshold_calibrated_on
        self.clip_name_or_path = clip_name_or_path
        self.llm_name_or_path = llm_name_or_path
        super().__init__(**kwargs)
        self.validate()

    def validate(self) -> None:
        """Fail at construction, naming the field, rather than deep inside a forward pass."""
        self._check_choices()
        self._check_sizes()
        self._check_ranges()
        self.validate_deep_prompts()
        # Last: the default label encoder needs an LLM, and a bad value elsewhere deserves its own message.
        if self.uses_llm and self.llm_config is None:
            raise ValueError(
                f"label_encoder={self.label_encoder!r} needs an LLM: pass llm=<T5 checkpoint> to from_towers "
                "(or llm_config to OvmlvConfig), or pick label_encoder='class_name' / 'templates'."
            )

    def _check_choices(self) -> None:
        """Named choices: each field's allowed names, towers of one kind, a method's own label encoders."""
        choices = {
            "label_encoder": LABEL_ENCODER_NAMES,
            "llm_adapter": LLM_ADAPTERS,
            "connector": CONNECTORS,
            "temporal_mode": TEMPORAL_MODES,
            "temporal_pooling": TEMPORAL_POOLINGS,
            "weight_interpolation_form": WEIGHT_INTERPOLATION_FORMS,
        }
        for field, allowed in choices.items():
            if getattr(self, field) not in allowed:
                raise ValueError(f"OvmlvConfig.{field}={getattr(self, field)!r} is not one of {allowed}.")
        if self.text_config.model_type.removesuffix("_text_model") != self.towers_type:
            raise ValueError(
                f"OvmlvConfig.text_config ({self.text_config.model_type}) and vision_config "
                f"({self.vision_config.model_type}) must come from one checkpoint (both CLIP or both SigLIP)."
            )
        if self.method is not None:
            if self.method not in METHOD_PRESETS:
                raise ValueError(f"OvmlvConfig.method={self.method!r} is not one of {METHODS}.")
            allowed = allowed_label_encoders(self.method)
            if self.label_encoder not in allowed:
                raise ValueError(
                    f"OvmlvConfig.method={self.method!r} uses label_encoder in {allowed}, not "
                    f"{self.label_encoder!r}: build it with OvmlvConfig.from_method / from_towers(method=...), or "
                    "drop `method` for a hand-made combination."
                )
        if "{label}" not in self.descriptor_template or "{descriptor}" not in self.descriptor_template:
            raise ValueError(
                f"OvmlvConfig.descriptor_template={self.descriptor_template!r} needs '{{label}}' and '{{descriptor}}'."
            )

    def _check_sizes(self) -> None:
        """Counts of at least 1, the branch no deeper than the tower, and sizes a config.json may not inflate."""
        counts = ("num_prefixes", "prefix_length", "num_attributes", "attribute_length", "lora_rank", "context_length")
        for field in counts:
            if getattr(self, field) < 1:
                raise ValueError(f"OvmlvConfig.{field} must be at least 1, got {getattr(self, field)}.")
        if not 0 <= self.temporal_layers <= self.vision_config.num_hidden_layers:
            raise ValueError(
                f"OvmlvConfig.temporal_layers={self.temporal_layers} must lie in "
                f"[0, {self.vision_config.num_hidden_layers}] (the CLIP vision tower's depth)."
            )
        sizes = {
            "projection_dim": self.projection_dim,
            "temporal_positions": self.temporal_positions,
            "vision_config.image_size": self.vision_config.image_size,
            "deep_prompt_length": self.deep_prompt_length,
        }
        for field, value in sizes.items():  # a config.json asking for 1e12 fails here, before any allocation
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= SIZE_LIMITS[field]:
                raise ValueError(
                    f"OvmlvConfig.{field} must be a whole number from 1 to {SIZE_LIMITS[field]}, got {value!r}."
                )

    def _check_ranges(self) -> None:
        """Numbers within their meaning: a positive temperature, mixing ratios in [0, 1], a non-negative weight."""
        if self.score_temperature <= 0:
            raise ValueError(f"OvmlvConfig.score_temperature must be positive, got {self.score_temperature}.")
        for field in ("weight_interpolation_max", "temporal_patch_ratio", "label_interpolation"):
            if not 0 <= getattr(self, field) <= 1:
                raise ValueError(f"OvmlvConfig.{field} must lie in [0, 1], got {getattr(self, field)}.")
        if self.weight_interpolation_loss_weight < 0:
            raise ValueError(
                "OvmlvConfig.weight_interpolation_loss_weight must be >= 0 (0 turns the regulariser off), got "
                f"{self.weight_interpolation_loss_weight}."
            )
        if self.threshold is not None and not 0 <= self.threshold <= 1:
            raise ValueError(
                f"OvmlvConfig.threshold must lie in [0, 1] (or be None: uncalibrated), got {self.threshold}."
            )

    def validate_deep_prompts(self) -> None:
        """ViLT-CLIP's fields (checked whatever the label encoder, as every field is), and what it runs on."""
        depth = self.deep_prompt_depth
        if depth is not None and not 1 <= depth <= self.shared_depth:
            raise ValueError(
                f"OvmlvConfig.deep_prompt_depth={depth} must lie in [1, {self.shared_depth}] (the depth both towers "
                "have), or be None (every layer)."
            )
        text_led = self.deep_prompt_text_led_layers
        if text_led is not None and not 0 <= text_led <= self.deep_prompt_layers:
            raise ValueError(
                f"OvmlvConfig.deep_prompt_text_led_layers={text_led} must lie in [0, {self.deep_prompt_layers}] "
                "(the prompted layers), or be None (half the towers' depth)."
            )
        if self.scenario_loss_weight < 0:
            raise ValueError(f"OvmlvConfig.scenario_loss_weight must be >= 0, got {self.scenario_loss_weight}.")
        if self.uses_deep_prompts and self.towers_type != "clip":
            raise ValueError(
                f"label_encoder={self.label_encoder!r} (ViLT-CLIP's deep prompts) runs on CLIP towers only, not "
                f"{self.towers_type!r}: build it on a CLIP checkpoint, or pick another label encoder."
            )
        if self.uses_deep_prompts and self.temporal_layers:
            raise ValueError(
                f"label_encoder={self.label_encoder!r} pools the frames by their mean, as ViLT-CLIP does: set "
                f"temporal_layers=0 (got {self.temporal_layers})."
            )

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs: Any) -> OvmlvConfig:
        """A saved config; one written before `start_at_zero_shot` existed describes weights trained without the
        zero-start gates, and loads so (with the new default its trained prompts and TMP would sit behind closed
        gates)."""
        return super().from_dict({"start_at_zero_shot": False, **config_dict}, **kwargs)

    @classmethod
    def from_method(cls, method: str, **kwargs: Any) -> OvmlvConfig:
        """The config of a named method (`method_presets.METHOD_PRESETS`), with `kwargs` fields on top."""
        return cls(**method_overrides(method, **kwargs))

    @property
    def towers_type(self) -> str:
        """The vision-language towers' kind, "clip" or "siglip" (`towers.TOWER_KINDS`)."""
        return self.vision_config.model_type.removesuffix("_vision_model")

    @property
    def uses_llm(self) -> bool:
        return self.label_encoder in LLM_LABEL_ENCODERS

    @property
    def uses_deep_prompts(self) -> bool:
        """Both towers read ViLT-CLIP's layer-wise prompts (`deep_prompts.DeepPrompts`)."""
        return self.label_encoder in DEEP_PROMPT_LABEL_ENCODERS

    @property
    def shared_depth(self) -> int:
        """N, the layers both towers have (the coupled prompts pair text layer i with vision layer i)."""
        return min(self.text_config.num_hidden_layers, self.vision_config.num_hidden_layers)

    @property
    def deep_prompt_layers(self) -> int:
        """J, the prompted layers of each tower (`deep_prompt_depth`, or every layer both towers have)."""
        return self.shared_depth if self.deep_prompt_depth is None else self.deep_prompt_depth

    @property
    def text_led_prompt_layers(self) -> int:
        """K, the prompted layers whose vision prompts are mapped from learnt text prompts."""
        if self.deep_prompt_text_led_layers is not None:
            return self.deep_prompt_text_led_layers
        return min(self.deep_prompt_layers, self.shared_depth // 2)

    @property
    def pools_branch_frames(self) -> bool:
        """The video embedding pools the branch's own frame tokens (serial mode, or `temporal_pooling="branch_frames"`),
        not the frozen backbone's."""
        return self.temporal_mode == "serial" or self.temporal_pooling == "branch_frames"

    @property
    def gates_tmp(self) -> bool:
        """TMP's share of the video embedding is a learnt gate from 0 (branch-frame pooling, or a zero-shot start)."""
        return self.temporal_pooling == "branch_frames" or self.start_at_zero_shot

    @property
    def gates_branch_paths(self) -> bool:
        """The branch's new paths into the frames' tokens are gated (tanh of a gate from 0): needed for a zero-shot
        start only where the video embedding pools the branch's own frames."""
        return self.start_at_zero_shot and self.pools_branch_frames

    @property
    def pairs_label_embeddings(self) -> bool:
        """f_t(l) is a (positive; negative) pair of unit vectors, scored as their difference (DualCoOp)."""
        return self.label_encoder in PAIRED_LABEL_ENCODERS

    @property
    def label_embedding_dim(self) -> int:
        """Width of f_t(l): D, or 2D for the paired (positive; negative) embeddings of DualCoOp."""
        return self.projection_dim * (2 if self.pairs_label_embeddings else 1)
