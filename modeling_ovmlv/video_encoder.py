"""The video encoder f_v: frozen CLIP on every frame, then frame mean-pooling or the temporal branch."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import CLIPModel

from .clip_towers import ClipVisionTower
from .configuration_ovmlv import OvmlvConfig
from .temporal import TemporalBranch


@dataclass
class FrameTokens:
    """What the backbone pass leaves for the head; kept so the regulariser re-runs only the branch.

    cls: (B, N, D) every frame's final CLS token from the backbone; None with a branch (the branch makes them).
    branch_inputs: the tokens entering the CLIP layers the branch reads, each (B, N, 1+P, D); empty when T = 0.
    """

    cls: torch.Tensor | None
    branch_inputs: tuple[torch.Tensor, ...]


class VideoEncoder(nn.Module):
    """(B, N, 3, H, W) frames -> (B, D) unit-norm video embeddings.

    With `temporal_layers == 0` this is frame mean-pooling of CLIP image embeddings, order-blind by design.
    With T > 0 the output is the paper's mean over [TMP, CLS_1..CLS_N], each token through CLIP's post-layernorm
    before the mean and the visual projection after it (STAN also normalises per token), with TMP's share gated:

        m = mean_n LN(CLS_n);   pooled = m + g * (LN(TMP) - m) / (N + 1);   f_v = normalize(W_proj pooled)

    g = 1 is exactly the plain mean over the N + 1 tokens; g starts at 0, so a new model's embedding is exactly
    CLIP's frame mean pooling (the identity at initialisation), and g learns how much the branch should speak.
    CLS_n are the branch's final frame tokens, not the backbone's: they equal CLIP's at initialisation, and they let
    every branch weight shape the embedding. (Pooling the frozen backbone's CLS would leave the branch a voice of
    g / (N + 1) through TMP alone; it then barely learns.)
    """

    def __init__(self, config: OvmlvConfig):
        super().__init__()
        self.config = config
        self.vision_tower = ClipVisionTower(config.vision_config, config.projection_dim)
        self.temporal_branch = TemporalBranch(config) if config.temporal_layers else None

    @property
    def branch_layers(self) -> nn.ModuleList:
        """CLIP's last T layers, the ones the branch's blocks are paired with."""
        layers = self.vision_tower.layers
        return layers[len(layers) - self.config.temporal_layers :]

    def pretrained_weights(self, clip: CLIPModel) -> dict[str, torch.Tensor]:
        """The weights this encoder takes from CLIP, under its own parameter names: the vision tower, and the branch's
        CLIP-initialised layers (copies of CLIP's last T layers)."""
        weights = {
            **{f"vision_tower.vision_model.{key}": value for key, value in clip.vision_model.state_dict().items()},
            **{
                f"vision_tower.visual_projection.{key}": value
                for key, value in clip.visual_projection.state_dict().items()
            },
        }
        if self.temporal_branch is not None:
            layers = clip.vision_model.encoder.layers
            branch = self.temporal_branch.clip_weights(
                layers[len(layers) - self.config.temporal_layers :],
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

    def encode_frames(self, pixel_values_videos: torch.Tensor) -> FrameTokens:
        """The backbone pass: (B, N, 3, H, W) -> FrameTokens. Without gradient when the backbone is frozen, so no
        activations are stored for it. With a parallel branch CLIP's last layer is not run: the branch's own copy
        of it makes the frames' final tokens, so CLIP's output would go unused."""
        batch, num_frames = pixel_values_videos.shape[:2]
        layers = self.vision_tower.layers
        first = len(layers) - self.config.temporal_layers
        branch, serial = self.temporal_branch is not None, self.config.temporal_mode == "serial"
        trainable = any(parameter.requires_grad for parameter in self.vision_tower.parameters())
        branch_inputs = []
        with torch.set_grad_enabled(torch.is_grad_enabled() and trainable):
            hidden = self.vision_tower.embed(pixel_values_videos.flatten(0, 1))  # (B*N, 1+P, D)
            # With a branch the backbone stops where the branch takes over its layers: at the first of them
            # (serial), or before CLIP's last one (parallel: the branch's copy makes the frames' final tokens).
            stop = (first if serial else len(layers) - 1) if branch else len(layers)
            for index, layer in enumerate(layers[:stop]):
                if index >= first:
                    branch_inputs.append(hidden.unflatten(0, (batch, num_frames)))
                hidden = layer(hidden, None)
        hidden = hidden.unflatten(0, (batch, num_frames))  # (B, N, 1+P, D)
        if not branch:
            return FrameTokens(cls=hidden[:, :, 0], branch_inputs=())
        if serial:
            return FrameTokens(cls=None, branch_inputs=(hidden,))
        return FrameTokens(cls=None, branch_inputs=(*branch_inputs, hidden))  # + the tokens entering the last layer

    def embed(self, tokens: FrameTokens, toward_clip: float = 0.0) -> torch.Tensor:
        """The head: FrameTokens -> (B, D) unit norm. `toward_clip` = r runs the branch with its CLIP-initialised
        weights interpolated toward CLIP's, (1 - r) theta_ft + r theta_clip (the weight regulariser; gradients reach
        theta_ft)."""
        tower, branch = self.vision_tower.vision_model, self.temporal_branch
        cls, tmp = tokens.cls, None
        if branch is not None:
            frames, tmp = branch(tokens.branch_inputs, toward_clip)  # (B, N, 1+P, D), (B, D)
            cls = frames[:, :, 0]
        pooled = tower.post_layernorm(cls).mean(dim=1)  # (B, D)
        if tmp is not None:
            pooled = pooled + branch.tmp_gate * (tower.post_layernorm(tmp) - pooled) / (cls.shape[1] + 1)
        return F.normalize(self.vision_tower.visual_projection(pooled), dim=-1)

    def forward(self, pixel_values_videos: torch.Tensor) -> torch.Tensor:
        return self.embed(self.encode_frames(pixel_values_videos))
