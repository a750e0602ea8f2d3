"""Model options shared by the backbone and the heads (activation, BN, dtype, init, drop rate)."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn
import jax.numpy as jnp

ACTIVATIONS = {"relu": nn.relu, "swish": nn.swish}
NORMS = ("batch", "group")
GROUP_CHANNELS = 8  # channels per group of GroupNorm

# Keras' VarianceScaling() default, which Model Garden's SpineNet uses for its convolutions.
DEFAULT_KERNEL_INIT = nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")


@dataclasses.dataclass(frozen=True)
class ModelOptions:
    """How to build a model; the defaults are Model Garden's (BN momentum 0.99, epsilon 1e-3).

    `dtype` is the compute dtype (float32 or bfloat16); parameters always stay float32.
    `stochastic_depth_rate` is the drop rate of the last block; earlier blocks scale it linearly.
    `zero_init_residual` starts each residual branch's last BN scale at 0, so every block starts
    as its shortcut (not Model Garden's default; for short from-scratch proxies).
    `norm="group"` normalizes each example over groups of `GROUP_CHANNELS` channels instead of
    over the batch (GroupNorm: no batch statistics, the same in training and inference).
    """

    activation: str = "relu"
    norm: str = "batch"
    bn_momentum: float = 0.99
    bn_epsilon: float = 1e-3
    stochastic_depth_rate: float = 0.0
    zero_init_residual: bool = False
    dtype: Any = jnp.float32
    kernel_init: Callable = DEFAULT_KERNEL_INIT

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation: {self.activation!r} is not one of {sorted(ACTIVATIONS)}")
        if self.norm not in NORMS:
            raise ValueError(f"norm: {self.norm!r} is not one of {NORMS}")
        if not 0.0 <= self.stochastic_depth_rate < 1.0:
            raise ValueError(f"stochastic_depth_rate: must be in [0, 1), got "
                             f"{self.stochastic_depth_rate}")

    @property
    def act(self) -> Callable:
        return ACTIVATIONS[self.activation]
