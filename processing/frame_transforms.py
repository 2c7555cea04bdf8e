"""CLIP's frame preprocessing (resize shorter side, centre crop, normalise) in pure torch: no torchvision here."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

# OpenAI CLIP's normalisation constants.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def frames_to_pixel_values(
    frames: np.ndarray, image_size: int, mean: tuple[float, ...] = CLIP_MEAN, std: tuple[float, ...] = CLIP_STD
) -> torch.Tensor:
    """(..., H, W, 3) uint8 frames -> (..., 3, image_size, image_size) float32, CLIP-normalised.

    Frames stay uint8 until here; the resize is skipped when the decoder already produced the right size.
    """
    leading = frames.shape[:-3]
    pixels = torch.from_numpy(np.ascontiguousarray(frames)).reshape(-1, *frames.shape[-3:])
    pixels = pixels.permute(0, 3, 1, 2).float()  # (N, 3, H, W)
    height, width = pixels.shape[-2:]
    if min(height, width) != image_size:
        scale = image_size / min(height, width)
        size = (max(image_size, round(height * scale)), max(image_size, round(width * scale)))
        pixels = F.interpolate(pixels, size=size, mode="bicubic", align_corners=False, antialias=True)
        pixels = pixels.clamp_(0, 255)
        height, width = size
    top, left = (height - image_size) // 2, (width - image_size) // 2
    pixels = pixels[..., top : top + image_size, left : left + image_size] / 255.0
    mean_t = torch.tensor(mean).view(1, 3, 1, 1)
    std_t = torch.tensor(std).view(1, 3, 1, 1)
    return ((pixels - mean_t) / std_t).reshape(*leading, 3, image_size, image_size)
