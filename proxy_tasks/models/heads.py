"""The RetinaNet head and the classification head over SpineNet endpoints."""

from __future__ import annotations

import math
from typing import Dict

import flax.linen as nn
import jax.numpy as jnp

from proxy_tasks.models.layers import BatchNorm, Conv, upsample_to
from proxy_tasks.models.options import ModelOptions

PRIOR_PROBABILITY = 0.01  # initial foreground probability of every class output (RetinaNet)


class RetinaNetHead(nn.Module):
    """Class and box subnets: `num_convs` 3x3 convs (with bias) shared by all levels, each
    followed by a BN of its own per level and the activation, then a 3x3 output conv.

    Returns `{"class_outputs": {level: [B, H, W, A * num_classes]},
    "box_outputs": {level: [B, H, W, A * 4]}}`; channel `a * K + k` is class `k` of anchor `a`.
    """

    num_classes: int
    num_anchors: int
    num_convs: int
    num_filters: int
    options: ModelOptions

    def _subnet(self, name: str, outputs: int, bias_init, endpoints, train: bool):
        o = self.options
        convs = [Conv(self.num_filters, 3, use_bias=True, dtype=o.dtype,
                      kernel_init=nn.initializers.normal(0.01), name=f"{name}_conv{i}")
                 for i in range(self.num_convs)]
        head = Conv(outputs, 3, use_bias=True, dtype=o.dtype, kernel_init=nn.initializers.normal(1e-5),
                    bias_init=bias_init, name=f"{name}_out")
        results = {}
        for level, x in sorted(endpoints.items()):
            for i, conv in enumerate(convs):
                x = o.act(BatchNorm(o, name=f"{name}_bn{i}_level{level}")(conv(x), train))
            results[level] = head(x)
        return results

    @nn.compact
    def __call__(self, endpoints: Dict[int, jnp.ndarray], train: bool = False):
        prior = nn.initializers.constant(-math.log((1 - PRIOR_PROBABILITY) / PRIOR_PROBABILITY))
        return {
            "class_outputs": self._subnet("class", self.num_anchors * self.num_classes, prior,
                                          endpoints, train),
            "box_outputs": self._subnet("box", self.num_anchors * 4, nn.initializers.zeros,
                                        endpoints, train),
        }


class ClassificationHead(nn.Module):
    """Endpoints upsampled (nearest) to the finest level's size and averaged, global average
    pooling, then a linear layer; returns `{"logits": [B, num_classes]}` (softmax in the loss)."""

    num_classes: int
    options: ModelOptions

    @nn.compact
    def __call__(self, endpoints: Dict[int, jnp.ndarray], train: bool = False):
        finest = min(endpoints)
        size = endpoints[finest].shape[1:3]
        merged = jnp.mean(jnp.stack([upsample_to(x, 2 ** (level - finest), size)
                                     for level, x in endpoints.items()]), axis=0)
        pooled = merged.mean(axis=(1, 2))
        logits = nn.Dense(self.num_classes, dtype=self.options.dtype, param_dtype=jnp.float32,
                          name="linear")(pooled)
        return {"logits": logits}
