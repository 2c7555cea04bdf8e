"""Frame preprocessing as the towers' image processors do it. CLIP's (`CLIPImageProcessor`): resize the shorter side
with PIL's bicubic filter, centre crop, rescale to [0, 1], normalise. SigLIP's (`SiglipImageProcessor`): resize both
sides to the square (no crop, the aspect ratio is not kept), rescale, normalise (mean = std = 0.5). Pure PIL +
torch: no torchvision here."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

# OpenAI CLIP's normalisation constants.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def clip_resize_and_crop(image: Image.Image, size: int) -> np.ndarray:
    """(size, size, 3) uint8 RGB: `image` with its shorter side resized to `size` (bicubic, the longer side
    truncated to an integer as CLIPImageProcessor does) and the centre square cropped.

    Only the crop is computed: PIL resizes the crop's box of the source straight to (size, size) with the full
    resize's sampling positions and filter, which matches CLIPImageProcessor within one grey level in about 60 % of
    the time of resizing the whole frame (the long side is not resized only to be cut away).
    """
    width, height = image.size
    if width <= height:
        resized_width, resized_height = size, int(size * height / width)
    else:
        resized_width, resized_height = int(size * width / height), size
    left, top = (resized_width - size) // 2, (resized_height - size) // 2
    x_scale, y_scale = width / resized_width, height / resized_height
    box = (left * x_scale, top * y_scale, (left + size) * x_scale, (top + size) * y_scale)
    return np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC, box=box))


def squash_resize(image: Image.Image, size: int) -> np.ndarray:
    """(size, size, 3) uint8 RGB: `image` resized to the square with PIL's bicubic filter, as SigLIP's processor."""
    return np.asarray(image.convert("RGB").resize((size, size), Image.Resampling.BICUBIC))


def frames_to_pixel_values(
    frames: np.ndarray,
    image_size: int,
    mean: tuple[float, ...] = CLIP_MEAN,
    std: tuple[float, ...] = CLIP_STD,
    center_crop: bool = True,
) -> torch.Tensor:
    """(..., H, W, 3) uint8 frames -> (..., 3, image_size, image_size) float32, preprocessed.

    Frames the decoder already resized (and cropped: `clip_resize_and_crop`) are only rescaled to [0, 1] and
    normalised with `mean` and `std`; others are resized first, with CLIP's centre crop (`center_crop`) or squashed
    to the square as SigLIP's (`squash_resize`). Frames stay uint8 until here.
    """
    if frames.shape[-3:-1] != (image_size, image_size):
        flat = frames.reshape(-1, *frames.shape[-3:])
        resize = clip_resize_and_crop if center_crop else squash_resize
        cropped = [resize(Image.fromarray(frame), image_size) for frame in flat]
        frames = np.stack(cropped).reshape(*frames.shape[:-3], image_size, image_size, 3)
    pixels = torch.from_numpy(np.ascontiguousarray(frames)).movedim(-1, -3).float() / 255.0
    mean_t = torch.tensor(mean).view(3, 1, 1)
    std_t = torch.tensor(std).view(3, 1, 1)
    return (pixels - mean_t) / std_t
