"""The temporal branch of the video encoder (paper §3.2; docs/design.md §4): divided space-time blocks beside CLIP.

Notation: B videos of N frames, S = 1 + P tokens per frame (CLS + P patches), D the CLIP vision width, and T
blocks paired with CLIP's last T layers l_t = L - T + t. The branch holds its tokens as one row matrix
(B*N*S + B, D): every frame's CLS and patches, then one TMP token per video (`RowLayout`). "CLIP rows" of a layer
are CLIP's tokens in that layout with the frames' mean CLS in the TMP slot (`clip_rows`). SigLIP towers have no CLS
(S = P): there TMP starts as the mean of every frame's patch tokens, and everything else is the same.

A new model scores exactly as frozen CLIP's frame mean (docs/design.md §4.1). With `config.start_at_zero_shot`
(the default) one gate holds that start where the video embedding pools the backbone's frames (the paper's
pooling): TMP's share of the embedding, from 0 (`VideoEncoder`). Behind it the branch is the paper's: temporal
attention and Proj_t random, and the spatial and temporal positions added to every patch token at the first block
(§3.2), so the first gradients toward frame order are first-order, not stuck on a zero plateau. Where the video
embedding pools the branch's own frames (branch-frame pooling, serial mode), the frames' path must stay CLIP's
too: each temporal attention output and each Proj_t is then scaled by tanh of its own gate from 0 (Flamingo), the
positions staying in the temporal attention's input. Without `start_at_zero_shot`, the form first built here:

Decisions beyond the paper's text, each chosen so that a new branch is exactly CLIP until it learns:
- Block 0 starts from the CLIP rows *entering* layer l_0 (so TMP starts as the mean of the frames' CLS tokens);
  block t > 0 adds Proj_t(CLIP rows entering l_t), Proj_t zero-initialised (the paper's
  V^T_t = V^T_{t-1} + Proj(V_s); TMP receives the projected mean CLS, as STAN adds it). Each block's spatial
  attention + MLP are copies of layer l_t, so with the temporal parts at zero the branch's frame tokens
  reproduce CLIP's own path.
- TMP is a read-only video token: it attends, within every frame, to [TMP, CLS, patches] and takes the mean over
  frames of those per-frame results (STAN's per-frame TMP average); frame tokens do not attend to TMP, so the
  frames' path stays CLIP's path (what the serial ablation and the identity at initialisation need).
- The learnable spatial (P, D) and temporal (M, D) positional embeddings are added to the normalised input of
  every block's temporal attention, whose output projection is zero-initialised: order information reaches every
  block while the residual stream keeps CLIP's tokens at initialisation. M frames are learnt
  (`config.temporal_config.temporal_positions`, the training clip length); clips of any other length N get them
  linearly resampled, so 1, 8 or 32 frames all work.
- TMP's mean over frames can be a learnt softmax weighting per block and head instead, from the plain mean
  (`config.temporal_config.temporal_frame_weights`, off by default): a path from frame order to TMP that is first
  order from the start, which the plain mean lacks (docs/design.md §4.2).
- How TMP and the frames' CLS tokens make the video embedding is the video encoder's choice (`VideoEncoder`:
  the paper's mean over TMP and the backbone's frame CLS tokens, or a gated TMP beside the branch's own frames).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPVisionConfig
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.clip.modeling_clip import CLIPMLP, eager_attention_forward

from .configuration_ovmlv import OvmlvConfig
from .towers import TOWER_KINDS, embedding_init_std

CLIP_INITIALISED = ("layer_norm1", "qkv", "out_proj", "layer_norm2", "mlp")  # a block's modules copied from CLIP


def clip_layer_weights(layer: nn.Module) -> dict[str, torch.Tensor]:
    """A CLIP encoder layer's weights under `TemporalBlock`'s names; q, k and v are stacked into `qkv`.

    The one map between the two layouts: the branch's initialisation, its CLIP reference and the regulariser all
    read it.
    """
    attention = layer.self_attn
    projections = (attention.q_proj, attention.k_proj, attention.v_proj)
    weights = {
        "qkv.weight": torch.cat([projection.weight for projection in projections]),
        "qkv.bias": torch.cat([projection.bias for projection in projections]),
    }
    for prefix, module in (
        ("layer_norm1", layer.layer_norm1),
        ("out_proj", attention.out_proj),
        ("layer_norm2", layer.layer_norm2),
        ("mlp", layer.mlp),
    ):
        weights.update({f"{prefix}.{name}": value for name, value in module.state_dict().items()})
    return {name: value.detach() for name, value in weights.items()}


class RowLayout(NamedTuple):
    """Where the branch's tokens sit in its (B*N*S + B, D) row matrix: frame tokens in (b, n, s) order, then TMP."""

    batch: int
    frames: int
    tokens: int
    patch_rows: torch.Tensor  # (B*P*N,) the patch tokens' rows in patch-major (b, p, n) order

    @classmethod
    def of(cls, batch: int, frames: int, tokens: int, device: torch.device, class_tokens: int = 1) -> RowLayout:
        """`class_tokens`: tokens before the patches in a frame (CLIP's CLS: 1; SigLIP: 0)."""
        rows = torch.arange(batch * frames * tokens, device=device).view(batch, frames, tokens)
        return cls(batch, frames, tokens, rows[:, :, class_tokens:].transpose(1, 2).flatten())


def clip_rows(tokens: torch.Tensor, class_tokens: int = 1) -> torch.Tensor:
    """(B, N, S, D) backbone tokens -> (B*N*S + B, D) branch rows; the TMP slot holds the frames' mean CLS (without
    a CLS token, `class_tokens=0`: the mean of all their patch tokens)."""
    summary = tokens[:, :, 0].mean(dim=1) if class_tokens else tokens.mean(dim=(1, 2))
    return torch.cat([tokens.flatten(0, 2), summary])


def resample_frames(table: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(C, M) values learnt per training frame -> (C, N), linearly resampled when N != M (as is when equal)."""
    if num_frames == table.shape[-1]:
        return table
    return F.interpolate(table[None], size=num_frames, mode="linear", align_corners=False)[0]


def _reference_name(name: str) -> str:
    return "clip_" + name.replace(".", "_")


class TemporalBlock(GradientCheckpointingLayer):
    """Divided space-time attention (TimeSformer/STAN order): temporal attention, spatial attention, MLP.

    The spatial attention (fused q/k/v), MLP and their norms are CLIP-initialised; the temporal attention is new.
    A copy of the CLIP values of the CLIP-initialised weights is kept in buffers (`clip_*`) for the weight
    regulariser and test-time patching; it is saved only when `persistent_reference` is set (an unfrozen
    backbone no longer holds CLIP's weights to rebuild it from).
    """

    is_causal = False  # every attention here is bidirectional (read by transformers' attention functions)

    def __init__(
        self, config: CLIPVisionConfig, persistent_reference: bool, gated: bool = False, frame_weights: int = 0
    ):
        super().__init__()
        width, eps = config.hidden_size, config.layer_norm_eps
        self.config = config
        self.num_heads = config.num_attention_heads
        self.scaling = (width // self.num_heads) ** -0.5
        self.temporal_norm = nn.LayerNorm(width, eps=eps)
        self.temporal_qkv = nn.Linear(width, 3 * width)
        self.temporal_out = nn.Linear(width, width)  # zero-initialised, or random behind a gate (`TemporalBranch`)
        self.temporal_gate = nn.Parameter(torch.zeros(1)) if gated else None  # tanh(gate) scales the output
        # TMP's per-frame reads are averaged with softmax(these) per head over the M training frames, resampled to
        # N; zero is the plain mean (`OvmlvTemporalConfig.temporal_frame_weights`; None: the plain mean, always).
        self.tmp_frame_gates = nn.Parameter(torch.zeros(self.num_heads, frame_weights)) if frame_weights else None
        self.layer_norm1 = nn.LayerNorm(width, eps=eps)
        self.qkv = nn.Linear(width, 3 * width)
        self.out_proj = nn.Linear(width, width)
        self.layer_norm2 = nn.LayerNorm(width, eps=eps)
        self.mlp = CLIPMLP(config)
        self.clip_initialised = tuple(
            f"{prefix}.{name}"
            for prefix in CLIP_INITIALISED
            for name, _ in self.get_submodule(prefix).named_parameters()
        )
        for name in self.clip_initialised:
            parameter = self.get_parameter(name)
            self.register_buffer(_reference_name(name), torch.zeros_like(parameter), persistent=persistent_reference)

    def clip_initialised_modules(self) -> tuple[nn.Module, ...]:
        """The modules copied from a CLIP layer (the training recipe gives them no weight decay)."""
        return tuple(self.get_submodule(prefix) for prefix in CLIP_INITIALISED)

    def set_clip_reference(self, layer: nn.Module) -> None:
        """Keep the CLIP values of the CLIP-initialised weights, from `layer` (the matching CLIP encoder layer)."""
        weights = clip_layer_weights(layer)
        with torch.no_grad():
            for name in self.clip_initialised:
                # Assigned, not copied into: after `from_pretrained` a non-persistent buffer may be uninitialised.
                setattr(self, _reference_name(name), weights[name].clone())

    def clip_reference(self) -> dict[str, torch.Tensor]:
        """The CLIP values of the CLIP-initialised weights, by parameter name."""
        return {name: self.get_buffer(_reference_name(name)) for name in self.clip_initialised}

    @torch.no_grad()
    def patch_toward_clip(self, ratio: float) -> None:
        """theta = (1 - ratio) theta_ft + ratio theta_clip for every CLIP-initialised weight, in place (test-time
        patching; `torch.lerp` gives CLIP's exact values at ratio 1)."""
        for name, reference in self.clip_reference().items():
            parameter = self.get_parameter(name)
            parameter.copy_(torch.lerp(parameter, reference, ratio))

    def _clip_initialised_call(self, name: str, x: torch.Tensor, toward_clip: float) -> torch.Tensor:
        """The CLIP-initialised module `name` on x, its weights interpolated toward CLIP's by `toward_clip` = r.

        Each of these modules (linear map, LayerNorm) is affine in its own weights, so running it with
        (1 - r) theta + r theta_clip gives exactly (1 - r) module(x) + r module_clip(x): the module is called, never
        its weights read (offload hooks and DeepSpeed ZeRO-3 gather weights when a module is called), and the
        gradient reaches theta through the call, scaled by 1 - r as it would through the interpolated weights.
        """
        module = self.get_submodule(name)
        output = module(x)
        if not toward_clip:
            return output
        weight, bias = (self.get_buffer(_reference_name(f"{name}.{part}")) for part in ("weight", "bias"))
        if isinstance(module, nn.LayerNorm):
            reference = F.layer_norm(x, module.normalized_shape, weight, bias, module.eps)
        else:
            reference = F.linear(x, weight, bias)
        return torch.lerp(output, reference, toward_clip)

    def _mlp(self, x: torch.Tensor, toward_clip: float) -> torch.Tensor:
        """(R, D) -> (R, D): CLIP's MLP, fc1 and fc2 each interpolated toward CLIP's (see `_clip_initialised_call`)."""
        hidden = self.mlp.activation_fn(self._clip_initialised_call("mlp.fc1", x, toward_clip))
        return self._clip_initialised_call("mlp.fc2", hidden, toward_clip)

    def _attend(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """(M, H, L, d) queries over (M, H, L', d) keys/values, unmasked -> (M, L, H, d), through the attention
        implementation the model was loaded with (`config._attn_implementation`: sdpa, eager, flash...)."""
        attention = ALL_ATTENTION_FUNCTIONS.get_interface(self.config._attn_implementation, eager_attention_forward)
        attended, _ = attention(self, query, key, value, None, scaling=self.scaling, dropout=0.0)
        return attended

    def _split_heads(self, qkv: torch.Tensor) -> torch.Tensor:
        """(M, L, 3D) -> (3, M, H, L, D/H) as a view: q, k, v in the 4-D layout SDPA's fused CPU kernel takes."""
        return qkv.unflatten(-1, (3, self.num_heads, -1)).permute(2, 0, 3, 1, 4)

    def forward(
        self, rows: torch.Tensor, layout: RowLayout, position: torch.Tensor, toward_clip: float = 0.0
    ) -> torch.Tensor:
        """rows (B*N*S + B, D): every frame's tokens, then each video's TMP -> the same rows, updated.

        One row matrix for everything, so each projection is one matmul and every step few large ops: on a
        small CPU the per-op cost is what separates a branch as efficient as CLIP from one that is not.
        position: (P, N, D) spatial + temporal positional embeddings added to the temporal attention's input, or
            None where the branch added them to the patch tokens already.
        toward_clip: r > 0 runs the CLIP-initialised modules with their weights interpolated toward CLIP's (the weight
        regulariser); the temporal attention is new and runs as it is.
        """
        batch, num_frames, tokens = layout.batch, layout.frames, layout.tokens
        split = batch * num_frames * tokens
        # Temporal attention: every patch attends to itself in the other frames, read in patch-major order.
        x = self.temporal_norm(rows.index_select(0, layout.patch_rows)).unflatten(
            0, (batch, -1, num_frames)
        )  # (B, P, N, D)
        if position is not None:
            x = x + position
        q, k, v = self._split_heads(self.temporal_qkv(x.flatten(0, 1)))  # each (B*P, H, N, d)
        attended = self._attend(q, k, v).reshape(-1, rows.shape[-1])  # (B*P*N, D)
        update = self.temporal_out(attended)
        if self.temporal_gate is not None:
            update = torch.tanh(self.temporal_gate) * update
        rows = rows.index_add(0, layout.patch_rows, update)

        # Spatial attention within each frame (CLIP's own attention), and TMP reading every frame.
        normed = self._clip_initialised_call("layer_norm1", rows, toward_clip)
        qkv = self._clip_initialised_call("qkv", normed, toward_clip)  # (B*N*S + B, 3D)
        q, k, v = self._split_heads(qkv[:split].view(batch * num_frames, tokens, -1))  # each (B*N, H, S, d)
        attended = self._attend(q, k, v).flatten(0, 1)  # (B*N*S, H, d)
        tmp_q, tmp_k, tmp_v = (part[:, None] for part in self._split_heads(qkv[split:, None]))  # (B, 1, H, 1, d)
        per_frame = (batch, num_frames, self.num_heads, -1, k.shape[-1])
        keys = torch.cat([tmp_k.expand(per_frame), k.view(per_frame)], dim=-2).flatten(0, 1)  # (B*N, H, 1+S, d)
        values = torch.cat([tmp_v.expand(per_frame), v.view(per_frame)], dim=-2).flatten(0, 1)
        tmp_attended = self._attend(tmp_q.expand(per_frame).flatten(0, 1), keys, values)  # (B*N, 1, H, d)
        tmp_attended = tmp_attended.unflatten(0, (batch, num_frames))  # (B, N, 1, H, d)
        if self.tmp_frame_gates is None:
            tmp_attended = tmp_attended.mean(dim=1)  # (B, 1, H, d): mean over frames
        else:  # a learnt weighting over frames: which frames TMP reads most is a first-order function of order
            weights = torch.softmax(resample_frames(self.tmp_frame_gates, num_frames), dim=-1)  # (H, N)
            tmp_attended = torch.einsum("bnqhd,hn->bqhd", tmp_attended, weights)
        attended = torch.cat([attended, tmp_attended.flatten(0, 1)]).flatten(-2)  # (B*N*S + B, D)
        rows = rows + self._clip_initialised_call("out_proj", attended, toward_clip)
        return rows + self._mlp(self._clip_initialised_call("layer_norm2", rows, toward_clip), toward_clip)


class TemporalBranch(nn.Module):
    """T temporal blocks beside (parallel) or in place of (serial) CLIP's last T layers -> final frames and TMP.

    Parallel (paper): the frozen backbone runs beside it; block t reads the branch's previous tokens plus
    Proj_t(the tokens entering CLIP layer l_t). Serial (Table 11 ablation): the blocks are the backbone's last T
    layers, made temporal: the backbone stops before l_0 and the blocks run in a chain, without Proj_t (there is
    no parallel path to fuse); the frame CLS tokens of the output then come from the last block.
    """

    def __init__(self, config: OvmlvConfig):
        super().__init__()
        vision = config.vision_config
        num_patches = (vision.image_size // vision.patch_size) ** 2
        depth = config.temporal_config.temporal_layers
        self.parallel = config.temporal_config.temporal_mode == "parallel"
        self.class_tokens = TOWER_KINDS[config.towers_type].vision_tower.class_tokens  # CLIP's CLS: 1; SigLIP: 0
        gated = config.gates_branch_paths
        self.random_new_layers = config.start_at_zero_shot  # a gate holds the start: new layers start random
        self.positions_on_patches = config.start_at_zero_shot and not gated  # §3.2: added to each patch token
        self.blocks = nn.ModuleList(
            TemporalBlock(
                vision,
                persistent_reference=not config.freeze_vision_backbone,
                gated=gated,
                frame_weights=config.temporal_config.temporal_positions
                if config.temporal_config.temporal_frame_weights
                else 0,
            )
            for _ in range(depth)
        )
        fusions = depth - 1 if self.parallel else 0
        self.fusions = nn.ModuleList(nn.Linear(vision.hidden_size, vision.hidden_size) for _ in range(fusions))
        self.fusion_gates = nn.Parameter(torch.zeros(fusions)) if gated and fusions else None  # tanh scales Proj_t
        self.spatial_position = nn.Parameter(torch.zeros(num_patches, vision.hidden_size))
        self.temporal_position = nn.Parameter(
            torch.zeros(config.temporal_config.temporal_positions, vision.hidden_size)
        )
        # TMP's share of the video embedding, from 0 (`VideoEncoder`; `OvmlvConfig.gates_tmp`).
        self.tmp_gate = nn.Parameter(torch.zeros(1)) if config.gates_tmp else None
        self.position_init_std = embedding_init_std(vision)  # "small" (docs/design.md §4)
        self.positions_std = (
            config.temporal_config.temporal_position_std or self.position_init_std
        )  # docs/design.md §4.2

    @torch.no_grad()
    def init_weights(self) -> None:
        """The new weights' initialisation (called from `_init_weights`; a no-op on weights already loaded): the
        temporal output and Proj_t random at CLIP's initialiser scale behind zero gates, or zero without gates."""
        outputs = [block.temporal_out for block in self.blocks] + list(self.fusions)
        for layer in outputs:
            if self.random_new_layers:
                init.normal_(layer.weight, std=self.position_init_std)
            else:
                init.zeros_(layer.weight)
            init.zeros_(layer.bias)
        init.normal_(self.spatial_position, std=self.positions_std)
        init.normal_(self.temporal_position, std=self.positions_std)
        gates = [block.temporal_gate for block in self.blocks] + [self.fusion_gates, self.tmp_gate]
        gates += [block.tmp_frame_gates for block in self.blocks]
        for gate in gates:
            if gate is not None:
                init.zeros_(gate)

    @staticmethod
    def clip_weights(layers: Sequence[nn.Module], persistent_reference: bool) -> dict[str, torch.Tensor]:
        """What the branch takes from CLIP's last T `layers`, under its own names: block t's CLIP-initialised weights
        from layer t, and their reference copies when those are saved (`persistent_reference`). Copies, never
        CLIP's own tensors: the branch trains them while CLIP's stay frozen."""
        weights = {}
        for index, layer in enumerate(layers):
            for name, value in clip_layer_weights(layer).items():
                weights[f"blocks.{index}.{name}"] = value.clone()
                if persistent_reference:
                    weights[f"blocks.{index}.{_reference_name(name)}"] = value.clone()
        return weights

    def set_clip_reference(self, layers: Sequence[nn.Module]) -> None:
        """Pair block t with `layers[t]` (CLIP's last T layers) for the reference the regulariser and patching use."""
        for block, layer in zip(self.blocks, layers, strict=True):
            block.set_clip_reference(layer)

    def patch_toward_clip(self, ratio: float) -> None:
        """Test-time patching of every block (`TemporalBlock.patch_toward_clip`)."""
        for block in self.blocks:
            block.patch_toward_clip(ratio)

    def temporal_position_for(self, num_frames: int) -> torch.Tensor:
        """(M, D) learnt positions -> (N, D), linearly resampled when N != M (the table is used as is when equal)."""
        table = self.temporal_position
        if num_frames == table.shape[0]:
            return table
        return resample_frames(table.T, num_frames).T

    def forward(
        self, clip_tokens: Sequence[torch.Tensor], toward_clip: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """clip_tokens: the tokens entering CLIP layers l_0.. (T of them in parallel mode, 1 in serial), each
        (B, N, S, D) -> final frames (B, N, S, D), TMP (B, D) and TMP's gate (1,) (None without one).
        toward_clip: see `TemporalBlock.forward`.

        The gate is handed out as a copy made here, where offload hooks and ZeRO-3 have gathered this module's
        parameters; the caller never reads the parameter itself."""
        batch, num_frames, tokens, width = clip_tokens[0].shape
        layout = RowLayout.of(batch, num_frames, tokens, clip_tokens[0].device, self.class_tokens)
        rows = clip_rows(clip_tokens[0], self.class_tokens)
        position = self.spatial_position[:, None] + self.temporal_position_for(num_frames)  # (P, N, D)
        if self.positions_on_patches:  # every patch token, in the rows' patch-major (b, p, n) order
            rows = rows.index_add(0, layout.patch_rows, position.expand(batch, *position.shape).flatten(0, 2))
            position = None
        for index, block in enumerate(self.blocks):
            if index and self.parallel:
                fused = self.fusions[index - 1](clip_rows(clip_tokens[index], self.class_tokens))
                if self.fusion_gates is not None:
                    fused = torch.tanh(self.fusion_gates[index - 1]) * fused
                rows = rows + fused
            rows = block(rows, layout, position, toward_clip)
        split = batch * num_frames * tokens
        gate = None if self.tmp_gate is None else self.tmp_gate.clone()
        return rows[:split].view(batch, num_frames, tokens, width), rows[split:], gate
