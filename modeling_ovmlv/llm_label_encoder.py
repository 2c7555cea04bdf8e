"""The paper's label encoder: a frozen T5 prompted with learnable prefixes writes soft attributes for CLIP (§3.1).

f_t(l): for each of N prefixes P_i, the frozen T5 encoder reads [P_i ; template(l)]; the frozen decoder runs K*L
greedy steps (soft decoding); the K*L states are cut into K soft attributes of L vectors; a connector (the prompt
transformer) maps each to a CLIP soft prompt; the frozen CLIP text tower reads `[BOS] soft-prompt label [EOS]`;
the N*K features are averaged into one unit-norm embedding.
"""

from __future__ import annotations

import copy
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers import PreTrainedModel, T5Config, T5ForConditionalGeneration
from transformers import initialization as init

from .configuration_ovmlv import OvmlvConfig
from .label_encoder import LabelEncoder
from .prompt_connectors import CONNECTOR_CLASSES
from .soft_decoding import greedy_soft_decode

# Prefix init samples real token embeddings among T5's first 5000 ids (sentencepiece orders ids by frequency
# score), skipping 0-2 (pad, eos, unk): Lester et al. 2021's "sampled vocabulary" prompt init.
PREFIX_INIT_FIRST_TOKEN = 3
PREFIX_INIT_VOCAB = 5000


def mean_of_unit_features(features: torch.Tensor) -> torch.Tensor:
    """(C, G, D) features of G prompts per label -> (C, D): mean of the unit-norm features, re-normalised.

    Normalising before the mean (as CLIP's prompt ensembles do) keeps one prompt with a large-norm feature from
    outweighing the others.
    """
    return F.normalize(F.normalize(features, dim=-1).mean(dim=1), dim=-1)


def interpolate_label_embeddings(
    learnt: torch.Tensor, frozen: torch.Tensor, ratio: float, dim: int | None = None, codes: int = 0
) -> torch.Tensor:
    """normalize((1 - r) learnt + r frozen) of unit-norm (C, D) embeddings: r = 0 the learnt ones, r = 1 exactly the
    frozen ones (`torch.lerp`). The label side's WiSE-FT (`OvmlvDeploymentConfig.label_interpolation`). `dim`: D,
    for embeddings of several D-wide slots (C, M * D), each normalised alone (`label_members.py`). `codes`: the
    last columns hold direction codes (`direction_head.py`), which no label encoder makes: kept as learnt."""
    if not ratio:
        return learnt
    content = learnt.shape[-1] - codes
    mixed = torch.lerp(learnt[..., :content], frozen[..., :content], ratio)
    mixed = F.normalize(mixed.unflatten(-1, (-1, dim or content)), dim=-1).flatten(-2)
    return torch.cat([mixed, learnt[..., content:]], dim=-1)


def build_llm(config: T5Config) -> T5ForConditionalGeneration:
    """A T5 laid out as its checkpoint: the input embeddings shared by encoder and decoder, and an lm_head of its
    own where the checkpoint has one (`config.tie_word_embeddings` false, as in every Flan-T5).

    Built tied (transformers 5's T5 ties whatever its config says), then the head is untied: loading a checkpoint's
    own lm_head into a tied T5 would overwrite the input embeddings with it.
    """
    layout = copy.deepcopy(config)
    layout.tie_word_embeddings = True
    llm = T5ForConditionalGeneration._from_config(layout)
    if not config.tie_word_embeddings:
        untie_lm_head(llm)
    return llm


def untie_lm_head(llm: T5ForConditionalGeneration) -> None:
    """Give a tied T5 an lm_head parameter of its own (starting as a copy of the input embeddings), and stop
    transformers from re-tying it on load or saving it as a duplicate."""
    llm.lm_head.weight = nn.Parameter(llm.lm_head.weight.detach().clone())
    llm.all_tied_weights_keys.pop("lm_head.weight", None)
    llm.config.tie_word_embeddings = False


def without_fp16_autocast(device: torch.device):
    """A context that turns off an fp16 autocast around the frozen T5: Flan-T5's activations overflow fp16 (its
    own code clamps them; our decode loop keeps the T5 in its weights' dtype instead). bf16 autocast is kept."""
    fp16 = torch.is_autocast_enabled(device.type) and torch.get_autocast_dtype(device.type) == torch.float16
    return torch.autocast(device.type, enabled=False) if fp16 else nullcontext()


def add_lora(llm: nn.Module, rank: int) -> None:
    """LoRA (rank `rank`) on the T5 attention's query and value maps, in place (Table 10 ablation).

    peft is imported here, not at module level: Hub users of the default prefix model need not install it.
    peft initialises B = 0, so training starts from the frozen LLM; its layers are flagged as initialised so that
    transformers' weight-init pass does not overwrite that (`reset_lora` repeats peft's init where the layers were
    built on the meta device).
    """
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError as error:
        raise ImportError(
            "llm_adapter='lora' needs peft (`pip install peft`); the default llm_adapter='prefix' does not."
        ) from error
    inject_adapter_in_model(LoraConfig(r=rank, target_modules=["q", "v"], lora_dropout=0.0), llm)
    for name, module in llm.named_modules():
        if "lora_" in name:
            module._is_hf_initialized = True


def reset_lora(llm: nn.Module) -> None:
    """peft's own initialisation of every LoRA layer (A as nn.Linear's default, B = 0)."""
    for module in llm.modules():
        if hasattr(module, "reset_lora_parameters"):
            for adapter in module.lora_A:
                module.reset_lora_parameters(adapter, init_lora_weights=True)


class LlmLabelEncoder(LabelEncoder):
    """Base of the label encoders that own a T5: loading, freezing, eval-mode LLM, one pass per distinct label.

    The T5 stays in eval mode even when the model trains (`train()` is overridden): its weights are frozen, and
    dropout inside it would only add noise to the label embeddings (and break their determinism).
    """

    input_names = ("input_ids", "attention_mask", "llm_input_ids", "llm_attention_mask")

    def __init__(self, config: OvmlvConfig):
        super().__init__(config)
        self.llm = build_llm(config.llm_config)  # OvmlvConfig checked it is set

    @property
    def all_tied_weights_keys(self) -> dict[str, str]:
        """The T5's tied weights (embeddings, tied lm_head), named from here.

        transformers' `post_init` gathers tied weights from a model's direct children only; this plain module sits
        between `OvmlvModel` and the T5, so without this `from_pretrained` would not re-tie what saving deduplicated.
        """
        return {f"llm.{target}": f"llm.{source}" for target, source in self.llm.all_tied_weights_keys.items()}

    def freeze_llm(self) -> None:
        """Only adapter weights (LoRA) may train inside the LLM (the model calls this whenever it (re)freezes)."""
        for name, param in self.llm.named_parameters():
            param.requires_grad_("lora_" in name)

    def pretrained_weights(
        self, clip: PreTrainedModel, llm: T5ForConditionalGeneration | None = None
    ) -> dict[str, torch.Tensor]:
        if llm is None:
            raise ValueError(f"label_encoder={self.config.label_encoder!r} needs llm=<T5 checkpoint>.")
        own = self.llm.state_dict().keys()
        # LoRA wraps a linear map `x` as `x.base_layer`; the pretrained weight goes there.
        weights = {
            f"llm.{key if key in own else key.replace('.weight', '.base_layer.weight')}": value
            for key, value in llm.state_dict().items()
        }
        return {**super().pretrained_weights(clip), **weights}

    def train(self, mode: bool = True) -> LlmLabelEncoder:
        super().train(mode)
        self.llm.eval()
        return self

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        llm_input_ids: torch.Tensor,
        llm_attention_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Processor label inputs -> (C, D) unit-norm embeddings; a label repeated in the batch is encoded once."""
        rows = torch.cat([input_ids, llm_input_ids], dim=1)
        unique_rows, inverse = torch.unique(rows, dim=0, return_inverse=True)
        first = torch.empty(len(unique_rows), dtype=torch.long, device=rows.device)
        first.scatter_(0, inverse, torch.arange(len(rows), device=rows.device))  # one row index per distinct label
        embeds = self.encode(input_ids[first], attention_mask[first], llm_input_ids[first], llm_attention_mask[first])
        return embeds[inverse]

    def encode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        llm_input_ids: torch.Tensor,
        llm_attention_mask: torch.Tensor,
    ) -> torch.Tensor:
        """(C, D) unit-norm embeddings of C distinct labels."""
        raise NotImplementedError


class LlmPromptedLabelEncoder(LlmLabelEncoder):
    """The paper's f_t: learnable LLM prompts -> soft attributes -> connector -> soft-prompted frozen CLIP text tower.

    Trainable: the N prefixes (unless `freeze_prefixes`) and the connector. With `llm_adapter="lora"`, LoRA weights
    instead of prefixes; with `"none"`, nothing on the LLM side; either way the LLM reads the bare instruction once
    per label. With `config.start_at_zero_shot` the embedding is normalize(f_class_name(l) + g_l f_prompted(l)), its
    learnt part behind a gate from 0 (`label_gate`; one for every label, or scaled by the label's disagreement with
    its class name, `label_encoder_config.label_gate_form`), so a new encoder gives exactly the class-name embedding
    (docs/design.md §3.4); `config.deployment_config.label_interpolation` then mixes the result toward f_class_name
    at test time. Set `gradient_checkpointing` (or call the model's `activation_checkpointing_enable()`) to
    recompute the T5 encoder and each decoder step in the backward pass.
    """

    def __init__(self, config: OvmlvConfig):
        super().__init__(config)
        self.prefixes = None
        if config.label_encoder_config.llm_adapter == "prefix":
            shape = (
                config.label_encoder_config.num_prefixes,
                config.label_encoder_config.prefix_length,
                config.llm_config.d_model,
            )
            self.prefixes = nn.Parameter(torch.zeros(shape))
        elif config.label_encoder_config.llm_adapter == "lora":
            add_lora(self.llm, config.label_encoder_config.lora_rank)
        self.connector = CONNECTOR_CLASSES[config.label_encoder_config.connector](config)
        self.label_gate = nn.Parameter(torch.zeros(1)) if config.start_at_zero_shot else None
        self.gradient_checkpointing = False

    def freeze_llm(self) -> None:
        super().freeze_llm()
        if self.prefixes is not None:
            self.prefixes.requires_grad_(not self.config.label_encoder_config.freeze_prefixes)

    @property
    def num_prompts(self) -> int:
        """LLM prompts per label: N prefixes, or the one bare instruction without them."""
        return 1 if self.prefixes is None else self.prefixes.shape[0]

    def init_weights(self) -> None:
        """The gate at 0; each prefix vector at the embedding of a random frequent token (see PREFIX_INIT_*).

        Real token embeddings sit where the frozen encoder expects its inputs, at the right scale (Flan-T5's
        embedding norms are far from any fixed std), and prompt tuning trains faster from them than from noise.
        """
        if self.label_gate is not None:
            init.zeros_(self.label_gate)
        if self.prefixes is None:
            return
        vocab = self.llm.get_input_embeddings().weight  # (V, d)
        high = min(PREFIX_INIT_VOCAB, vocab.shape[0])
        ids = torch.randint(PREFIX_INIT_FIRST_TOKEN, high, (self.prefixes[..., 0].numel(),), device=vocab.device)
        init.copy_(self.prefixes, vocab[ids].view_as(self.prefixes))

    def init_from_towers(self) -> None:
        """LoRA layers, built on the meta device by `from_towers`, get peft's initialisation now."""
        if self.config.label_encoder_config.llm_adapter == "lora":
            reset_lora(self.llm)

    def prompt_embeddings(
        self, llm_input_ids: torch.Tensor, llm_attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(C, M) tokenized LLM prompts -> the T5 encoder's (C*prompts, P+M, d) input [P_i ; I] and its mask."""
        embeds = self.llm.get_input_embeddings()(llm_input_ids)  # (C, M, d)
        if self.prefixes is None:
            return embeds, llm_attention_mask
        num_labels, length, dim = embeds.shape
        num_prefixes, prefix_length = self.prefixes.shape[:2]
        embeds = torch.cat(
            [
                self.prefixes.to(embeds.dtype).expand(num_labels, num_prefixes, prefix_length, dim),
                embeds[:, None].expand(num_labels, num_prefixes, length, dim),
            ],
            dim=2,
        )  # (C, N, P+M, d)
        mask = torch.cat(
            [
                llm_attention_mask.new_ones(num_labels, num_prefixes, prefix_length),
                llm_attention_mask[:, None].expand(num_labels, num_prefixes, length),
            ],
            dim=2,
        )  # (C, N, P+M)
        return embeds.flatten(0, 1), mask.flatten(0, 1)

    def soft_attributes(self, llm_input_ids: torch.Tensor, llm_attention_mask: torch.Tensor) -> torch.Tensor:
        """(C, M) tokenized LLM prompts -> (C, prompts, K, L, d_model) soft attributes.

        All labels x prefixes go through the T5 encoder as one batch and then through one decode loop, in the T5's
        own dtype: never under an fp16 autocast (`without_fp16_autocast`).
        """
        config = self.config
        checkpointing = self.gradient_checkpointing and torch.is_grad_enabled()
        with without_fp16_autocast(llm_input_ids.device):
            embeds, mask = self.prompt_embeddings(llm_input_ids, llm_attention_mask)
            if checkpointing:
                encoder_states = checkpoint(self._encode_prompts, embeds, mask, use_reentrant=False)
            else:
                encoder_states = self._encode_prompts(embeds, mask)
            steps = config.label_encoder_config.num_attributes * config.label_encoder_config.attribute_length
            states, _ = greedy_soft_decode(self.llm, encoder_states, mask, steps, gradient_checkpointing=checkpointing)
        shape = (
            len(llm_input_ids),
            self.num_prompts,
            config.label_encoder_config.num_attributes,
            config.label_encoder_config.attribute_length,
            -1,
        )
        return states.view(shape).to(self.text_tower.dtype)

    def _encode_prompts(self, embeds: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.llm.encoder(inputs_embeds=embeds, attention_mask=mask).last_hidden_state

    def prompted_embedding(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        llm_input_ids: torch.Tensor,
        llm_attention_mask: torch.Tensor,
    ) -> torch.Tensor:
        """(C, D) unit-norm f_prompted of C distinct labels: the learnt path alone, before the gate (what text-only
        alignment trains, `training/label_alignment.py`)."""
        attributes = self.soft_attributes(llm_input_ids, llm_attention_mask)  # (C, N, K, L, d)
        num_labels, prompts_per_label = attributes.shape[0], attributes.shape[1] * attributes.shape[2]
        soft_prompts = self.connector(attributes.flatten(0, 2))  # (C*N*K, L, width)
        features = self.text_tower(
            input_ids.repeat_interleave(prompts_per_label, dim=0),
            attention_mask.repeat_interleave(prompts_per_label, dim=0),
            soft_prompt=soft_prompts,
        )  # (C*N*K, D)
        return mean_of_unit_features(features.view(num_labels, prompts_per_label, -1))

    def encode(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        llm_input_ids: torch.Tensor,
        llm_attention_mask: torch.Tensor,
    ) -> torch.Tensor:
        prompted = self.prompted_embedding(input_ids, attention_mask, llm_input_ids, llm_attention_mask)
        ratio = self.config.deployment_config.label_interpolation
        if self.label_gate is None and not ratio:
            return prompted
        class_name = F.normalize(self.text_tower(input_ids, attention_mask), dim=-1)
        learnt = (
            prompted
            if self.label_gate is None
            else F.normalize(class_name + self.gates(class_name, prompted) * prompted, dim=-1)
        )
        return interpolate_label_embeddings(learnt, class_name, ratio)

    def gates(self, class_name: torch.Tensor, prompted: torch.Tensor) -> torch.Tensor:
        """(C, 1) how much of f_prompted each label hears (`label_encoder_config.label_gate_form`): the shared gate, or
        it times the label's disagreement with its class name, 1 - cos (0 where the two agree)."""
        if self.config.label_encoder_config.label_gate_form == "shared":
            return self.label_gate.expand(len(class_name), 1)
        return self.label_gate * (1 - (class_name * prompted).sum(-1, keepdim=True))
