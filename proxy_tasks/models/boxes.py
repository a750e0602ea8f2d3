"""Box geometry: IoU, encoding against anchors, decoding, and IoU-based target assignment.

Boxes are `(ymin, xmin, ymax, xmax)`. Encoding is Faster R-CNN's
`(dy / ha, dx / wa, log(h / ha), log(w / wa))`, each multiplied by `weights`.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence, Tuple

import jax
import jax.numpy as jnp

from proxy_tasks.models.losses import IGNORE, NEGATIVE

# Largest log-scale a decoded box may take, as Detectron and Model Garden clip it.
BBOX_XFORM_CLIP = math.log(1000.0 / 16.0)


def _centre_size(boxes):
    ymin, xmin, ymax, xmax = jnp.unstack(boxes, axis=-1)
    h, w = ymax - ymin, xmax - xmin
    return ymin + 0.5 * h, xmin + 0.5 * w, h, w


def encode_boxes(boxes, anchors, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0)):
    """Regression targets of `boxes` relative to `anchors` (broadcasting) -> [..., 4]."""
    y, x, h, w = _centre_size(boxes)
    ya, xa, ha, wa = _centre_size(anchors)
    wy, wx, wh, ww = weights  # Python scalars: the deltas keep the boxes' dtype
    return jnp.stack([(y - ya) / ha * wy, (x - xa) / wa * wx, jnp.log(h / ha) * wh,
                      jnp.log(w / wa) * ww], -1)


def decode_boxes(deltas, anchors, weights: Sequence[float] = (1.0, 1.0, 1.0, 1.0)):
    """Inverse of `encode_boxes`; log-scales are clipped at log(1000/16)."""
    dy, dx, dh, dw = jnp.unstack(deltas, axis=-1)
    wy, wx, wh, ww = weights
    ya, xa, ha, wa = _centre_size(anchors)
    y, x = ya + dy / wy * ha, xa + dx / wx * wa
    h = ha * jnp.exp(jnp.minimum(dh / wh, BBOX_XFORM_CLIP))
    w = wa * jnp.exp(jnp.minimum(dw / ww, BBOX_XFORM_CLIP))
    return jnp.stack([y - 0.5 * h, x - 0.5 * w, y + 0.5 * h, x + 0.5 * w], -1)


def iou(a, b):
    """Pairwise IoU: [N, 4] x [M, 4] -> [N, M] (0 where the union is empty)."""
    ay0, ax0, ay1, ax1 = jnp.unstack(a[:, None, :], axis=-1)
    by0, bx0, by1, bx1 = jnp.unstack(b[None, :, :], axis=-1)
    ih = jnp.maximum(jnp.minimum(ay1, by1) - jnp.maximum(ay0, by0), 0)
    iw = jnp.maximum(jnp.minimum(ax1, bx1) - jnp.maximum(ax0, bx0), 0)
    inter = ih * iw
    union = (ay1 - ay0) * (ax1 - ax0) + (by1 - by0) * (bx1 - bx0) - inter
    return jnp.where(union > 0, inter / jnp.where(union > 0, union, 1), 0)


@functools.partial(jax.jit, static_argnames="force_match")
def assign_targets(anchors, gt_boxes, gt_classes, positive_iou: float = 0.5,
                   negative_iou: float = 0.4, force_match: bool = True
                   ) -> Tuple[jnp.ndarray, jnp.ndarray]:
    """Matches each anchor to its highest-IoU ground-truth box.

    `gt_boxes` [M, 4] and `gt_classes` [M] int, M >= 1; rows with class < 0 are padding.
    Returns `(cls_targets [N] int32, box_targets [N, 4])`: the matched class where IoU >=
    `positive_iou`, `NEGATIVE` where IoU < `negative_iou` (or no ground truth), `IGNORE`
    between; box targets are the encoded matched boxes (zeros where not positive). With
    `force_match`, each box's highest-IoU anchor is positive for it whatever the IoU (the rule
    of `proxy_tasks.data.targets`). Jittable and vmappable over a batch.
    """
    overlaps = jnp.where((gt_classes >= 0)[None, :], iou(anchors, gt_boxes), -1.0)
    best = jnp.argmax(overlaps, axis=1)
    best_iou = jnp.max(overlaps, axis=1)
    positive = best_iou >= positive_iou
    if force_match:
        forced = jnp.argmax(overlaps, axis=0)[None, :] == jnp.arange(len(anchors))[:, None]
        forced &= overlaps > 0
        is_forced = forced.any(1)
        best = jnp.where(is_forced, jnp.argmax(jnp.where(forced, overlaps, -1.0), axis=1), best)
        positive |= is_forced
    cls = jnp.where(positive, gt_classes[best],
                    jnp.where(best_iou < negative_iou, NEGATIVE, IGNORE)).astype(jnp.int32)
    targets = encode_boxes(jnp.where(positive[:, None], gt_boxes[best], anchors), anchors)
    return cls, jnp.where(positive[:, None], targets, 0.0)
