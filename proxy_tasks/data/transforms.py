"""Per-image geometry for the input pipelines: flip, resize the long side (with scale jitter),
crop and pad to a square, normalize."""

from __future__ import annotations

from typing import Tuple

import numpy as np
from PIL import Image

# ImageNet statistics in 0..255, as Model Garden normalizes inputs.
MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
STD = np.array([0.229, 0.224, 0.225], np.float32) * 255


def flip_horizontally(image: np.ndarray, boxes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Mirrors an image and its normalized `(ymin, xmin, ymax, xmax)` boxes."""
    return image[:, ::-1], np.stack([boxes[:, 0], 1 - boxes[:, 3], boxes[:, 2], 1 - boxes[:, 1]], 1)


# NORMALIZED[c, v]: the normalized value of uint8 v in channel c (a lookup beats arithmetic).
NORMALIZED = (np.arange(256, dtype=np.float32)[None, :] - MEAN[:, None]) / STD[:, None]


def normalize(image, out: np.ndarray = None) -> np.ndarray:
    """(image - MEAN) / STD of a uint8 RGB image as float32, written into `out` when given."""
    image = np.asarray(image, np.uint8)
    out = np.empty(image.shape, np.float32) if out is None else out
    for channel in range(3):
        out[..., channel] = NORMALIZED[channel][image[..., channel]]
    return out


def resize_crop_pad(image: np.ndarray, size: int, jitter: float = 1.0,
                    offset_fraction: Tuple[float, float] = (0.0, 0.0)
                    ) -> Tuple[np.ndarray, float, Tuple[int, int]]:
    """Resizes so the long side is `size * jitter`, crops to at most size x size, pads to it.

    The crop starts at `offset_fraction` (each in [0, 1]) of the overhang (only jitter > 1 gives
    one). Returns the normalized float32 [size, size, 3] image (zero padding), the scale from
    original to output pixels, and the crop offset (y, x) in output pixels:
    `output = original * scale - offset`.
    """
    height, width = image.shape[:2]
    scale = size * jitter / max(height, width)
    scaled_h, scaled_w = max(1, round(height * scale)), max(1, round(width * scale))
    top = int((max(scaled_h - size, 0)) * offset_fraction[0])
    left = int((max(scaled_w - size, 0)) * offset_fraction[1])
    # The crop starts within the overhang, so it never runs past the scaled image.
    crop_h, crop_w = min(size, scaled_h), min(size, scaled_w)
    resized = Image.fromarray(np.ascontiguousarray(image)).resize(
        (crop_w, crop_h), Image.BILINEAR,
        box=(left / scale, top / scale, min(width, (left + crop_w) / scale),
             min(height, (top + crop_h) / scale)))
    output = np.zeros((size, size, 3), np.float32)
    normalize(resized, out=output[:crop_h, :crop_w])
    return output, scale, (top, left)


def boxes_to_output(boxes: np.ndarray, image_shape: Tuple[int, int], scale: float,
                    offset: Tuple[int, int], size: int) -> np.ndarray:
    """Normalized boxes -> output pixel boxes, clipped to the size x size output."""
    height, width = image_shape
    pixels = boxes * np.array([height, width, height, width], np.float32) * scale
    pixels -= np.array([offset[0], offset[1], offset[0], offset[1]], np.float32)
    return np.clip(pixels, 0, size)
