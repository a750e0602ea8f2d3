"""Focal, Huber and classification losses against hand-computed values."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from proxy_tasks.models import IGNORE, NEGATIVE, classification_loss, focal_loss, huber_loss, retinanet_loss

sigmoid = lambda z: 1 / (1 + math.exp(-z))
log_sigmoid = lambda z: -math.log1p(math.exp(-z))  # exact in float64 where 1 - sigmoid is not


def focal_by_hand(z, positive, alpha=0.25, gamma=1.5):
    if positive:
        return alpha * sigmoid(-z) ** gamma * -log_sigmoid(z)
    return (1 - alpha) * sigmoid(z) ** gamma * -log_sigmoid(-z)


def focal_grad_by_hand(z, positive, alpha=0.25, gamma=1.5):
    """d/dz of `focal_by_hand`, with p = sigmoid(z) and dp/dz = p (1 - p): a positive's
    alpha (1-p)^g (g p log p - (1-p)), a negative's (1-alpha) p^g (p - g (1-p) log(1-p))."""
    p, q = sigmoid(z), sigmoid(-z)
    if positive:
        return alpha * q ** gamma * (gamma * p * log_sigmoid(z) - q)
    return (1 - alpha) * p ** gamma * (p - gamma * q * log_sigmoid(-z))


def test_focal_loss_by_hand():
    logits = jnp.array([[2.0, -1.0], [0.5, 3.0], [1.0, 1.0]])
    loss = focal_loss(logits, jnp.array([0, NEGATIVE, IGNORE]))
    expected = [focal_by_hand(2.0, True) + focal_by_hand(-1.0, False),
                focal_by_hand(0.5, False) + focal_by_hand(3.0, False), 0.0]
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    np.testing.assert_allclose(loss[0], 0.001305953866 + 0.75 * sigmoid(-1) ** 1.5 * 0.313261687518,
                               rtol=1e-6)


@pytest.mark.parametrize("gamma", [0.0, 1.5, 2.0])
def test_focal_loss_values_and_gradients_at_saturated_logits(gamma):
    """At +-30 the float32 sigmoid rounds to 0 or 1, where the power (1 - p) ** gamma has a NaN
    derivative at gamma 0; the loss and its gradient must match the float64 formulas."""
    logits = np.array([[30.0, -30.0], [-30.0, 30.0], [2.0, -1.0], [0.5, 3.0], [1.0, 1.0]])
    targets = np.array([0, 1, 0, NEGATIVE, IGNORE])
    loss_fn = lambda z: focal_loss(z, jnp.asarray(targets), gamma=gamma)
    grads = jax.grad(lambda z: loss_fn(z).sum())(jnp.asarray(logits, jnp.float32))
    expected_loss, expected_grad = [], np.zeros_like(logits)
    for a, (row, target) in enumerate(zip(logits, targets)):
        if target == IGNORE:
            expected_loss.append(0.0)
            continue
        expected_loss.append(sum(focal_by_hand(z, k == target, gamma=gamma)
                                 for k, z in enumerate(row)))
        expected_grad[a] = [focal_grad_by_hand(z, k == target, gamma=gamma)
                            for k, z in enumerate(row)]
    np.testing.assert_allclose(loss_fn(jnp.asarray(logits, jnp.float32)), expected_loss,
                               rtol=1e-5, atol=1e-7)
    assert np.all(np.isfinite(grads))
    np.testing.assert_allclose(grads, expected_grad, rtol=1e-5, atol=1e-7)


def test_huber_by_hand():
    pred, target = jnp.array([[0.05, 0.3, 0.0, -0.2]]), jnp.zeros((1, 4))
    # 0.5 * 0.05^2; 0.1 * (0.3 - 0.05); 0; 0.1 * (0.2 - 0.05), averaged over the 4 coordinates
    np.testing.assert_allclose(huber_loss(pred, target), [(0.00125 + 0.025 + 0.015) / 4], rtol=1e-6)


def test_huber_by_hand_with_nonzero_targets():
    pred, target = jnp.array([[1.0625, 0.75, -0.5, 0.25]]), jnp.array([[1.0, 1.0, -0.5, 0.5]])
    # errors 0.0625, 0.25, 0, 0.25: 0.5 * 0.0625^2; 0.1 * (0.25 - 0.05) twice; 0
    np.testing.assert_allclose(huber_loss(pred, target), [(0.001953125 + 0.02 + 0.02) / 4], rtol=1e-6)


def test_retinanet_loss_normalizes_by_positives_plus_one():
    logits = jnp.array([[[2.0, -1.0], [0.5, 3.0], [1.0, 1.0]]])
    boxes = jnp.array([[[0.05, 0.3, 0.0, -0.2], [9.0, 9, 9, 9], [9.0, 9, 9, 9]]])
    cls_targets = jnp.array([[0, NEGATIVE, IGNORE]])
    out = retinanet_loss(logits, boxes, cls_targets, jnp.zeros((1, 3, 4)))
    cls = (focal_by_hand(2.0, True) + focal_by_hand(-1.0, False) + focal_by_hand(0.5, False)
           + focal_by_hand(3.0, False)) / 2
    box = (0.00125 + 0.025 + 0.015) / 4 / 2
    assert float(out["num_positives"]) == 1
    np.testing.assert_allclose([out["cls_loss"], out["box_loss"], out["loss"]],
                               [cls, box, cls + 50 * box], rtol=1e-6)


def test_retinanet_loss_passes_its_parameters_on():
    logits = jnp.array([[[2.0, -1.0], [0.5, 3.0]]])
    boxes = jnp.array([[[0.05, 0.3, 0.0, -0.2], [9.0, 9, 9, 9]]])
    out = retinanet_loss(logits, boxes, jnp.array([[0, NEGATIVE]]), jnp.zeros((1, 2, 4)),
                         alpha=0.5, gamma=2.0, delta=0.25, box_loss_weight=10.0)
    cls = sum(focal_by_hand(z, positive, alpha=0.5, gamma=2.0)
              for z, positive in [(2.0, True), (-1.0, False), (0.5, False), (3.0, False)]) / 2
    box = (0.5 * 0.05 ** 2 + 0.25 * (0.3 - 0.125) + 0.0 + 0.5 * 0.2 ** 2) / 4 / 2  # delta 0.25
    np.testing.assert_allclose([out["cls_loss"], out["box_loss"], out["loss"]],
                               [cls, box, cls + 10 * box], rtol=1e-6)


def test_losses_of_bfloat16_outputs_are_computed_in_float32():
    """The model may run in bfloat16: the losses take the float32 values of its outputs."""
    logits = jnp.array([[[1.3, -0.7], [0.4, 2.1], [-1.1, 0.6]]], jnp.bfloat16)
    boxes = jnp.array([[[0.05, 0.3, 0.0, -0.2], [0.7, 0.15, -0.35, 0.6], [9, 9, 9, 9]]], jnp.bfloat16)
    cls_targets, box_targets = jnp.array([[0, 1, NEGATIVE]]), jnp.full((1, 3, 4), 0.11, jnp.bfloat16)
    as32 = lambda x: x.astype(jnp.float32)
    out = retinanet_loss(logits, boxes, cls_targets, box_targets)
    expected = retinanet_loss(as32(logits), as32(boxes), cls_targets, as32(box_targets))
    assert all(value.dtype == jnp.float32 for value in out.values())
    for name in out:
        np.testing.assert_allclose(out[name], expected[name], rtol=1e-6)
    for got, want in [(focal_loss(logits, cls_targets), focal_loss(as32(logits), cls_targets)),
                      (huber_loss(boxes, box_targets), huber_loss(as32(boxes), as32(box_targets))),
                      (classification_loss(logits[0], jnp.array([0, 1, 1])),
                       classification_loss(as32(logits[0]), jnp.array([0, 1, 1])))]:
        assert got.dtype == jnp.float32
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_classification_loss_by_hand():
    logits = jnp.array([[1.0, 2.0, 3.0]])
    log_z = math.log(math.e + math.e ** 2 + math.e ** 3)
    np.testing.assert_allclose(classification_loss(logits, jnp.array([2])), log_z - 3, rtol=1e-6)
    smoothed = 0.9 * (log_z - 3) + 0.1 * (3 * log_z - 6) / 3
    np.testing.assert_allclose(classification_loss(logits, jnp.array([2]), 0.1), smoothed, rtol=1e-6)
