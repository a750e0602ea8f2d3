"""Where a proxy trial's compile time goes: its three programs traced and compiled one by one.

    python bench/trial_compile.py [--arch spinenet-49] [--preset default] [--set KEY=VALUE ...]
                                  [--options JSON] [--steps 8] [--out FILE]

Writes JSON: seconds to lower and compile the init, to trace and compile the train step, the
train step's fusion and convolution counts, seconds per train step (mean of `--steps` after one
warm-up), and the detect step's trace and compile seconds; `*_cpu_s` are process CPU seconds
of the same phases (twice the wall seconds when both cores are busy).
`--options` are XLA compiler options for the train and detect steps (e.g.
'{"xla_backend_optimization_level": 1}'). `run_proxy_trial` overlaps these compiles; this
runs them in sequence so each is measured alone. Run it with tcmalloc preloaded
(`python -m nas.preload bench/trial_compile.py ...`) to match a trial.
"""

from __future__ import annotations

import argparse
import json
import re
import time

import jax
import numpy as np

from detector_setup import detector
from json_out import emit, machine
from proxy_tasks.mesh import global_batch
from proxy_tasks.presets import get_preset, with_overrides
from proxy_tasks.training import lower_init, make_detect_step, make_train_step, run_init


def timed(fn):
    """(fn(), wall seconds, process CPU seconds)."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="spinenet-49")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--options", default="{}", help="XLA compiler options, as JSON")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--out", help="JSON file to write (default: print)")
    args = parser.parse_args()
    config = with_overrides(get_preset(args.preset), args.overrides)
    if config.task != "detection":
        parser.error("--set task: only the detection proxy is measured")
    options = json.loads(args.options)
    size, proxy, rng = config.image_size, detector(args.arch, config), jax.random.PRNGKey(0)
    model, optimizer, mesh, batch = proxy.model, proxy.optimizer, proxy.mesh, proxy.batch
    result = {}

    init, result["init_trace_s"], _ = timed(
        lambda: lower_init(model, optimizer, rng, size, size, mesh))
    state, result["init_compile_run_s"], result["init_compile_run_cpu_s"] = timed(
        lambda: jax.block_until_ready(run_init(init, rng)))

    lowered, result["train_trace_s"], _ = timed(
        lambda: make_train_step(model, optimizer, proxy.loss, mesh).lower(state, batch))
    step, result["train_compile_s"], result["train_compile_cpu_s"] = timed(
        lambda: lowered.compile(compiler_options=options))
    hlo = step.as_text()
    result["train_fusions"] = len(re.findall(r"= \S+ fusion\(", hlo))
    result["train_convolutions"] = len(re.findall(r"= \S+ convolution\(", hlo))
    state, _ = step(state, batch)
    jax.block_until_ready(state)

    def run_steps():
        current = state
        for _ in range(args.steps):
            current, _ = step(current, batch)
        return jax.block_until_ready(current)

    _, seconds, cpu_seconds = timed(run_steps)
    result["train_step_s"] = seconds / args.steps
    result["train_step_cpu_s"] = cpu_seconds / args.steps

    images = global_batch(np.zeros((config.eval_batch_size, size, size, 3), np.float32), mesh)
    detect = make_detect_step(model, proxy.anchors, proxy.classes, mesh,
                              score_threshold=config.score_threshold)
    lowered, result["detect_trace_s"], _ = timed(lambda: detect.lower(init.out_info, images))
    _, result["detect_compile_s"], result["detect_compile_cpu_s"] = timed(
        lambda: lowered.compile(compiler_options=options))

    out = {"arch": args.arch, "preset": args.preset, "overrides": args.overrides,
           "compiler_options": options, "jax": jax.__version__,
           "machine": machine(),
           "result": {k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}}
    emit(out, args.out)


if __name__ == "__main__":
    main()
