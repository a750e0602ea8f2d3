"""Per-step losses of the proxy's first train steps under each AdamW path, side by side.

    python -m nas.preload bench/optimizer_paths.py [--arch A] [--steps N] [--set K=V] [--out F]

The same init and the same batch for `NAS_CPU_OPTIMIZER=optax` and `fused` (the switch is read
when the step is traced, so each path is traced afresh): a defect in the fused step shows as
losses that part in the first steps; last-bit rounding only as a drift that grows later. Writes
both loss lists, their largest relative difference, the largest difference of a parameter after
the last step (relative to the parameter's largest magnitude) and each trace's count of custom
calls.
"""

from __future__ import annotations

import argparse
import functools
import os

import jax
import numpy as np

from json_out import emit, machine
from proxy_tasks.data import AnchorConfig
from proxy_tasks.mesh import global_batch, make_mesh
from proxy_tasks.presets import get_preset, with_overrides
from proxy_tasks.training import create_state, detection_loss, make_train_step
from proxy_tasks.trial import build_proxy_model, example_batch, num_classes, proxy_optimizer
from search_space import builtin_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet50-seed")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="override a field of the default preset (repeatable)")
    parser.add_argument("--out", help="JSON file to write (default: print)")
    args = parser.parse_args()
    config = with_overrides(get_preset("default"), args.overrides)
    size = config.image_size
    model = build_proxy_model(builtin_spec(args.arch), config)
    optimizer = proxy_optimizer(config, config.train_images // config.batch_size * config.epochs)
    mesh = make_mesh()
    anchors = AnchorConfig(anchor_size=config.anchor_size).anchors(size)
    batch = global_batch(example_batch(config, len(anchors)), mesh)
    loss = functools.partial(detection_loss, num_classes=num_classes(config))
    out = {"arch": args.arch, "steps": args.steps, "overrides": args.overrides,
           "machine": machine()}
    params = {}
    for path in ("optax", "fused"):
        os.environ["NAS_CPU_OPTIMIZER"] = path
        state = create_state(model, optimizer, jax.random.PRNGKey(0), size, size, mesh)
        lowered = make_train_step(model, optimizer, loss, mesh).lower(state, batch)
        out[f"{path}_custom_calls"] = lowered.as_text().count("custom_call")
        step, losses = lowered.compile(), []
        for _ in range(args.steps):
            state, metrics = step(state, batch)
            losses.append(float(metrics["loss"]))
        out[f"{path}_losses"] = losses
        params[path] = jax.tree_util.tree_leaves(jax.device_get(state.params))
    relative = np.abs(np.array(out["fused_losses"]) / np.array(out["optax_losses"]) - 1)
    out["max_relative_difference"] = float(relative.max())
    out["max_parameter_difference"] = max(
        float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30))
        for a, b in zip(params["optax"], params["fused"]))
    emit(out, args.out)


if __name__ == "__main__":
    main()
