"""Three Adam steps of a small detector with XLA's CPU pool at a given size, for the test that a
trial's bits do not depend on its threads: `python -m tests.proxy_tasks.threads_worker THREADS OUT`.

The process keeps one core; XLA sizes its pool from the cores or the CPU devices, whichever is
more, so THREADS devices give THREADS pool threads while the model trains on the first device.
"""

import os
import sys

THREADS = int(sys.argv[1])
os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:1])
os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={THREADS}"
os.environ["JAX_PLATFORMS"] = "cpu"

import functools  # noqa: E402

import jax  # noqa: E402
import numpy as np  # noqa: E402

from proxy_tasks.mesh import global_batch, make_mesh  # noqa: E402
from proxy_tasks.models import (ModelOptions, RetinaNetConfig, anchor_boxes,  # noqa: E402
                                build_model)
from proxy_tasks.optim import make_optimizer  # noqa: E402
from proxy_tasks.training import create_state, detection_loss, make_train_step  # noqa: E402
from tests.proxy_tasks.tiny_models import TINY_SPEC  # noqa: E402

# Large enough that the custom calls split their work (a 9.6M multiply-add stem convolution, a
# 65,536-value stem map) and the head's bias gradients are reductions of thousands of values.
SIZE, BATCH, CLASSES, STEPS = 96, 8, 10, 3


def pool_threads() -> int:
    """The threads of XLA's intra-op pool, by their name."""
    names = [open(f"/proc/self/task/{t}/comm").read() for t in os.listdir("/proc/self/task")]
    return sum("XLAEigen" in name for name in names)


def main(out: str) -> None:
    model = build_model(TINY_SPEC, RetinaNetConfig(CLASSES, num_convs=1, num_filters=32),
                        ModelOptions())
    optimizer = make_optimizer(0.01, warmup_steps=1, total_steps=STEPS, clip_norm=10.0,
                               optimizer="adam")
    mesh = make_mesh(jax.devices()[:1])
    state = create_state(model, optimizer, jax.random.PRNGKey(0), SIZE, SIZE, mesh)
    step = make_train_step(model, optimizer,
                           functools.partial(detection_loss, num_classes=CLASSES), mesh)
    rng = np.random.default_rng(0)
    anchors = len(anchor_boxes(SIZE, SIZE, range(3, 8)))
    losses = []
    for _ in range(STEPS):
        batch = {"images": rng.normal(size=(BATCH, SIZE, SIZE, 3)).astype(np.float32),
                 "cls_targets": rng.integers(-2, CLASSES, size=(BATCH, anchors)).astype(np.int32),
                 "box_targets": rng.normal(scale=0.1, size=(BATCH, anchors, 4)).astype(np.float32)}
        state, metrics = step(state, global_batch(batch, mesh))
        losses.append(np.asarray(metrics["loss"]))
    leaves = [np.asarray(x) for x in jax.tree_util.tree_leaves(jax.device_get(state))]
    np.savez(out, threads=pool_threads(), losses=np.stack(losses), *leaves)


if __name__ == "__main__":
    main(sys.argv[2])
