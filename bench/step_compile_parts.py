"""Where the train step's compile time goes: the step against its parts, each compiled alone.

    python -m nas.preload bench/step_compile_parts.py [--arch spinenet-49] [--preset default]
                                                      [--out FILE]

Compiles, one after another in one process: the whole train step (`make_train_step`); its
gradient alone; the gradient with a plain per-leaf SGD update; the proxy's optimizer update
alone (optax's clip + AdamW over the parameter tree); the same update over the parameters
flattened into two vectors (kernels, the rest); the flattening (one concatenate) and the
unflattening (a slice per leaf) alone; and the whole step with the parameters kept flat.
Writes JSON: per program its wall and process-CPU seconds to compile (after tracing) and its
XLA fusion count. Issue 29 asked whether compiled code can be shared between architectures;
these are the measurements behind the answer in bench/results/search.md.
"""

from __future__ import annotations

import argparse
import re
import time

import jax
import jax.numpy as jnp
import optax

from detector_setup import detector
from json_out import emit, machine
from proxy_tasks.optim import learning_rate
from proxy_tasks.presets import get_preset
from proxy_tasks.training import lower_init, make_train_step, run_init

GROUPS = ("kernels", "others")


def _group(leaf) -> str:
    return GROUPS[0] if leaf.ndim > 1 else GROUPS[1]


def flatten(tree) -> dict:
    """The leaves as two vectors: the kernels (the AdamW decay's mask) and the rest."""
    leaves = jax.tree_util.tree_leaves(tree)
    return {g: jnp.concatenate([x.ravel() for x in leaves if _group(x) == g]) for g in GROUPS}


def unflatten(flat: dict, like):
    """`flatten`'s inverse: a slice of its vector per leaf of `like`."""
    leaves, treedef = jax.tree_util.tree_flatten(like)
    offsets, out = dict.fromkeys(GROUPS, 0), []
    for x in leaves:
        g = _group(x)
        out.append(flat[g][offsets[g]:offsets[g] + x.size].reshape(x.shape))
        offsets[g] += x.size
    return jax.tree_util.tree_unflatten(treedef, out)


def compiled(fn, *args) -> dict:
    """Compile seconds (wall, CPU; tracing excluded) and fusion count of `jax.jit(fn)(*args)`."""
    lowered = jax.jit(fn).lower(*args)
    wall, cpu = time.perf_counter(), time.process_time()
    executable = lowered.compile()
    return {"compile_s": round(time.perf_counter() - wall, 3),
            "compile_cpu_s": round(time.process_time() - cpu, 3),
            "fusions": len(re.findall(r"= \S+ fusion\(", executable.as_text()))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="spinenet-49")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--out", help="JSON file to write (default: print)")
    args = parser.parse_args()
    config = get_preset(args.preset)
    size, proxy, rng = config.image_size, detector(args.arch, config), jax.random.PRNGKey(0)
    model, optimizer, mesh, batch = proxy.model, proxy.optimizer, proxy.mesh, proxy.batch
    loss_fn, total_steps = proxy.loss, proxy.total_steps
    state = run_init(lower_init(model, optimizer, rng, size, size, mesh), rng)

    def gradient(params, batch_stats, batch):
        def loss_of(params):
            outputs, updates = model.apply({"params": params, "batch_stats": batch_stats},
                                           batch["images"], train=True, mutable=["batch_stats"])
            losses = loss_fn(outputs, batch)
            return losses["loss"], (losses, updates["batch_stats"])
        return jax.grad(loss_of, has_aux=True)(params)

    def sgd_step(params, batch_stats, batch):
        grads, aux = gradient(params, batch_stats, batch)
        return jax.tree_util.tree_map(lambda p, g: p - 0.01 * g, params, grads), aux

    def update(params, grads, opt_state):
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    flat_adamw = optax.chain(
        optax.clip_by_global_norm(config.clip_norm),
        optax.adamw(learning_rate(config.learning_rate, config.warmup_steps, total_steps),
                    b1=config.momentum, weight_decay=config.weight_decay,
                    mask={"kernels": True, "others": False}))

    def flat_update(flat, grads, opt_state):
        updates, opt_state = flat_adamw.update(grads, opt_state, flat)
        return optax.apply_updates(flat, updates), opt_state

    def flat_step(flat, batch_stats, opt_state, batch):
        grads, aux = gradient(unflatten(flat, state.params), batch_stats, batch)
        return flat_update(flat, flatten(grads), opt_state), aux

    params, stats = state.params, state.batch_stats
    flat = flatten(params)
    flat_state = flat_adamw.init(flat)
    result = {
        "whole_step": compiled(make_train_step(model, optimizer, loss_fn, mesh), state, batch),
        "gradient": compiled(gradient, params, stats, batch),
        "gradient_and_sgd": compiled(sgd_step, params, stats, batch),
        "update": compiled(update, params, params, state.opt_state),
        "flat_update": compiled(flat_update, flat, flat, flat_state),
        "flatten": compiled(flatten, params),
        "unflatten": compiled(lambda f: unflatten(f, params), flat),
        "whole_step_flat_params": compiled(flat_step, flat, stats, flat_state, batch),
    }
    out = {"arch": args.arch, "preset": args.preset, "jax": jax.__version__,
           "parameter_leaves": len(jax.tree_util.tree_leaves(params)), "machine": machine(),
           "result": result}
    emit(out, args.out)


if __name__ == "__main__":
    main()
