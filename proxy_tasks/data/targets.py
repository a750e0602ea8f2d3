"""RetinaNet anchor targets in numpy, for the input pipeline's worker threads.

The same rule and encoding as `proxy_tasks.models.boxes.assign_targets` (which is jax, for use
on device): each anchor takes its highest-IoU box; IoU >= `positive_iou` gives that box's class
and encoded box, IoU < `negative_iou` gives NEGATIVE, anything between IGNORE.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from proxy_tasks.models.losses import IGNORE, NEGATIVE


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of [N, 4] and [M, 4] `(ymin, xmin, ymax, xmax)` boxes -> [N, M] (0 for empty unions)."""
    a, b = a[:, None, :], b[None, :, :]
    inter = (np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
             * np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0,
                       None))
    union = ((a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
             + (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]) - inter)
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0).astype(np.float32)


def encode(boxes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Faster R-CNN deltas `(dy/ha, dx/wa, log(h/ha), log(w/wa))` of boxes against anchors."""
    ha, wa = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    h, w = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    dy = (boxes[:, 0] + 0.5 * h - anchors[:, 0] - 0.5 * ha) / ha
    dx = (boxes[:, 1] + 0.5 * w - anchors[:, 1] - 0.5 * wa) / wa
    return np.stack([dy, dx, np.log(h / ha), np.log(w / wa)], -1).astype(np.float32)


def assign_targets(anchors: np.ndarray, boxes: np.ndarray, classes: np.ndarray,
                   positive_iou: float = 0.5, negative_iou: float = 0.4
                   ) -> Tuple[np.ndarray, np.ndarray]:
    """(cls_targets int32 [N], box_targets float32 [N, 4]) for [N, 4] anchors, [M, 4] boxes."""
    cls = np.full(len(anchors), NEGATIVE, np.int32)
    box_targets = np.zeros((len(anchors), 4), np.float32)
    if len(boxes) == 0:
        return cls, box_targets
    overlaps = pairwise_iou(anchors, boxes)
    best = overlaps.argmax(1)
    best_iou = overlaps[np.arange(len(anchors)), best]
    cls[best_iou >= negative_iou] = IGNORE
    positive = best_iou >= positive_iou
    cls[positive] = classes[best[positive]]
    box_targets[positive] = encode(boxes[best[positive]], anchors[positive])
    return cls, box_targets
