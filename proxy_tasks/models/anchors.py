"""Anchors per level and the flattening that puts head outputs in the same order.

Order: levels ascending, then rows, columns, then anchors `a = scale * len(aspect_ratios) +
ratio`; boxes are `(ymin, xmin, ymax, xmax)` in pixels. Level `l` has ceil(H/2^l) x ceil(W/2^l)
centres at `(i + 0.5) * 2^l`, matching the head's maps for any input size.
"""

from __future__ import annotations

from typing import Dict, Iterable, Sequence

import jax.numpy as jnp
import numpy as np

from search_space.cost import level_size


def anchor_boxes(height: int, width: int, levels: Iterable[int], num_scales: int = 3,
                 aspect_ratios: Sequence[float] = (1.0, 2.0, 0.5),
                 anchor_size: float = 3.0) -> np.ndarray:
    """[N, 4] float32 anchors; side `anchor_size * 2^l * 2^(s / num_scales)`, ratio = width/height."""
    per_level = []
    for level in levels:
        stride = 2 ** level
        shapes = [(anchor_size * stride * 2 ** (s / num_scales) / np.sqrt(r),
                   anchor_size * stride * 2 ** (s / num_scales) * np.sqrt(r))
                  for s in range(num_scales) for r in aspect_ratios]
        half = np.array(shapes) / 2  # [A, (h/2, w/2)], float64
        rows, cols = level_size(height, width, level)
        cy, cx = np.meshgrid((np.arange(rows) + 0.5) * stride, (np.arange(cols) + 0.5) * stride,
                             indexing="ij")
        centres = np.stack([cy, cx], -1)[:, :, None, :]  # [rows, cols, 1, 2]
        boxes = np.concatenate([centres - half, centres + half], -1)
        per_level.append(boxes.reshape(rows * cols * len(shapes), 4))
    return np.concatenate(per_level).astype(np.float32)


def flatten_outputs(outputs: Dict[int, jnp.ndarray], last_dim: int) -> jnp.ndarray:
    """`{level: [B, H, W, A * D]}` -> [B, N, D] in anchor order."""
    return jnp.concatenate([outputs[level].reshape(outputs[level].shape[0], -1, last_dim)
                            for level in sorted(outputs)], axis=1)
