"""Compiled checks: gradients reach every live parameter, XLA's FLOPs match the cost model, and
bfloat16 compute tracks float32. Compiled at XLA's backend optimization level 0 (compile time
halves; the HLO, and so its cost analysis, is the same)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from proxy_tasks.models import ModelOptions, build_model, variable_shapes
from search_space import PROXY_SIZE, SPACES, backbone_cost, builtin_spec, decode, random_genome

FAST_COMPILE = {"xla_backend_optimization_level": 0}


def compile_fast(fn, *args):
    return jax.jit(fn).lower(*args).compile(compiler_options=FAST_COMPILE)


def random_variables(model, height, width, seed=0):
    """Variables with He-like random kernels, filled from `variable_shapes` (no init compile)."""
    rng = np.random.default_rng(seed)

    def fill(path, shape):
        name = path[-1].key
        if name == "kernel":
            fan_in = int(np.prod(shape.shape[:-1]))
            return jnp.asarray(rng.normal(size=shape.shape) * np.sqrt(2 / fan_in), jnp.float32)
        return jnp.ones(shape.shape) if name in ("scale", "var") else jnp.zeros(shape.shape)
    return jax.tree_util.tree_map_with_path(fill, variable_shapes(model, height, width))


def dead_blocks(spec):
    """Blocks from which no path leads to an output block (the spec allows such dead ends)."""
    merges = spec.dangling_merges()
    live = set()
    for k in reversed(range(len(spec.blocks))):
        block = spec.blocks[k]
        if block.is_output or spec.feature_index(k) in live:
            live.update(block.input_offsets, merges.get(k, ()))
            live.add(spec.feature_index(k))
    return {k for k in range(len(spec.blocks)) if spec.feature_index(k) not in live}


@pytest.fixture(scope="module")
def genome_gradients():
    """Gradients of a random paper-space genome (with two dead-end blocks) at proxy scaling."""
    space = SPACES["spinenet-49"]
    spec = decode(random_genome(space, np.random.default_rng(7)), space, PROXY_SIZE.scaling)
    model = build_model(spec)
    variables = random_variables(model, 64, 96)
    images = jnp.asarray(np.random.default_rng(1).normal(size=(2, 64, 96, 3)), jnp.float32)

    def loss(params):
        outputs, _ = model.apply({"params": params, "batch_stats": variables["batch_stats"]}, images,
                                 train=True, mutable=["batch_stats"])
        return sum(jnp.mean(x ** 2) for x in outputs["endpoints"].values())

    return spec, compile_fast(jax.grad(loss), variables["params"])(variables["params"])


def test_every_parameter_of_live_blocks_gets_a_gradient(genome_gradients):
    """Everything on a path to an output moves; a dead-end block (one no later block consumes
    and the dangling rule cannot merge) gets none, as in the reference."""
    spec, grads = genome_gradients
    assert dead_blocks(spec) == {6, 8}
    dead_prefixes = tuple(f"block{k}" for k in dead_blocks(spec))
    for module, leaves in grads["backbone"].items():
        moved = [bool(np.any(np.asarray(g) != 0)) for g in jax.tree_util.tree_leaves(leaves)]
        is_dead = module.split("_")[0] in dead_prefixes
        assert moved == [not is_dead] * len(moved), module


@pytest.fixture(scope="module")
def proxy_forward():
    """Compiled float32 and bfloat16 inference of the proxy backbone on one 256 px image."""
    spec = builtin_spec("spinenet-49").with_scaling(PROXY_SIZE.scaling)
    images = jnp.asarray(np.random.default_rng(0).normal(size=(1, 256, 256, 3)), jnp.float32)
    variables = random_variables(build_model(spec), 256, 256)
    out = {}
    for dtype in (jnp.float32, jnp.bfloat16):
        model = build_model(spec, options=ModelOptions(dtype=dtype))
        compiled = compile_fast(lambda v, x: model.apply(v, x)["endpoints"], variables, images)
        out[dtype] = (compiled, compiled(variables, images))
    return spec, out


def test_xla_flops_match_cost_model(proxy_forward):
    """XLA counts a multiply-add as 2 FLOPs; it also counts BN and activations but skips the
    padding taps of SAME convolutions, which nearly cancel at 256 px."""
    spec, out = proxy_forward
    xla_flops = out[jnp.float32][0].cost_analysis()["flops"]
    assert xla_flops / 2 == pytest.approx(backbone_cost(spec, 256, 256).total.flops, rel=0.02)


def test_bfloat16_forward_close_to_float32(proxy_forward):
    _, out = proxy_forward
    for level, reference in out[jnp.float32][1].items():
        lowp = out[jnp.bfloat16][1][level]
        assert lowp.dtype == jnp.bfloat16
        error = np.abs(np.asarray(lowp, np.float32) - np.asarray(reference))
        assert error.mean() <= 0.03 * np.abs(np.asarray(reference)).mean() + 1e-3, level
