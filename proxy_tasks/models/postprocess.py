"""Detections from head outputs: score top-k, box decoding, class-aware greedy NMS, per image."""

from __future__ import annotations

import functools
from typing import Dict

import jax
import jax.numpy as jnp

from proxy_tasks.models.boxes import decode_boxes, iou


@functools.partial(jax.jit, static_argnames=("max_outputs",))
def nms(boxes, scores, max_outputs: int, iou_threshold: float = 0.5):
    """Greedy NMS of [K, 4] boxes: returns (indices [max_outputs], valid [max_outputs]).

    Picks the best remaining box, drops the boxes overlapping it by IoU > `iou_threshold`, and
    repeats; scores of -inf are never picked; ties go to the lower index.
    """
    overlaps = iou(boxes, boxes)

    def pick(remaining, _):
        best = jnp.argmax(remaining)
        valid = remaining[best] > -jnp.inf
        remaining = jnp.where((overlaps[best] > iou_threshold) | (jnp.arange(len(remaining)) == best),
                              -jnp.inf, remaining)
        return remaining, (best, valid)

    _, (indices, valid) = jax.lax.scan(pick, scores, None, length=max_outputs)
    return indices, valid


def _detect_one(logits, deltas, anchors, pre_nms_top_k, max_detections, iou_threshold,
                score_threshold):
    probabilities = jax.nn.sigmoid(jnp.asarray(logits, jnp.float32)).reshape(-1)
    scores, flat = jax.lax.top_k(probabilities, pre_nms_top_k)
    anchor, cls = jnp.unravel_index(flat, logits.shape)
    boxes = decode_boxes(jnp.asarray(deltas[anchor], jnp.float32), anchors[anchor])
    # Class-aware NMS in one pass: each class is shifted past the previous one's boxes (by more
    # than their span; coordinates may be negative) so boxes of different classes never overlap.
    offset = (cls * (boxes.max() - boxes.min() + 1.0))[:, None]
    scores = jnp.where(scores >= score_threshold, scores, -jnp.inf)
    keep, valid = nms(boxes + offset, scores, max_detections, iou_threshold)
    return {"boxes": jnp.where(valid[:, None], boxes[keep], 0.0),
            "scores": jnp.where(valid, scores[keep], 0.0),
            "classes": jnp.where(valid, cls[keep], -1),
            "num_detections": valid.sum()}


@functools.partial(jax.jit, static_argnames=("pre_nms_top_k", "max_detections"))
def detect(class_outputs, box_outputs, anchors, pre_nms_top_k: int = 1000,
           max_detections: int = 100, iou_threshold: float = 0.5,
           score_threshold: float = 0.05) -> Dict[str, jnp.ndarray]:
    """Batched detection from flattened outputs ([B, N, K] logits, [B, N, 4] deltas, [N, 4]).

    Returns `boxes` [B, M, 4], `scores` [B, M], `classes` [B, M] (-1 past the last detection)
    and `num_detections` [B], detections sorted by score, M = `max_detections`.
    """
    top_k = min(pre_nms_top_k, class_outputs.shape[1] * class_outputs.shape[2])
    return jax.vmap(lambda c, b: _detect_one(c, b, anchors, top_k, max_detections, iou_threshold,
                                             score_threshold))(class_outputs, box_outputs)
