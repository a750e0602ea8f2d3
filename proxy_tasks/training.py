"""The jitted, mesh-sharded training and evaluation steps of a proxy trial."""

from __future__ import annotations

from typing import Any, Callable, Dict

import flax
import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh

from proxy_tasks.mesh import batch_sharding, replicated
from proxy_tasks.models import anchors as anchor_lib
from proxy_tasks.models import classification_loss, detect, init_variables, retinanet_loss
from proxy_tasks.optim import apply_gradients


@flax.struct.dataclass
class TrainState:
    step: jnp.ndarray
    params: Any
    batch_stats: Any
    opt_state: Any


def lower_init(model, optimizer: optax.GradientTransformation, rng, height: int, width: int,
               mesh: Mesh) -> jax.stages.Lowered:
    """The init of a fresh train state, jitted (eager init dispatches every op alone and is far
    slower), replicated over `mesh` and lowered: its `out_info` is the state's shapes, so the
    steps can be compiled while the init itself still compiles."""

    def init(rng):
        variables = init_variables(model, rng, height, width)
        params = variables["params"]
        return TrainState(jnp.zeros((), jnp.int32), params, variables.get("batch_stats", {}),
                          optimizer.init(params))

    return jax.jit(init, out_shardings=replicated(mesh)).lower(rng)


def run_init(lowered: jax.stages.Lowered, rng) -> TrainState:
    """Compiles and runs a `lower_init`. The init runs once, so it is compiled without XLA's
    backend optimizations: on the CPU these spend about half of its compile time on the
    hundreds of random initializers."""
    return lowered.compile(compiler_options={"xla_backend_optimization_level": 0})(rng)


def create_state(model, optimizer: optax.GradientTransformation, rng, height: int, width: int,
                 mesh: Mesh) -> TrainState:
    """A fresh train state, replicated over `mesh`."""
    return run_init(lower_init(model, optimizer, rng, height, width, mesh), rng)


def detection_loss(outputs, batch, num_classes: int) -> Dict[str, jnp.ndarray]:
    return retinanet_loss(anchor_lib.flatten_outputs(outputs["class_outputs"], num_classes),
                          anchor_lib.flatten_outputs(outputs["box_outputs"], 4),
                          batch["cls_targets"], batch["box_targets"])


def classification_losses(outputs, batch) -> Dict[str, jnp.ndarray]:
    logits = outputs["logits"]
    return {"loss": classification_loss(logits, batch["labels"]),
            "accuracy": (logits.argmax(-1) == batch["labels"]).mean()}


def step_compiler_options(mesh: Mesh) -> Dict[str, str]:
    """XLA options of the train and inference steps. On the CPU their reductions stay XLA's
    own: XNNPACK's split a sum by the threads at hand, so a trial on 1 CPU and on 2 would differ
    in the last bits, which 768 steps grow into another reward (docs/performance.md)."""
    if mesh.devices.flat[0].platform != "cpu":
        return {}
    return {"xla_cpu_experimental_ynn_fusion_type": ""}


def make_train_step(model, optimizer: optax.GradientTransformation,
                    loss_fn: Callable, mesh: Mesh):
    """`step(state, batch) -> (state, metrics)`, jitted once with the batch split over `mesh`'s
    data axis and the state replicated; the old state's buffers are donated."""

    def step(state: TrainState, batch):
        def loss_of(params):
            outputs, updates = model.apply({"params": params, "batch_stats": state.batch_stats},
                                           batch["images"], train=True, mutable=["batch_stats"])
            losses = loss_fn(outputs, batch)
            return losses["loss"], (losses, updates["batch_stats"])

        grads, (losses, batch_stats) = jax.grad(loss_of, has_aux=True)(state.params)
        params, opt_state, losses["grad_norm"] = apply_gradients(optimizer, grads,
                                                                 state.opt_state, state.params)
        return TrainState(state.step + 1, params, batch_stats, opt_state), losses

    rep, data = replicated(mesh), batch_sharding(mesh)
    return jax.jit(step, in_shardings=(rep, data), out_shardings=(rep, rep), donate_argnums=0,
                   compiler_options=step_compiler_options(mesh))


def _inference_step(model, mesh: Mesh, read_outputs: Callable):
    """`step(state, images) -> read_outputs(eval-mode outputs)`, jitted and batch-sharded."""

    def infer(state: TrainState, images):
        return read_outputs(model.apply({"params": state.params, "batch_stats": state.batch_stats},
                                        images, train=False))

    # Outputs replicated: every process of a multi-host trial reads all of them.
    return jax.jit(infer, in_shardings=(replicated(mesh), batch_sharding(mesh)),
                   out_shardings=replicated(mesh), compiler_options=step_compiler_options(mesh))


def make_detect_step(model, anchors, num_classes: int, mesh: Mesh, **detect_kwargs):
    """`detect_step(state, images) -> detections` (boxes in input pixels), batch-sharded."""
    anchors = jnp.asarray(anchors)
    return _inference_step(model, mesh, lambda outputs: detect(
        anchor_lib.flatten_outputs(outputs["class_outputs"], num_classes),
        anchor_lib.flatten_outputs(outputs["box_outputs"], 4), anchors, **detect_kwargs))


def make_classify_step(model, mesh: Mesh):
    """`classify_step(state, images) -> logits`, batch-sharded."""
    return _inference_step(model, mesh, lambda outputs: outputs["logits"])
