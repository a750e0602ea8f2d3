"""Whole models: SpineNet with an optional head, their configs, init and exact parameter counts."""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple, Union

import flax.linen as nn
import jax
import jax.numpy as jnp

from proxy_tasks.models.heads import ClassificationHead, RetinaNetHead
from proxy_tasks.models.options import ModelOptions
from proxy_tasks.models.spinenet import SpineNet
from search_space.builtins import ModelSize
from search_space.spec import SpineNetSpec


@dataclasses.dataclass(frozen=True)
class RetinaNetConfig:
    """The RetinaNet head and its anchors (3 scales x 3 aspect ratios, anchor size 3)."""

    num_classes: int = 91
    num_convs: int = 4
    num_filters: int = 256
    num_scales: int = 3
    aspect_ratios: Tuple[float, ...] = (1.0, 2.0, 0.5)
    anchor_size: float = 3.0

    @property
    def num_anchors(self) -> int:
        return self.num_scales * len(self.aspect_ratios)

    @classmethod
    def for_size(cls, size: ModelSize, num_classes: int = 91) -> "RetinaNetConfig":
        """The head of a row of the scaling table (e.g. `MODEL_SIZES["spinenet-49"]`)."""
        return cls(num_classes, size.head_convs, size.head_filters, anchor_size=size.anchor_size)

    def module(self, options: ModelOptions, name: str) -> nn.Module:
        return RetinaNetHead(self.num_classes, self.num_anchors, self.num_convs, self.num_filters,
                             options, name=name)


@dataclasses.dataclass(frozen=True)
class ClassificationConfig:
    num_classes: int = 1000

    def module(self, options: ModelOptions, name: str) -> nn.Module:
        return ClassificationHead(self.num_classes, options, name=name)


HeadConfig = Union[RetinaNetConfig, ClassificationConfig]


class SpineNetModel(nn.Module):
    """SpineNet plus an optional head. `__call__(images, train)` returns `{"endpoints": {level:
    map}}` and the head's outputs (`class_outputs`/`box_outputs` or `logits`)."""

    spec: SpineNetSpec
    head: Optional[HeadConfig] = None
    options: ModelOptions = ModelOptions()
    endpoint_levels: Optional[Tuple[int, ...]] = None

    @nn.compact
    def __call__(self, images, train: bool = False):
        endpoints = SpineNet(self.spec, self.options, self.endpoint_levels, name="backbone")(images, train)
        outputs = {"endpoints": endpoints}
        if self.head is not None:
            outputs.update(self.head.module(self.options, name="head")(endpoints, train))
        return outputs


def build_model(spec: SpineNetSpec, head: Optional[HeadConfig] = None,
                options: ModelOptions = ModelOptions(),
                endpoint_levels: Optional[Tuple[int, ...]] = None) -> SpineNetModel:
    """The Flax module of `spec` with `head` (None: backbone only)."""
    return SpineNetModel(spec, head, options, None if endpoint_levels is None else tuple(endpoint_levels))


def init_variables(model: nn.Module, rng: jax.Array, height: int, width: int, batch: int = 1):
    """`{"params", "batch_stats"}` for images of `height` x `width` (params in float32)."""
    return model.init(rng, jnp.zeros((batch, height, width, 3), jnp.float32), train=False)


def variable_shapes(model: nn.Module, height: int, width: int):
    """The variables' shapes and dtypes, traced with `jax.eval_shape` (no memory spent)."""
    return jax.eval_shape(lambda: init_variables(model, jax.random.PRNGKey(0), height, width))


def count_variables(model: nn.Module, height: int = 128, width: int = 128) -> Tuple[int, int]:
    """(trainable parameters, BN statistics) of the built model."""
    shapes = variable_shapes(model, height, width)
    return tuple(sum(int(x.size) for x in jax.tree_util.tree_leaves(shapes.get(collection, {})))
                 for collection in ("params", "batch_stats"))
