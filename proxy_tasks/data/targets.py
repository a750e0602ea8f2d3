"""RetinaNet anchor targets in numpy, for the input pipeline's worker threads.

The same rule and encoding as `proxy_tasks.models.boxes.assign_targets` (which is jax, for use
on device): each anchor takes its highest-IoU box; IoU >= `positive_iou` gives that box's class
and encoded box, IoU < `negative_iou` gives NEGATIVE, anything between IGNORE. With
`force_match`, each box's highest-IoU anchor is positive for it whatever the IoU, as in the TPU
RetinaNet's matcher (`force_match_for_each_row`): without it, an object the anchor grid fits
badly (small anchors are as coarse as their stride) has no positive anchor and is taught as
background. An anchor that is the best of several boxes takes the one it overlaps most.
"""

from __future__ import annotations

from typing import Tuple

import numpy as np

from proxy_tasks.models.losses import IGNORE, NEGATIVE


def _area(boxes: np.ndarray) -> np.ndarray:
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of [N, 4] and [M, 4] `(ymin, xmin, ymax, xmax)` boxes -> [N, M] (0 for empty unions).

    Written with in-place float32 operations: with tens of thousands of anchors this is the
    pipeline's largest cost.
    """
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    inter = np.minimum(a[:, None, 2], b[None, :, 2])
    inter -= np.maximum(a[:, None, 0], b[None, :, 0])
    np.maximum(inter, 0, out=inter)
    width = np.minimum(a[:, None, 3], b[None, :, 3])
    width -= np.maximum(a[:, None, 1], b[None, :, 1])
    np.maximum(width, 0, out=width)
    inter *= width
    union = np.add(_area(a)[:, None], _area(b)[None, :], out=width)
    union -= inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def encode(boxes: np.ndarray, anchors: np.ndarray) -> np.ndarray:
    """Faster R-CNN deltas `(dy/ha, dx/wa, log(h/ha), log(w/wa))` of boxes against anchors."""
    ha, wa = anchors[:, 2] - anchors[:, 0], anchors[:, 3] - anchors[:, 1]
    h, w = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    dy = (boxes[:, 0] + 0.5 * h - anchors[:, 0] - 0.5 * ha) / ha
    dx = (boxes[:, 1] + 0.5 * w - anchors[:, 1] - 0.5 * wa) / wa
    return np.stack([dy, dx, np.log(h / ha), np.log(w / wa)], -1).astype(np.float32)


def assign_targets(anchors: np.ndarray, boxes: np.ndarray, classes: np.ndarray,
                   positive_iou: float = 0.5, negative_iou: float = 0.4, force_match: bool = True
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
    if force_match:
        forced = overlaps.argmax(0)[None, :] == np.arange(len(anchors))[:, None]
        forced &= overlaps > 0
        is_forced = forced.any(1)
        best = np.where(is_forced, np.where(forced, overlaps, -1.0).argmax(1), best)
        positive |= is_forced
    cls[positive] = classes[best[positive]]
    box_targets[positive] = encode(boxes[best[positive]], anchors[positive])
    return cls, box_targets
