"""Configuration of the open-vocabulary multi-label video classifier (Gupta et al., ECCV 2024).

`OvmlvConfig` composes sub-configs as transformers' composite configs do (CLIPConfig's `text_config` and
`vision_config`): the three towers, then one group per part of the method, `label_encoder_config`,
`temporal_config`, `regulariser_config` and `deployment_config`; the architecture's own fields (projection size,
method, label encoder, frozen towers, score head) sit on `OvmlvConfig` itself. A field keeps one name everywhere:
`OvmlvConfig(temporal_layers=2)`, a recipe's `model.temporal_layers` and a config.json saved before the groups
existed (all its fields at the top) are routed to the group that owns the name, and read as
`config.temporal_config.temporal_layers`.
"""

from __future__ import annotations

import math
import typing
from types import SimpleNamespace
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
from transformers.configuration_utils import SubConfigSpec

from .method_presets import METHOD_PRESETS, METHODS, allowed_label_encoders, method_overrides

# The label encoders `label_encoder` names (`label_encoder_registry.LABEL_ENCODERS` holds their classes), and which of them
# own a T5 (`llm_config` must be set) or embed a label as a (positive; negative) pair, 2D wide (DualCoOp): plain
# names, so that the configuration imports nothing of the model, as transformers' configurations.
LABEL_ENCODER_NAMES = ("class_name", "templates", "llm_prompted", "llm_fixed", "coop", "dualcoop", "vilt_clip")
LLM_LABEL_ENCODERS = ("llm_prompted", "llm_fixed")
PAIRED_LABEL_ENCODERS = ("dualcoop",)
DEEP_PROMPT_LABEL_ENCODERS = ("vilt_clip",)  # both towers read the model's layer-wise prompts (ViLT-CLIP)
LLM_ADAPTERS = ("prefix", "lora", "none")
CONNECTORS = ("prompt_transformer", "mlp", "linear")
LABEL_GATE_FORMS = ("shared", "disagreement")
MAX_CATEGORY_MEMBERS = 32  # slots of a label's embedding: a bank is this many times wider
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
    "direction_dims": 1024,
    "time_reversal_phrases": 1024,  # pairs (`processing/time_reversal.MAX_REVERSAL_PAIRS`)
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


class OvmlvGroupConfig(PretrainedConfig):
    """A group of the method's fields, checked on construction against the plain tables each group declares, so that
    a bad value fails naming its field: `choices` (field -> allowed names), `counts` (at least 1), `fractions` (in
    [0, 1]), `non_negative`, and `size_limits` (whole numbers from 1 to a bound a config.json may not exceed)."""

    choices = {}
    counts = ()
    fractions = ()
    non_negative = ()
    size_limits = {}

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        self.validate()

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The group's own fields (not those every `PretrainedConfig` has)."""
        return tuple(cls.__dict__.get("__annotations__", {}))

    def validate(self) -> None:
        """Fail at construction, naming the field, rather than deep inside a forward pass."""
        name = f"OvmlvConfig.{self.base_config_key}"
        for field, allowed in self.choices.items():
            if getattr(self, field) not in allowed:
                raise ValueError(f"{name}.{field}={getattr(self, field)!r} is not one of {allowed}.")
        for field in self.counts:
            if getattr(self, field) < 1:
                raise ValueError(f"{name}.{field} must be at least 1, got {getattr(self, field)}.")
        for field in self.fractions:
            if not 0 <= getattr(self, field) <= 1:
                raise ValueError(f"{name}.{field} must lie in [0, 1], got {getattr(self, field)}.")
        for field in self.non_negative:
            if getattr(self, field) < 0:
                raise ValueError(f"{name}.{field} must be >= 0 (0 turns it off), got {getattr(self, field)}.")
        for field, limit in self.size_limits.items():  # a config.json asking for 1e12 fails here, before allocating
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
                raise ValueError(f"{name}.{field} must be a whole number from 1 to {limit}, got {value!r}.")


class OvmlvLabelEncoderConfig(OvmlvGroupConfig):
    r"""
    The label encoder's knobs (`OvmlvConfig.label_encoder` names which encoder reads them).

    Args:
        num_prefixes: N learnable LLM prefixes. prefix_length: vectors per prefix.
        num_attributes: K soft attributes decoded per prefix. attribute_length: L decoder states per attribute.
        prompt_transformer_layers: depth of the prompt transformer that maps soft attributes to CLIP soft prompts.
        llm_adapter: `"prefix"` (paper), `"lora"` (Table 10 ablation: LoRA on T5's attention q/v instead of
            prefixes) or `"none"` (ablation: the LLM reads the instruction alone; only the connector trains);
            lora_rank: LoRA rank (Table 10 tries 2 and 4 and finds 2 enough).
        freeze_prefixes: keep the prefixes at their initial values (ablation: prompts that are not learnt).
        connector: `"prompt_transformer"` (paper), `"mlp"` or `"linear"` (Table 10 ablations).
        label_gate_form: under `start_at_zero_shot`, how much of the learnt path each label hears: `"shared"`, one gate g
            for every label (normalize(f_class + g f_prompted)); `"disagreement"`, g (1 - cos(f_class, f_prompted)):
            a label whose learnt embedding agrees with its class name (CLIP already reads it) keeps it, one it
            disagrees with (a synonym or category CLIP cannot read) hears the learnt path (docs/design.md §4.4).
        category_members: LLM label encoders only: a label that names a category is scored as the best of itself
            and the members its LLM's answer lists (`label_members.py`); the value is M, the slots of its embedding
            (the label, then up to M - 1 members), 0 for one embedding per label (the paper's).
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
        descriptor_template: `"llm_fixed"` only: the CLIP prompt made of `{label}` and one LLM `{descriptor}`.
        descriptor_max_new_tokens: `"llm_fixed"` only: the LLM's token budget for its list of descriptors.
    """

    model_type = "ovmlv_label_encoder"
    base_config_key = "label_encoder_config"
    choices = {"llm_adapter": LLM_ADAPTERS, "connector": CONNECTORS, "label_gate_form": LABEL_GATE_FORMS}
    counts = ("num_prefixes", "prefix_length", "num_attributes", "attribute_length", "lora_rank", "context_length")
    size_limits = {"deep_prompt_length": SIZE_LIMITS["deep_prompt_length"]}

    num_prefixes: int = 4
    prefix_length: int = 1
    num_attributes: int = 5
    attribute_length: int = 5
    prompt_transformer_layers: int = 2
    llm_adapter: str = "prefix"
    lora_rank: int = 2
    freeze_prefixes: bool = False
    connector: str = "prompt_transformer"
    label_gate_form: str = "shared"
    category_members: int = 0
    context_length: int = 16
    context_init: str | None = None
    negative_context_init: str | None = None
    deep_prompt_length: int = 10
    deep_prompt_depth: int | None = None
    deep_prompt_text_led_layers: int | None = None
    descriptor_template: str = "{label}, which has {descriptor}."
    descriptor_max_new_tokens: int = 64

    def validate(self) -> None:
        super().validate()
        members = self.category_members
        if isinstance(members, bool) or not isinstance(members, int) or not 0 <= members <= MAX_CATEGORY_MEMBERS:
            raise ValueError(
                f"OvmlvConfig.label_encoder_config.category_members must be a whole number from 0 (off) to "
                f"{MAX_CATEGORY_MEMBERS}, got {members!r}."
            )
        if "{label}" not in self.descriptor_template or "{descriptor}" not in self.descriptor_template:
            raise ValueError(
                f"OvmlvConfig.label_encoder_config.descriptor_template={self.descriptor_template!r} needs '{{label}}' "
                "and '{descriptor}'."
            )


class OvmlvTemporalConfig(OvmlvGroupConfig):
    r"""
    The temporal branch beside CLIP's vision tower (paper §3.2).

    Args:
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
        direction_dims: K, the width of the direction head's codes (`direction_head.py`; docs/design.md §4.3): a
            score term of its own, video code . label code, that reads frame order for the labels that name a
            direction and is 0 for every other label; 0 = none. Needs a branch (T > 0): it is temporal modelling.
        time_reversal_phrases: the pairs of phrases that name one motion's two directions (["moving left", "moving
            right"], ...); a label's direction code is the difference of its text features and those of the label
            with its phrases swapped (`processing/time_reversal.py`), so only labels holding one have a code.
    """

    model_type = "ovmlv_temporal"
    base_config_key = "temporal_config"
    choices = {"temporal_mode": TEMPORAL_MODES, "temporal_pooling": TEMPORAL_POOLINGS}
    size_limits = {"temporal_positions": SIZE_LIMITS["temporal_positions"]}

    temporal_layers: int = 4
    temporal_mode: str = "parallel"
    temporal_pooling: str = "clip_frames"
    temporal_positions: int = 8
    temporal_frame_weights: bool = False
    temporal_position_std: float | None = None
    direction_dims: int = 0
    time_reversal_phrases: list[list[str]] | None = None

    def validate(self) -> None:
        super().validate()
        if self.temporal_layers < 0:
            raise ValueError(f"OvmlvConfig.temporal_config.temporal_layers must be >= 0, got {self.temporal_layers}.")
        limit, dims = SIZE_LIMITS["direction_dims"], self.direction_dims
        if isinstance(dims, bool) or not isinstance(dims, int) or not 0 <= dims <= limit:
            raise ValueError(
                f"OvmlvConfig.temporal_config.direction_dims must be a whole number from 0 (no direction head) to "
                f"{limit}, got {dims!r}."
            )
        if len(self.time_reversal_phrases or ()) > SIZE_LIMITS["time_reversal_phrases"]:
            raise ValueError(
                f"OvmlvConfig.temporal_config.time_reversal_phrases: at most {SIZE_LIMITS['time_reversal_phrases']} "
                f"pairs, got {len(self.time_reversal_phrases)}."
            )

    @property
    def pools_branch_frames(self) -> bool:
        """The video embedding pools the branch's own frame tokens (serial mode, or branch-frame pooling), not the
        frozen backbone's."""
        return self.temporal_mode == "serial" or self.temporal_pooling == "branch_frames"


class OvmlvRegulariserConfig(OvmlvGroupConfig):
    r"""
    The losses that keep a fine-tuned model near what it started from.

    Args:
        weight_interpolation_max: lambda, the upper bound of alpha ~ U(0, lambda) of the weight regulariser.
        weight_interpolation_loss_weight: weight of the regulariser's loss; 0 turns it off. Open-VCLIP uses 0.5
            (the default here); the paper's supplement (K.2) gives 1e-6 (`configs/paper_recipe.yaml`).
        weight_interpolation_form: `"task_loss"` (the training loss scored with the interpolated weights, as
            Open-VCLIP's regulariser) or `"consistency"` (paper §3.2, "matches predictions": the binary KL divergence
            from the fine-tuned model's predictions to the interpolated one's).
        scenario_loss_weight: `"vilt_clip"`: alpha, the weight of the scenario-guided loss, the squared distance from
            each label's learnt embedding to its frozen prompt-template embedding (KgCoOp's; 0 turns it off).
    """

    model_type = "ovmlv_regulariser"
    base_config_key = "regulariser_config"
    choices = {"weight_interpolation_form": WEIGHT_INTERPOLATION_FORMS}
    fractions = ("weight_interpolation_max",)
    non_negative = ("weight_interpolation_loss_weight", "scenario_loss_weight")

    weight_interpolation_max: float = 0.5
    weight_interpolation_loss_weight: float = 0.5
    weight_interpolation_form: str = "task_loss"
    scenario_loss_weight: float = 8.0


class OvmlvDeploymentConfig(OvmlvGroupConfig):
    r"""
    What a trained model is used with, decided after training (by evaluation on validation sets, or at export).

    Args:
        threshold: the decision threshold the pipeline uses by default, calibrated on validation sets (training and
            `training.evaluate` write it); `None` until calibrated: the pipeline then returns every label, ranked.
        threshold_calibrated_on: the validation sets that chose `threshold`, for the model card.
        label_interpolation: r, the test-time mix of the learnt label embedding with the frozen class-name one,
            normalize((1 - r) f_t(l) + r f_class_name(l)) (WiSE-FT on the label side); 0 = the learnt one, 1 = the
            frozen one. Chosen on validation with the threshold (`ovmlv evaluate`); `"llm_prompted"` only.
        temporal_patch_ratio: test-time patching of the temporal branch toward CLIP, applied at load (0 = the
            fine-tuned branch).
        clip_name_or_path / llm_name_or_path: the towers' Hub ids, for model cards; `None` for towers loaded from
            a local folder (a saved model never depends on the machine it was made on).
    """

    model_type = "ovmlv_deployment"
    base_config_key = "deployment_config"
    fractions = ("label_interpolation", "temporal_patch_ratio")

    threshold: float | None = None
    threshold_calibrated_on: list[str] | None = None
    label_interpolation: float = 0.0
    temporal_patch_ratio: float = 0.0
    clip_name_or_path: str | None = None
    llm_name_or_path: str | None = None

    def validate(self) -> None:
        super().validate()
        if self.threshold is not None and not 0 <= self.threshold <= 1:
            raise ValueError(
                "OvmlvConfig.deployment_config.threshold must lie in [0, 1] (or be None: uncalibrated), got "
                f"{self.threshold}."
            )


GROUP_CONFIGS = {
    "label_encoder_config": OvmlvLabelEncoderConfig,
    "temporal_config": OvmlvTemporalConfig,
    "regulariser_config": OvmlvRegulariserConfig,
    "deployment_config": OvmlvDeploymentConfig,
}
# Each grouped field's group, by the field's one name (a flat keyword or a config.json saved before the groups).
FIELD_GROUPS = {field: group for group, config in GROUP_CONFIGS.items() for field in config.field_names()}


class OvmlvConfig(PretrainedConfig):
    r"""
    Holds the three towers' configs (CLIP text, CLIP vision, T5), the method's groups of knobs, and the architecture.

    Args:
        text_config / vision_config: the vision-language towers: CLIP's ([`CLIPTextConfig`], [`CLIPVisionConfig`])
            or SigLIP's ([`SiglipTextConfig`], [`SiglipVisionConfig`]; SigLIP 2 at a fixed resolution too), picked by
            their model_type (`towers_type`).
        llm_config: the T5 tower ([`T5Config`]); `None` while `label_encoder` needs no LLM.
        label_encoder_config / temporal_config / regulariser_config / deployment_config: the groups
            ([`OvmlvLabelEncoderConfig`], [`OvmlvTemporalConfig`], [`OvmlvRegulariserConfig`],
            [`OvmlvDeploymentConfig`]), each a config or a dict; any of their fields may also be given by its own
            name (`temporal_layers=2`), which wins over the group's value.
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
        freeze_vision_backbone / freeze_text_tower: keep the CLIP towers frozen (the paper's setting).
        start_at_zero_shot: a new model scores exactly as its frozen zero-shot reference (class names, frame mean)
            until it learns (docs/design.md §4.1): TMP's share of the video embedding and the learnt part of the LLM
            label embedding sit behind gates that start at 0 (`*_gate` parameters), so the branch's new layers
            start random, as the paper says, and the positions are added to the patch tokens (§3.2). `False`:
            the paper's form as first built here (no gates; zero-initialised temporal output and Proj_t; the
            label embedding is the soft-prompted one alone), kept for the claims table's comparison.
        score_temperature: tau in p = sigmoid(s / tau + b). learnable_temperature: train tau.
        score_bias: b, off (0) by default to stay faithful to the paper. learnable_bias: train b.
            On SigLIP towers `from_towers` sets both from SigLIP's learnt logit scale and bias (`towers.score_settings`).
        negative_weight: w, the weight of negative labels in the BCE loss.
    """

    model_type = "ovmlv"
    sub_configs_defaults = {
        "text_config": CLIPTextConfig,
        "vision_config": CLIPVisionConfig,
        "llm_config": SubConfigSpec(T5Config, optional=True),
        **GROUP_CONFIGS,
    }

    text_config: dict | PretrainedConfig | None = None
    vision_config: dict | PretrainedConfig | None = None
    llm_config: dict | T5Config | None = None
    label_encoder_config: dict | OvmlvLabelEncoderConfig | None = None
    temporal_config: dict | OvmlvTemporalConfig | None = None
    regulariser_config: dict | OvmlvRegulariserConfig | None = None
    deployment_config: dict | OvmlvDeploymentConfig | None = None
    projection_dim: int = 512
    method: str | None = None
    label_encoder: str = "llm_prompted"
    freeze_vision_backbone: bool = True
    freeze_text_tower: bool = True
    start_at_zero_shot: bool = True
    score_temperature: float = 0.07
    learnable_temperature: bool = False
    score_bias: float = 0.0
    learnable_bias: bool = False
    negative_weight: float = 1.0

    def __post_init__(self, **kwargs: Any) -> None:
        for group, config_class in GROUP_CONFIGS.items():  # fields given by their own name join their group
            given = {field: kwargs.pop(field) for field in config_class.field_names() if field in kwargs}
            value = getattr(self, group)
            if isinstance(value, PretrainedConfig):
                for field, field_value in given.items():
                    setattr(value, field, field_value)
                value.validate()
            else:
                setattr(self, group, {**(value or {}), **given})
        self.text_config = _tower_config(self.text_config, TEXT_CONFIGS, "text_config")
        self.vision_config = fixed_resolution(_tower_config(self.vision_config, VISION_CONFIGS, "vision_config"))
        self.llm_config = _llm_config(self.llm_config)
        super().__post_init__(**kwargs)
        self.validate()

    def validate(self) -> None:
        """Fail at construction, naming the field, rather than deep inside a forward pass; each group checks its own
        fields, this what joins them (the towers, the method, the branch against the tower's depth)."""
        for group in GROUP_CONFIGS:
            getattr(self, group).validate()
        self._check_architecture()
        self._check_depths()
        # Last: the default label encoder needs an LLM, and a bad value elsewhere deserves its own message.
        if self.uses_llm and self.llm_config is None:
            raise ValueError(
                f"label_encoder={self.label_encoder!r} needs an LLM: pass llm=<T5 checkpoint> to from_towers "
                "(or llm_config to OvmlvConfig), or pick label_encoder='class_name' / 'templates'."
            )

    def _check_architecture(self) -> None:
        """The label encoder and method by name, towers of one kind, sizes a config.json may not inflate, a positive
        temperature."""
        if self.label_encoder not in LABEL_ENCODER_NAMES:
            raise ValueError(f"OvmlvConfig.label_encoder={self.label_encoder!r} is not one of {LABEL_ENCODER_NAMES}.")
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
        sizes = {"projection_dim": self.projection_dim, "vision_config.image_size": self.vision_config.image_size}
        for field, value in sizes.items():  # a config.json asking for 1e12 fails here, before any allocation
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= SIZE_LIMITS[field]:
                raise ValueError(
                    f"OvmlvConfig.{field} must be a whole number from 1 to {SIZE_LIMITS[field]}, got {value!r}."
                )
        if self.score_temperature <= 0:
            raise ValueError(f"OvmlvConfig.score_temperature must be positive, got {self.score_temperature}.")

    def _check_depths(self) -> None:
        """The temporal branch and ViLT-CLIP's deep prompts against the towers' depth, and what ViLT-CLIP runs on."""
        depth, temporal_layers = self.vision_config.num_hidden_layers, self.temporal_config.temporal_layers
        if temporal_layers > depth:
            raise ValueError(
                f"OvmlvConfig.temporal_layers={temporal_layers} must lie in [0, {depth}] (the CLIP vision tower's "
                "depth)."
            )
        prompts = self.label_encoder_config
        if prompts.deep_prompt_depth is not None and not 1 <= prompts.deep_prompt_depth <= self.shared_depth:
            raise ValueError(
                f"OvmlvConfig.deep_prompt_depth={prompts.deep_prompt_depth} must lie in [1, {self.shared_depth}] (the "
                "depth both towers have), or be None (every layer)."
            )
        text_led = prompts.deep_prompt_text_led_layers
        if text_led is not None and not 0 <= text_led <= self.deep_prompt_layers:
            raise ValueError(
                f"OvmlvConfig.deep_prompt_text_led_layers={text_led} must lie in [0, {self.deep_prompt_layers}] "
                "(the prompted layers), or be None (half the towers' depth)."
            )
        if self.uses_deep_prompts and self.towers_type != "clip":
            raise ValueError(
                f"label_encoder={self.label_encoder!r} (ViLT-CLIP's deep prompts) runs on CLIP towers only, not "
                f"{self.towers_type!r}: build it on a CLIP checkpoint, or pick another label encoder."
            )
        if self.uses_deep_prompts and temporal_layers:
            raise ValueError(
                f"label_encoder={self.label_encoder!r} pools the frames by their mean, as ViLT-CLIP does: set "
                f"temporal_layers=0 (got {temporal_layers})."
            )

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs: Any) -> OvmlvConfig:
        """A saved config, and fields given by their own name (`from_pretrained(path, temporal_patch_ratio=1.0)`).

        One written before `start_at_zero_shot` existed describes weights trained without the zero-start gates, and
        loads so (with the new default its trained prompts and TMP would sit behind closed gates). One written before
        the groups existed holds every field at the top: each joins its group by its name.
        """
        grouped = {field: kwargs.pop(field) for field in list(kwargs) if field in FIELD_GROUPS}
        return super().from_dict({"start_at_zero_shot": False, **config_dict, **grouped}, **kwargs)

    @classmethod
    def from_method(cls, method: str, **kwargs: Any) -> OvmlvConfig:
        """The config of a named method (`method_presets.METHOD_PRESETS`), with `kwargs` fields on top."""
        return cls(**method_overrides(method, **kwargs))

    @classmethod
    def field_types(cls) -> dict[str, Any]:
        """Every field a keyword may set, by its one name, with its type: the architecture's and each group's (a
        recipe's `model:` section sets them from text)."""
        types = {}
        for config_class in (cls, *GROUP_CONFIGS.values()):
            own = SimpleNamespace(__annotations__=vars(config_class)["__annotations__"])
            types.update(typing.get_type_hints(own, globalns=globals()))
        return types

    def field_value(self, field: str) -> Any:
        """A field by its one name, wherever it lives (top or group): for code that lists fields by name, such as a
        method's preset or a fingerprint of the settings a video embedding depends on."""
        return getattr(getattr(self, FIELD_GROUPS[field]) if field in FIELD_GROUPS else self, field)

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
        depth = self.label_encoder_config.deep_prompt_depth
        return self.shared_depth if depth is None else depth

    @property
    def text_led_prompt_layers(self) -> int:
        """K, the prompted layers whose vision prompts are mapped from learnt text prompts."""
        if self.label_encoder_config.deep_prompt_text_led_layers is not None:
            return self.label_encoder_config.deep_prompt_text_led_layers
        return min(self.deep_prompt_layers, self.shared_depth // 2)

    @property
    def gates_tmp(self) -> bool:
        """TMP's share of the video embedding is a learnt gate from 0 (branch-frame pooling, or a zero-shot start)."""
        return self.temporal_config.temporal_pooling == "branch_frames" or self.start_at_zero_shot

    @property
    def gates_branch_paths(self) -> bool:
        """The branch's new paths into the frames' tokens are gated (tanh of a gate from 0): needed for a zero-shot
        start only where the video embedding pools the branch's own frames."""
        return self.start_at_zero_shot and self.temporal_config.pools_branch_frames

    @property
    def pairs_label_embeddings(self) -> bool:
        """f_t(l) is a (positive; negative) pair of unit vectors, scored as their difference (DualCoOp)."""
        return self.label_encoder in PAIRED_LABEL_ENCODERS

    @property
    def category_member_slots(self) -> int:
        """M, the slots of a label's embedding that hold its category's members; 0 without (no LLM to list them)."""
        return self.label_encoder_config.category_members if self.uses_llm else 0

    @property
    def direction_dims(self) -> int:
        """K, the width of the direction head's codes appended to every video and label embedding; 0 without a head
        (none is built without a temporal branch)."""
        return self.temporal_config.direction_dims if self.temporal_config.temporal_layers else 0

    @property
    def video_embedding_dim(self) -> int:
        """Width of a video's embedding: D (unit norm), then its K direction-code values."""
        return self.projection_dim + self.direction_dims

    @property
    def label_embedding_dim(self) -> int:
        """Width of a label's embedding: D; 2D for the paired (positive; negative) embeddings of DualCoOp; M * D with M
        category-member slots (`label_members.py`; training scores a label alone, D wide); then its K direction-code
        values (`direction_head.py`)."""
        slots = 2 if self.pairs_label_embeddings else max(1, self.category_member_slots)
        return self.projection_dim * slots + self.direction_dims
