"""Per-step losses of the proxy's first train steps under each AdamW path, side by side.

    python -m nas.preload bench/optimizer_paths.py [--arch A] [--steps N] [--set K=V] [--out F]

The same init and the same batch for `NAS_CPU_OPTIMIZER=optax` and `fused` (the switch is read
when the step is traced, so each path is traced afresh): the fused step computes optax's bits,
so both differences are 0.0; a defect shows as losses that part in the first steps, last-bit
rounding as a drift that grows later. Writes both loss lists, their largest relative
difference, the largest difference of a parameter after the last step (relative to the
parameter's largest magnitude) and each trace's count of custom calls.
"""

from __future__ import annotations

import argparse
import os

import jax
import numpy as np

from detector_setup import detector
from json_out import emit, machine
from proxy_tasks.presets import get_preset, with_overrides
from proxy_tasks.training import create_state, make_train_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet50-seed")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="override a field of the default preset (repeatable)")
    parser.add_argument("--out", help="JSON file to write (default: print)")
    args = parser.parse_args()
    config = with_overrides(get_preset("default"), args.overrides)
    size, proxy = config.image_size, detector(args.arch, config)
    model, optimizer, mesh, batch = proxy.model, proxy.optimizer, proxy.mesh, proxy.batch
    out = {"arch": args.arch, "steps": args.steps, "overrides": args.overrides,
           "machine": machine()}
    params = {}
    for path in ("optax", "fused"):
        os.environ["NAS_CPU_OPTIMIZER"] = path
        state = create_state(model, optimizer, jax.random.PRNGKey(0), size, size, mesh)
        lowered = make_train_step(model, optimizer, proxy.loss, mesh).lower(state, batch)
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
