"""RetinaNet losses (sigmoid focal loss, Huber box loss) and the classification loss.

Class targets per anchor are ints: `0..K-1` a positive of that class (one-hot target, box
loss on), `NEGATIVE` (-1) background (all-zero target, no box loss), `IGNORE` (-2) no loss.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

NEGATIVE = -1
IGNORE = -2


def focal_loss(logits, cls_targets, alpha: float = 0.25, gamma: float = 1.5):
    """Sigmoid focal loss per anchor, summed over classes: [..., K], [...] -> [...] (0 if ignored)."""
    logits = jnp.asarray(logits, jnp.float32)
    labels = jax.nn.one_hot(cls_targets, logits.shape[-1])  # float32; negatives -> zeros
    cross_entropy = optax.sigmoid_binary_cross_entropy(logits, labels)
    # (1 - p_true) ** gamma in log space, as exp(gamma * log sigmoid(-z_true)) with z_true the
    # logit signed towards the label: the power's derivative is NaN where p_true rounds to 1.
    z_true = jnp.where(labels == 1, logits, -logits)
    weight = jnp.where(labels == 1, alpha, 1 - alpha) * jnp.exp(gamma * jax.nn.log_sigmoid(-z_true))
    return jnp.where(cls_targets != IGNORE, (weight * cross_entropy).sum(-1), 0.0)


def huber_loss(predictions, targets, delta: float = 0.1):
    """Huber loss averaged over the last axis (the 4 box coordinates), as Keras' Huber."""
    error = jnp.abs(jnp.asarray(predictions, jnp.float32) - targets)
    return jnp.where(error <= delta, 0.5 * error ** 2, delta * (error - 0.5 * delta)).mean(-1)


def retinanet_loss(class_outputs, box_outputs, cls_targets, box_targets, alpha: float = 0.25,
                   gamma: float = 1.5, delta: float = 0.1, box_loss_weight: float = 50.0):
    """Model Garden's RetinaNet loss over [B, N, K] logits and [B, N, 4] box regressions.

    Both terms are summed over the batch and divided by (number of positives + 1).
    Returns `{"loss", "cls_loss", "box_loss", "num_positives"}`.
    """
    positive = jnp.asarray(cls_targets >= 0, jnp.float32)
    normalizer = positive.sum() + 1.0
    cls_loss = focal_loss(class_outputs, cls_targets, alpha, gamma).sum() / normalizer
    box_loss = (huber_loss(box_outputs, box_targets, delta) * positive).sum() / normalizer
    return {"loss": cls_loss + box_loss_weight * box_loss, "cls_loss": cls_loss,
            "box_loss": box_loss, "num_positives": positive.sum()}


def classification_loss(logits, labels, label_smoothing: float = 0.0):
    """Mean softmax cross-entropy of [B, K] logits against int labels [B]."""
    _, num_classes = logits.shape
    targets = optax.smooth_labels(jax.nn.one_hot(labels, num_classes), label_smoothing)
    return optax.softmax_cross_entropy(jnp.asarray(logits, jnp.float32), targets).mean()
