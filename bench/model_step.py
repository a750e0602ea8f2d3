"""Training-step speed of the proxy SpineNet (RetinaNet) and its backbone alone on this machine.

    python bench/model_step.py [--sizes 128 256] [--batch 16] [--out FILE]

Writes JSON: per (model, size) the trace and compile seconds, the steady training-step
images/s (forward + backward + SGD momentum; median of timed steps after warm-up), the
process CPU seconds of compile and step (steadier than wall time on a shared machine), the
kernel's share of a step's CPU and its page faults (the allocator's cost), and the peak
resident memory. Each case runs in a fresh child process, so compile times are cold
(unless --cache-dir) and memory peaks are its own. The children run under `nas.preload`'s
allocator (tcmalloc where installed, else tuned glibc malloc), as trials do, unless --no-preload.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from nas.preload import LIBRARY, preload_env

REPO = Path(__file__).resolve().parent.parent
MODELS = ("retinanet", "backbone")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    p.add_argument("--steps", type=int, default=10, help="timed steps per case")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    p.add_argument("--plain-layers", action="store_true",
                   help="baseline: 1x1 convs as convolutions, autodiff max-pool gradient")
    p.add_argument("--no-donate", action="store_true", help="do not donate the train state")
    p.add_argument("--no-preload", action="store_true", help="plain glibc malloc")
    p.add_argument("--cache-dir", help="persistent compilation cache directory")
    p.add_argument("--xla-flags", default="", help="extra XLA_FLAGS for the runs")
    p.add_argument("--cpu-conv", choices=("xla", "onednn"),
                   help="NAS_CPU_CONV for the runs (default: the environment's)")
    p.add_argument("--out", help="JSON file to write (default: print)")
    p.add_argument("--case", nargs=2, metavar=("MODEL", "SIZE"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def child_env(args) -> dict:
    env = (None if args.no_preload else preload_env()) or dict(os.environ)
    env["XLA_FLAGS"] = " ".join(filter(None, (env.get("XLA_FLAGS"), args.xla_flags)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), env.get("PYTHONPATH"))))
    if args.cpu_conv:
        env["NAS_CPU_CONV"] = args.cpu_conv
    return env


def use_plain_layers() -> None:
    """Swaps in the textbook layers the fast ones replace, to measure what they give."""
    import flax.linen as nn
    from jax import lax

    from proxy_tasks.models import heads, layers, spinenet

    class PlainConv(layers.Conv):
        @nn.compact
        def __call__(self, x):
            k, cin = self.kernel_size, x.shape[-1]
            kernel = self.param("kernel", self.kernel_init, (k, k, cin, self.features))
            y = lax.conv_general_dilated(x.astype(self.dtype), kernel.astype(self.dtype),
                                         (self.strides,) * 2, "SAME", dimension_numbers=layers.NHWC)
            if self.use_bias:
                y = y + self.param("bias", self.bias_init, (self.features,)).astype(self.dtype)
            return y

    layers.Conv = heads.Conv = PlainConv
    spinenet.max_pool = lambda x: nn.max_pool(x, (3, 3), (2, 2), "SAME")


def make_case(model_name: str, size: int, batch: int, dtype: str):
    """(model, loss of (outputs, targets), targets) for one benchmark case."""
    import jax.numpy as jnp
    import numpy as np

    from proxy_tasks.models import (ModelOptions, RetinaNetConfig, anchor_boxes, build_model,
                                    flatten_outputs, retinanet_loss)
    from search_space import PROXY_SIZE, builtin_spec

    spec = builtin_spec("spinenet-49").with_scaling(PROXY_SIZE.scaling)
    options = ModelOptions(dtype=jnp.dtype(dtype))
    rng = np.random.default_rng(0)
    if model_name == "backbone":
        def loss(outputs, _):
            return sum(jnp.mean(jnp.square(x.astype(jnp.float32))) for x in outputs["endpoints"].values())
        return build_model(spec, None, options), loss, ()
    head = RetinaNetConfig.for_size(PROXY_SIZE)
    num_anchors = len(anchor_boxes(size, size, range(spec.min_level, spec.max_level + 1)))
    targets = (rng.integers(-2, head.num_classes, (batch, num_anchors)).astype(np.int32),
               rng.normal(size=(batch, num_anchors, 4)).astype(np.float32))

    def loss(outputs, targets):
        return retinanet_loss(flatten_outputs(outputs["class_outputs"], head.num_classes),
                              flatten_outputs(outputs["box_outputs"], 4), *targets)["loss"]
    return build_model(spec, head, options), loss, targets


def run_case(args, model_name: str, size: int) -> dict:
    """Compiles and times one case in this process."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    from proxy_tasks.models import init_variables

    if args.cache_dir:
        jax.config.update("jax_compilation_cache_dir", args.cache_dir)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    if args.plain_layers:
        use_plain_layers()
    model, loss_fn, targets = make_case(model_name, size, args.batch, args.dtype)
    tx = optax.sgd(0.01, momentum=0.9)
    variables = init_variables(model, jax.random.PRNGKey(0), size, size)
    state = (variables["params"], variables["batch_stats"], tx.init(variables["params"]))

    def step(state, images, targets):
        params, batch_stats, opt_state = state

        def loss(params):
            outputs, updates = model.apply({"params": params, "batch_stats": batch_stats}, images,
                                           train=True, mutable=["batch_stats"])
            return loss_fn(outputs, targets), updates["batch_stats"]

        (value, batch_stats), grads = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), batch_stats, opt_state), value

    images = jnp.asarray(np.random.default_rng(1).normal(size=(args.batch, size, size, 3)), jnp.float32)
    jitted = jax.jit(step, donate_argnums=() if args.no_donate else (0,))
    t0 = time.perf_counter()
    lowered = jitted.lower(state, images, targets)
    t1, c1 = time.perf_counter(), time.process_time()
    compiled = lowered.compile()
    t2, c2 = time.perf_counter(), time.process_time()
    times, cpu_times = [], []
    for i in range(args.warmup + args.steps):
        if i == args.warmup:
            usage = resource.getrusage(resource.RUSAGE_SELF)
        start, cpu_start = time.perf_counter(), time.process_time()
        state, value = compiled(state, images, targets)
        jax.block_until_ready(value)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    timed = resource.getrusage(resource.RUSAGE_SELF)
    if not np.isfinite(float(value)):
        raise RuntimeError(f"{model_name} {size}: loss is {float(value)}")
    median = statistics.median(times[args.warmup:])
    return {
        "model": model_name, "size": size, "batch": args.batch, "dtype": args.dtype,
        "trace_s": round(t1 - t0, 2), "compile_s": round(t2 - t1, 2),
        "compile_cpu_s": round(c2 - c1, 2),
        "first_step_s": round(times[0], 3), "step_s": round(median, 4),
        "images_per_s": round(args.batch / median, 1),
        "step_cpu_s": round(statistics.median(cpu_times[args.warmup:]), 4),
        "step_system_cpu_s": round((timed.ru_stime - usage.ru_stime) / args.steps, 4),
        "step_page_faults": round((timed.ru_minflt - usage.ru_minflt) / args.steps),
        "step_s_range": [round(min(times[args.warmup:]), 4), round(max(times[args.warmup:]), 4)],
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "xla_flops_per_step": compiled.cost_analysis().get("flops"),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.case:
        print(json.dumps(run_case(args, args.case[0], int(args.case[1]))))
        return 0
    env, results = child_env(args), []
    forwarded = list(argv if argv is not None else sys.argv[1:])
    for model_name in args.models:
        for size in args.sizes:
            cmd = [sys.executable, __file__, *forwarded, "--case", model_name, str(size)]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if out.returncode:
                sys.stderr.write(out.stderr)
                return out.returncode
            results.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(results[-1]), file=sys.stderr)
    import jax
    report = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "machine": {"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "jax": jax.__version__},
        "settings": {"tcmalloc": LIBRARY in env.get("LD_PRELOAD", ""),
                     "glibc_tunables": env.get("GLIBC_TUNABLES"),
                     "dtype": args.dtype, "plain_layers": args.plain_layers,
                     "donate": not args.no_donate, "cache_dir": args.cache_dir,
                     "xla_flags": env["XLA_FLAGS"], "steps": args.steps, "warmup": args.warmup,
                     "cpu_conv": env.get("NAS_CPU_CONV", "default")},
        "model": "SpineNet-49 blocks, filter_size_scale 0.25, alpha 0.25, endpoints 64; "
                 "RetinaNet head 4 x 64, 91 classes, 9 anchors",
        "results": results,
    }
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
