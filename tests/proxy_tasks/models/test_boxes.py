"""Anchors, box coding, IoU, target assignment, NMS and detection against hand-computed cases."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from proxy_tasks.models import (IGNORE, NEGATIVE, anchor_boxes, assign_targets, decode_boxes, detect,
                                encode_boxes, flatten_outputs, iou, nms)
from search_space.cost import level_size


def test_anchors_by_hand():
    boxes = anchor_boxes(32, 32, [3], num_scales=1, aspect_ratios=(1.0, 2.0), anchor_size=2.0)
    assert boxes.shape == (4 * 4 * 2, 4) and boxes.dtype == np.float32
    np.testing.assert_allclose(boxes[0], [-4, -4, 12, 12])  # centre (4, 4), side 2 * 8
    s = 8 * math.sqrt(2)  # aspect ratio 2 = width / height, same area
    np.testing.assert_allclose(boxes[1], [4 - s / 2, 4 - s, 4 + s / 2, 4 + s], rtol=1e-6)
    np.testing.assert_allclose(boxes[2], [-4, 4, 12, 20])  # next column: centre x 12


def test_anchor_scales_and_count_for_odd_sizes():
    boxes = anchor_boxes(100, 75, range(3, 8))
    assert len(boxes) == 9 * sum(np.prod(level_size(100, 75, lvl)) for lvl in range(3, 8))
    sides = np.sqrt((boxes[:9, 2] - boxes[:9, 0]) * (boxes[:9, 3] - boxes[:9, 1]))
    np.testing.assert_allclose(sides[::3], [24, 24 * 2 ** (1 / 3), 24 * 2 ** (2 / 3)], rtol=1e-5)


def test_flatten_outputs_order_matches_anchors():
    outputs = {3: jnp.arange(12.0).reshape(1, 2, 3, 2), 4: jnp.full((1, 1, 2, 2), -1.0)}
    flat = flatten_outputs(outputs, 1)
    assert flat.shape == (1, 12 + 4, 1)
    np.testing.assert_array_equal(flat[0, :12, 0], np.arange(12))  # row, column, anchor


def test_decode_by_hand_and_roundtrip():
    anchor = jnp.array([0.0, 0.0, 10.0, 20.0])  # centre (5, 10), 10 x 20
    box = decode_boxes(jnp.array([0.1, -0.2, math.log(2.0), 0.0]), anchor)
    np.testing.assert_allclose(box, [-4, -4, 16, 16], rtol=1e-6)
    np.testing.assert_allclose(encode_boxes(box, anchor), [0.1, -0.2, math.log(2.0), 0.0], atol=1e-6)
    weighted = encode_boxes(box, anchor, weights=(10, 10, 5, 5))
    np.testing.assert_allclose(decode_boxes(weighted, anchor, weights=(10, 10, 5, 5)), box, rtol=1e-6)


def test_encode_decode_weights_by_hand():
    anchor = jnp.array([0.0, 0.0, 10.0, 20.0])  # centre (5, 10), 10 x 20
    box = jnp.array([-4.0, -9.0, 16.0, 21.0])  # centre (6, 6), 20 x 30
    # deltas (0.1, -0.2, log 2, log 1.5), each times its own weight
    weighted = [1.0, -1.0, 2 * math.log(2.0), 3 * math.log(1.5)]
    np.testing.assert_allclose(encode_boxes(box, anchor, weights=(10, 5, 2, 3)), weighted, rtol=1e-6)
    np.testing.assert_allclose(decode_boxes(jnp.array(weighted), anchor, weights=(10, 5, 2, 3)), box,
                               rtol=1e-6)


def test_iou_by_hand():
    a = jnp.array([[0.0, 0, 10, 10]])
    b = jnp.array([[0.0, 5, 10, 15], [20.0, 20, 30, 30], [0.0, 0, 10, 10], [3.0, 3, 3, 3]])
    np.testing.assert_allclose(iou(a, b), [[50 / 150, 0, 1, 0]], rtol=1e-6)


def test_iou_of_boxes_apart_along_one_axis_is_zero():
    a = jnp.array([[0.0, 0, 10, 10]])
    b = jnp.array([[20.0, 0, 30, 10], [0.0, 20, 10, 30], [10.0, 0, 20, 10]])  # apart in y, in x; touching
    np.testing.assert_array_equal(iou(a, b), [[0, 0, 0]])


def test_iou_of_small_boxes():
    """IoU does not depend on the scale: the same pair in units of 1/100."""
    a = jnp.array([[0.0, 0, 0.1, 0.1]])
    b = jnp.array([[0.0, 0.05, 0.1, 0.15], [0.0, 0, 0.1, 0.1]])
    np.testing.assert_allclose(iou(a, b), [[1 / 3, 1]], rtol=1e-5)


def test_iou_of_empty_unions_is_zero_with_a_finite_gradient():
    empty = jnp.array([[3.0, 3, 3, 3], [0.0, 0, 0, 5]])  # zero area: the unions are empty
    np.testing.assert_array_equal(iou(empty, empty), np.zeros((2, 2)))
    grad = jax.jit(jax.grad(lambda a: iou(a, empty).sum()))(empty)
    assert np.all(np.isfinite(grad))


def test_assign_targets_thresholds_and_padding():
    anchors = jnp.array([[0.0, 0, 10, 10], [0, 0, 10, 12], [0, 5, 10, 15], [0, 0, 10, 22]])
    gt_boxes = jnp.array([[0.0, 0, 10, 10], [0, 0, 10, 22]])
    gt_classes = jnp.array([3, -1])  # the second row is padding and must not match anchor 3
    cls, box = assign_targets(anchors, gt_boxes, gt_classes)
    # IoUs with the real box: 1, 100/120, 50/150, 100/220
    np.testing.assert_array_equal(cls, [3, 3, NEGATIVE, IGNORE])
    np.testing.assert_allclose(box[0], 0, atol=1e-6)
    np.testing.assert_allclose(box[1], [0, -1 / 12, 0, math.log(10 / 12)], rtol=1e-5)
    np.testing.assert_array_equal(box[2:], 0)


def test_nms_by_hand():
    boxes = jnp.array([[0.0, 0, 10, 10], [0, 1, 10, 11], [20, 20, 30, 30], [0, 0, 10, 10]])
    scores = jnp.array([0.9, 0.8, 0.7, -jnp.inf])  # box 1 overlaps box 0 by 90/110
    keep, valid = nms(boxes, scores, max_outputs=3, iou_threshold=0.5)
    np.testing.assert_array_equal(keep[:2], [0, 2])
    np.testing.assert_array_equal(valid, [True, True, False])
    keep, _ = nms(boxes, scores, max_outputs=3, iou_threshold=0.9)
    np.testing.assert_array_equal(keep, [0, 1, 2])


def test_detect_is_class_aware_and_batched():
    anchors = jnp.array([[0.0, 0, 10, 10], [0, 1, 10, 11], [20, 20, 30, 30]])
    logit = lambda p: math.log(p / (1 - p))
    classes = jnp.array([[[logit(0.9), logit(0.01)], [logit(0.01), logit(0.8)],
                          [logit(0.7), logit(0.01)]]])
    deltas = jnp.zeros((1, 3, 4))
    out = detect(jnp.concatenate([classes, classes[:, ::-1]]), jnp.concatenate([deltas, deltas]),
                 anchors, max_detections=4)
    # Image 0: anchors 0 and 1 overlap but differ in class, so both stay.
    np.testing.assert_array_equal(out["num_detections"], [3, 3])
    np.testing.assert_allclose(out["scores"][0], [0.9, 0.8, 0.7, 0], rtol=1e-6)
    np.testing.assert_array_equal(out["classes"][0], [0, 1, 0, -1])
    np.testing.assert_allclose(out["boxes"][0, 1], anchors[1])
    np.testing.assert_allclose(out["boxes"][1, 0], anchors[2])  # image 1: anchors reversed
    np.testing.assert_array_equal(out["boxes"][:, 3], 0)  # past the last detection


def test_detect_passes_iou_threshold_to_nms():
    anchors = jnp.array([[0.0, 0, 10, 10], [0, 1, 10, 11]])  # IoU 90/110, the same class
    logits = jnp.array([[[2.0], [1.0]]])
    for threshold, expected in [(0.5, 1), (0.9, 2)]:
        out = detect(logits, jnp.zeros((1, 2, 4)), anchors, iou_threshold=threshold)
        assert int(out["num_detections"][0]) == expected


@pytest.mark.parametrize("class0, class1", [
    # the largest coordinate is 10: a shift of 9 would put [0, 0, 1, 1] on [9, 9, 10, 10]
    ([9.0, 9, 10, 10], [0.0, 0, 1, 1]),
    ([0.0, 0, 10, 10], [-10.0, -10, 0, 0]),  # apart, one at negative coordinates
    ([-5.5, -5.5, 4.5, 4.5], [-5.5, -5.5, 4.5, 4.5])])  # the same box, around the origin
def test_detect_never_suppresses_a_box_of_another_class(class0, class1):
    """Classes are shifted apart for one NMS pass; no shift may land a box on another class's."""
    anchors = jnp.array([class0, class1])
    logits = jnp.array([[[2.0, -9.0], [-9.0, 1.0]]])
    out = detect(logits, jnp.zeros((1, 2, 4)), anchors, max_detections=3)
    np.testing.assert_array_equal(out["classes"][0], [0, 1, -1])
    np.testing.assert_allclose(out["boxes"][0, :2], anchors)


def test_detect_keeps_scores_equal_to_the_threshold():
    out = detect(jnp.zeros((1, 1, 1)), jnp.zeros((1, 1, 4)), jnp.array([[0.0, 0, 10, 10]]),
                 score_threshold=0.5)  # sigmoid(0) = 0.5 exactly
    assert int(out["num_detections"][0]) == 1


def test_detect_decodes_bfloat16_outputs_in_float32():
    """A bfloat16 head's outputs are scored and decoded as their float32 values would be, the
    log-scale 6 clipped at log(1000/16) = 4.135 (4.125 in bfloat16)."""
    anchors = jnp.array([[0.0, 0, 10, 10], [20, 20, 30, 30]])
    logits = jnp.array([[[1.3, -0.7], [0.4, 2.1]]], jnp.bfloat16)
    deltas = jnp.array([[[0.1, -0.2, 0.3, 6.0], [0.05, 0.15, -0.35, 0.6]]], jnp.bfloat16)
    out = detect(logits, deltas, anchors, max_detections=4)
    expected = detect(logits.astype(jnp.float32), deltas.astype(jnp.float32), anchors,
                      max_detections=4)
    assert out["scores"].dtype == out["boxes"].dtype == jnp.float32
    np.testing.assert_allclose(out["scores"], expected["scores"], rtol=1e-6)
    np.testing.assert_allclose(out["boxes"], expected["boxes"], rtol=1e-6)


@pytest.mark.parametrize("threshold, expected", [(0.75, 2), (0.95, 0)])
def test_detect_score_threshold(threshold, expected):
    anchors = jnp.array([[0.0, 0, 10, 10], [20, 20, 30, 30]])
    logits = jnp.log(jnp.array([[[0.9 / 0.1], [0.8 / 0.2]]]))
    out = detect(logits, jnp.zeros((1, 2, 4)), anchors, score_threshold=threshold)
    assert int(out["num_detections"][0]) == expected
