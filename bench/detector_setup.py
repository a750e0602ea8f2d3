"""The detection proxy as the benchmarks build it: model, optimizer, mesh, anchors, one example
batch and the loss, for a built-in architecture and a preset."""

from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import numpy as np
from jax.sharding import Mesh

from proxy_tasks.data import AnchorConfig
from proxy_tasks.mesh import global_batch, make_mesh
from proxy_tasks.presets import ProxyConfig
from proxy_tasks.training import detection_loss
from proxy_tasks.trial import build_proxy_model, example_batch, num_classes, proxy_optimizer
from search_space import builtin_spec


class Detector(NamedTuple):
    model: Any
    optimizer: Any
    mesh: Mesh
    anchors: np.ndarray
    batch: Any       # one example training batch, placed on `mesh`
    loss: Callable   # (outputs, batch) -> losses
    classes: int
    total_steps: int  # the optimizer's schedule


def detector(arch: str, config: ProxyConfig) -> Detector:
    """`arch` at `config`'s proxy scaling, its optimizer over the config's whole schedule."""
    classes, total_steps = num_classes(config), config.train_images // config.batch_size * config.epochs
    mesh = make_mesh()
    anchors = AnchorConfig(anchor_size=config.anchor_size).anchors(config.image_size)
    return Detector(
        model=build_proxy_model(builtin_spec(arch), config),
        optimizer=proxy_optimizer(config, total_steps),
        mesh=mesh, anchors=anchors,
        batch=global_batch(example_batch(config, len(anchors)), mesh),
        loss=functools.partial(detection_loss, num_classes=classes), classes=classes,
        total_steps=total_steps)
