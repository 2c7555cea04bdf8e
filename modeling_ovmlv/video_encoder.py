"""The video encoder f_v: frozen CLIP (or SigLIP) on every frame, then frame mean-pooling or the temporal branch."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel

from .configuration_ovmlv import OvmlvConfig
from .deep_prompts import place_prompt
from .temporal import TemporalBranch
from .towers import build_vision_tower


@dataclass
class FrameTokens:
    """What the backbone pass leaves for the head; kept so the regulariser re-runs only the branch.

    pooled: (B, N, D') every frame's pooled final tokens from the frozen backbone (`vision_tower.pool_frames`: CLIP's
        post-layernormed CLS, SigLIP's head output); None when the branch makes the frames' tokens
        (`config.temporal_config.pools_branch_frames`).
    branch_inputs: the tokens entering the layers the branch reads, each (B, N, S, D); empty when T = 0.
    backbone_tokens: (B, N, S, D) the last tokens the backbone pass computed (its final layer's output, or what
        enters the layer where the branch takes over): what the direction head reads (`direction_head.py`).
    """

    pooled: torch.Tensor | None
    branch_inputs: tuple[torch.Tensor, ...]
    backbone_tokens: torch.Tensor


class VideoEncoder(nn.Module):
    """(B, N, 3, H, W) frames -> (B, D) unit-norm video embeddings.

    With `temporal_layers == 0` this is frame mean-pooling of CLIP image embeddings, order-blind by design. With a
    temporal branch the embedding pools its final TMP token with the frames' CLS tokens, every token through CLIP's
    post-layernorm before the mean and the visual projection after it (as CLIP pools its own CLS; STAN normalises
    per token too). `config.temporal_config.temporal_pooling` says which CLS tokens (on SigLIP towers, which have
    none, read "a frame's pooled tokens" for LN(CLS_n): the attention head over its patch tokens, and for LN(TMP)
    the head over TMP alone; the projection is then the identity; docs/design.md, "SigLIP towers"):

    - `"clip_frames"` (paper §3.2, the default): the frozen backbone's final CLS of each of the N frames, CLIP's
      last layer included: pooled = mean(LN(TMP), LN(CLS_1), ..., LN(CLS_N)), so N/(N+1) of the embedding rests on
      the frozen backbone (the protection the paper's Table 3b measures). With `config.start_at_zero_shot` TMP's
      share is gated as below (g = 1 is the paper's mean): a new model is exactly CLIP's frame mean. Without it,
      TMP's share is 1/(N+1) from the start; TMP starts as the mean of the frames' CLS tokens through copies of
      CLIP's last layers, so a new model is close to CLIP's frame mean.
    - `"branch_frames"`: the branch's own final frame tokens (CLIP's last layer is then not run: the branch's copy
      of it makes them), TMP's share under a learnable gate g starting at 0:
      m = mean_n LN(CLS_n), pooled = m + g (LN(TMP) - m) / (N + 1). A new model is exactly CLIP's frame mean.
    In serial mode the branch replaces CLIP's last layers, so the frames' CLS tokens are the branch's either way.
    """

    def __init__(self, config: OvmlvConfig):
        super().__init__()
        self.config = config
        self.vision_tower = build_vision_tower(config)
        self.temporal_branch = TemporalBranch(config) if config.temporal_config.temporal_layers else None

    @property
    def branch_layers(self) -> nn.ModuleList:
        """CLIP's last T layers, the ones the branch's blocks are paired with."""
        layers = self.vision_tower.layers
        return layers[len(layers) - self.config.temporal_config.temporal_layers :]

    def pretrained_weights(self, clip: PreTrainedModel) -> dict[str, torch.Tensor]:
        """The weights this encoder takes from CLIP (or SigLIP), under its own parameter names: the vision tower, and
        the branch's CLIP-initialised layers (copies of CLIP's last T layers)."""
        weights = {f"vision_tower.{key}": value for key, value in self.vision_tower.pretrained_weights(clip).items()}
        if self.temporal_branch is not None:
            layers = clip.vision_model.encoder.layers
            branch = self.temporal_branch.clip_weights(
                layers[len(layers) - self.config.temporal_config.temporal_layers :],
                persistent_reference=not self.config.freeze_vision_backbone,
            )
            weights.update({f"temporal_branch.{key}": value for key, value in branch.items()})
        return weights

    def refresh_clip_reference(self) -> None:
        """Rebuild the branch's unsaved CLIP reference from the frozen backbone (after loading weights).

        With a frozen backbone the matching layers *are* CLIP's weights, so the reference is not saved twice; with
        an unfrozen one the reference is saved and loaded instead, and kept here.
        """
        if self.temporal_branch is not None and self.config.freeze_vision_backbone:
            self.temporal_branch.set_clip_reference(self.branch_layers)

    def encode_frames(
        self, pixel_values_videos: torch.Tensor, layer_prompts: torch.Tensor | None = None
    ) -> FrameTokens:
        """The backbone pass: (B, N, 3, H, W) -> FrameTokens. Without gradient when the backbone is frozen and reads
        no learnt prompts, so no activations are stored for it. It runs every CLIP layer, except where the branch
        makes the frames' final tokens itself: in serial mode it stops where the branch takes over, with branch-frame
        pooling before CLIP's last layer (the branch's copy of it replaces it).

        layer_prompts: optional (J, b, hidden) ViLT-CLIP vision prompts (`deep_prompts.DeepPrompts`): prompt i is
            put after every frame's tokens at the input of layer i, in place of the previous layer's prompt outputs;
            they are dropped after the last layer (frame mean pooling only: `temporal_layers=0`).
        """
        batch, num_frames = pixel_values_videos.shape[:2]
        layers = self.vision_tower.layers
        first = len(layers) - self.config.temporal_config.temporal_layers
        branch, serial = self.temporal_branch is not None, self.config.temporal_config.temporal_mode == "serial"
        stop = len(layers)
        if branch and self.config.temporal_config.pools_branch_frames:
            stop = first if serial else len(layers) - 1
        trainable = any(parameter.requires_grad for parameter in self.vision_tower.parameters())
        trainable = trainable or (layer_prompts is not None and layer_prompts.requires_grad)
        branch_inputs = []
        with torch.set_grad_enabled(torch.is_grad_enabled() and trainable):
            hidden = self.vision_tower.embed(pixel_values_videos.flatten(0, 1))  # (B*N, S, D)
            frame_tokens = hidden.shape[1]
            for index, layer in enumerate(layers[:stop]):
                if branch and index >= first:
                    branch_inputs.append(hidden.unflatten(0, (batch, num_frames)))
                if layer_prompts is not None and index < len(layer_prompts):
                    hidden = place_prompt(hidden, layer_prompts[index], start=frame_tokens)  # (B*N, S + b, D)
                hidden = layer(hidden, None)
            hidden = hidden[:, :frame_tokens]
        hidden = hidden.unflatten(0, (batch, num_frames))  # (B, N, S, D)
        if not branch:
            return FrameTokens(pooled=self.vision_tower.pool_frames(hidden), branch_inputs=(), backbone_tokens=hidden)
        if serial:
            return FrameTokens(pooled=None, branch_inputs=(hidden,), backbone_tokens=hidden)
        if self.config.temporal_config.pools_branch_frames:  # + the tokens entering the last layer
            return FrameTokens(pooled=None, branch_inputs=(*branch_inputs, hidden), backbone_tokens=hidden)
        pooled = self.vision_tower.pool_frames(hidden)
        return FrameTokens(pooled=pooled, branch_inputs=tuple(branch_inputs), backbone_tokens=hidden)

    def embed(self, tokens: FrameTokens, toward_clip: float = 0.0) -> torch.Tensor:
        """The head: FrameTokens -> (B, D) unit norm. `toward_clip` = r runs the branch with its CLIP-initialised
        weights interpolated toward CLIP's, (1 - r) theta_ft + r theta_clip (the weight regulariser; gradients reach
        theta_ft)."""
        tower = self.vision_tower
        frames, tmp, gate = tokens.pooled, None, None
        if self.temporal_branch is not None:
            final, tmp, gate = self.temporal_branch(tokens.branch_inputs, toward_clip)  # (B, N, S, D), (B, D)
            if frames is None:
                frames = tower.pool_frames(final)
        frames_pooled = frames.mean(dim=1)  # (B, D')
        if tmp is None:
            pooled = frames_pooled
        elif gate is None:  # the plain mean over [TMP, CLS_1..CLS_N]
            pooled = (tower.pool_token(tmp) + frames.shape[1] * frames_pooled) / (frames.shape[1] + 1)
        else:
            pooled = frames_pooled + gate * (tower.pool_token(tmp) - frames_pooled) / (frames.shape[1] + 1)
        return F.normalize(tower.project(pooled), dim=-1)

    def forward(self, pixel_values_videos: torch.Tensor) -> torch.Tensor:
        return self.embed(self.encode_frames(pixel_values_videos))
