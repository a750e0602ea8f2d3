"""The oneDNN convolution and max-pool custom calls equal XLA's, alone, in the backbone and
under the 8-device mesh."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax
from jax.sharding import NamedSharding, PartitionSpec as P

from proxy_tasks import cpu_kernels
from proxy_tasks.cpu_kernels.ops import library
from proxy_tasks.mesh import make_mesh
from proxy_tasks.models import ModelOptions, build_model, init_variables
from proxy_tasks.models.layers import NHWC, Conv
from tests.proxy_tasks.tiny_models import TINY_SPEC

pytestmark = pytest.mark.skipif(library() is None, reason="oneDNN extension not built")


def assert_close(actual, expected):
    """rtol 1e-4, and an absolute floor of 1e-5 of the largest value for entries that cancel."""
    expected = np.asarray(expected)
    np.testing.assert_allclose(np.asarray(actual), expected, rtol=1e-4,
                               atol=1e-5 * float(np.abs(expected).max()))


def xla_conv(x, kernel, strides):
    return lax.conv_general_dilated(x, kernel, (strides, strides), "SAME", dimension_numbers=NHWC)


def value_and_grads(conv, x, kernel, g, strides):
    y, vjp = jax.vjp(lambda x, k: conv(x, k, strides), x, kernel)
    return (y, *vjp(g))


# (batch, height, width, in channels, kernel size, out channels, stride)
SHAPES = [
    (2, 8, 8, 16, 1, 24, 1),     # 1x1
    (2, 8, 8, 16, 1, 24, 2),     # 1x1 stride 2
    (2, 12, 12, 16, 3, 16, 1),   # 3x3
    (2, 12, 12, 8, 3, 16, 2),    # 3x3 stride 2
    (2, 32, 32, 3, 7, 16, 2),    # the 7x7 stride-2 stem on RGB
    (2, 9, 7, 5, 3, 6, 1),       # odd sizes
    (2, 9, 7, 5, 3, 6, 2),       # odd sizes, stride 2
    (2, 10, 9, 5, 3, 6, 2),      # stride 2, SAME pads (0, 1) down and (1, 1) across
    (1, 5, 5, 32, 3, 32, 1),     # batch 1
    (1, 11, 13, 4, 3, 4, 2),     # batch 1, odd, stride 2
    (3, 24, 24, 32, 3, 32, 1),   # large enough to split the batch (1 + 2) over two threads
]

# Every 1x1 stride-1 (in, out) channel pair of the proxy SpineNet-49, at the map sizes it has them.
ONE_BY_ONE = [
    (2, 32, 32, 4, 1, 64, 1),
    (2, 32, 32, 16, 1, 64, 1),
    (2, 32, 32, 64, 1, 4, 1),
    (2, 32, 32, 64, 1, 16, 1),
    (2, 16, 16, 4, 1, 128, 1),
    (2, 16, 16, 8, 1, 128, 1),
    (2, 16, 16, 16, 1, 128, 1),
    (2, 16, 16, 32, 1, 128, 1),
    (2, 16, 16, 128, 1, 8, 1),
    (2, 16, 16, 128, 1, 32, 1),
    (2, 16, 16, 128, 1, 64, 1),
    (2, 8, 8, 4, 1, 256, 1),
    (2, 8, 8, 8, 1, 256, 1),
    (2, 8, 8, 16, 1, 256, 1),
    (2, 8, 8, 64, 1, 256, 1),
    (2, 8, 8, 256, 1, 16, 1),
    (2, 4, 4, 256, 1, 64, 1),
    (2, 2, 2, 64, 1, 16, 1),
    (2, 1, 1, 16, 1, 64, 1),
    (1, 3, 3, 64, 1, 256, 1),    # batch 1, odd
    (4, 32, 32, 64, 1, 256, 1),  # large enough to split the batch
]


@pytest.mark.parametrize("n,h,w,cin,k,cout,strides", SHAPES + ONE_BY_ONE)
def test_forward_and_both_gradients_equal_xla(n, h, w, cin, k, cout, strides):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(n, h, w, cin)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(k, k, cin, cout)), jnp.float32)
    g = jnp.asarray(rng.normal(size=(n, -(-h // strides), -(-w // strides), cout)), jnp.float32)
    ours = jax.jit(value_and_grads, static_argnums=(0, 4))(cpu_kernels.conv, x, kernel, g, strides)
    reference = jax.jit(value_and_grads, static_argnums=(0, 4))(xla_conv, x, kernel, g, strides)
    for a, b in zip(ours, reference):
        assert a.shape == b.shape
        assert_close(a, b)


@pytest.mark.parametrize("shape", [(2, 7, 10, 3), (1, 1, 1, 1), (2, 16, 16, 8), (3, 9, 11, 16),
                                   (3, 150, 149, 2)])  # the batch split (1 + 2) over two threads
def test_max_pool_and_gradient_equal_autodiff(shape):
    # Small integers make ties, where the gradient must go to the same (first) maximum.
    x = jnp.asarray(np.random.default_rng(0).integers(0, 3, shape), jnp.float32)
    reference = lambda x: nn.max_pool(x, (3, 3), (2, 2), "SAME")
    weights = jnp.asarray(np.random.default_rng(1).normal(size=reference(x).shape), jnp.float32)
    grad_fn = jax.jit(jax.grad(lambda x: jnp.sum(cpu_kernels.max_pool(x) * weights)))
    assert "onednn_max_pool_backward" in grad_fn.lower(x).as_text()
    grad = grad_fn(x)
    np.testing.assert_array_equal(jax.jit(cpu_kernels.max_pool)(x), reference(x))
    expected = jax.grad(lambda x: jnp.sum(reference(x) * weights))(x)
    np.testing.assert_array_equal(grad != 0, expected != 0)  # routed to the same inputs
    np.testing.assert_allclose(grad, expected, rtol=1e-6)  # sums of overlaps may differ in order


@pytest.mark.parametrize("path,used,unused", [("onednn", "onednn_conv_kernel_grad", "dot_general"),
                                              ("xla", "dot_general", "onednn_conv")])
def test_layer_routes_1x1_convolutions_by_path(monkeypatch, path, used, unused):
    monkeypatch.setenv("NAS_CPU_CONV", path)
    layer = Conv(24)
    x = jnp.ones((2, 8, 8, 16), jnp.float32)
    params = layer.init(jax.random.PRNGKey(0), x)
    text = jax.jit(jax.grad(lambda p: jnp.sum(layer.apply(p, x)))).lower(params).as_text()
    assert used in text and unused not in text


def test_convolutions_run_through_onednn_unless_told_otherwise(monkeypatch):
    monkeypatch.delenv("NAS_CPU_CONV", raising=False)
    assert cpu_kernels.enabled(jnp.float32) and not cpu_kernels.enabled(jnp.bfloat16)
    monkeypatch.setenv("NAS_CPU_CONV", "xla")
    assert not cpu_kernels.enabled(jnp.float32)
    monkeypatch.setenv("NAS_CPU_CONV", "mkl")
    with pytest.raises(ValueError, match=r"NAS_CPU_CONV: 'mkl' is not one of \('onednn', 'xla'\)"):
        cpu_kernels.enabled(jnp.float32)


def backbone_loss_and_grads(monkeypatch, path):
    monkeypatch.setenv("NAS_CPU_CONV", path)
    model = build_model(TINY_SPEC, None, ModelOptions())
    variables = init_variables(model, jax.random.PRNGKey(0), 64, 64)
    images = jnp.asarray(np.random.default_rng(1).normal(size=(2, 64, 64, 3)), jnp.float32)

    def loss(params):
        # Inference-mode BN: with batch statistics the 1x1 coarse levels normalize two values
        # per channel, which amplifies float32 rounding to 1e-3 between any two conv kernels.
        outputs = model.apply({"params": params, "batch_stats": variables["batch_stats"]},
                              images, train=False)
        return sum(jnp.mean(jnp.square(x)) for x in outputs["endpoints"].values())

    step = jax.jit(jax.value_and_grad(loss))
    return step(variables["params"]), str(step.lower(variables["params"]).as_text())


def test_backbone_loss_and_gradients_equal_the_xla_path(monkeypatch):
    (loss, grads), text = backbone_loss_and_grads(monkeypatch, "onednn")
    (xla_loss, xla_grads), xla_text = backbone_loss_and_grads(monkeypatch, "xla")
    assert "onednn_conv_kernel_grad" in text and "onednn_conv" not in xla_text
    assert_close(loss, xla_loss)
    leaves, xla_leaves = jax.tree_util.tree_leaves(grads), jax.tree_util.tree_leaves(xla_grads)
    assert len(leaves) == len(xla_leaves)
    for a, b in zip(leaves, xla_leaves):
        assert_close(a, b)


def test_sharded_batch_gives_the_single_device_result():
    rng = np.random.default_rng(2)
    x = jnp.asarray(rng.normal(size=(8, 10, 10, 16)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(3, 3, 16, 8)), jnp.float32)

    def loss(x, kernel):
        return jnp.sum(jnp.square(cpu_kernels.conv(x, kernel, 1)))

    grads = jax.jit(jax.value_and_grad(loss, (0, 1)))
    single = grads(x, kernel)
    mesh = make_mesh()
    sharded_x = jax.device_put(x, NamedSharding(mesh, P("data")))
    sharded_kernel = jax.device_put(kernel, NamedSharding(mesh, P()))
    # XLA runs the replicated custom calls on 8 threads at once: repeat to catch a race.
    for _ in range(50):
        sharded = grads(sharded_x, sharded_kernel)
        assert_close(sharded[0], single[0])
        for a, b in zip(sharded[1], single[1]):
            assert_close(a, b)
