"""The fast layers agree with their textbook forms (max-pool and its gradient, upsampling, 1x1
and few-channel convs, BN), and stochastic depth drops whole branches."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from proxy_tasks.models.layers import (BatchNorm, Conv, ConvBN, batch_norm_train, max_pool,
                                      upsample_to)
from proxy_tasks.models.options import ModelOptions
from proxy_tasks.models.spinenet import Block
from proxy_tasks.cpu_kernels.ops import library

# BN's statistics and gradient are XLA's passes on the `xla` path, the extension's hand-written
# kernels (a custom call each) on the `onednn` path.
CPU_PATHS = [pytest.param("xla"),
             pytest.param("onednn", marks=pytest.mark.skipif(library() is None,
                                                             reason="oneDNN extension not built"))]


def batch_norm_grads(path, x, scale, offset, weights, relu=False):
    """Gradients of sum(BN(x) * weights) by `batch_norm_train`, checked to take `path`."""
    grad_fn = jax.jit(jax.grad(
        lambda *a: jnp.sum(batch_norm_train(*a, 1e-3, relu)[0] * weights), (0, 1, 2)))
    lowered = grad_fn.lower(x, scale, offset).as_text()
    gradient = "onednn_batch_norm_relu_gradient" if relu else "onednn_batch_norm_gradient"
    for target in ("onednn_batch_norm_statistics", gradient):
        assert (target in lowered) == (path == "onednn")
    return grad_fn(x, scale, offset)


@pytest.mark.parametrize("shape", [(2, 7, 10, 3), (1, 8, 8, 2), (1, 1, 1, 1)])
def test_max_pool_and_gradient_equal_autodiff(shape):
    # Small integers make ties, where the gradient must go to the same (first) maximum.
    x = jnp.asarray(np.random.default_rng(0).integers(0, 3, shape), jnp.float32)
    reference = lambda x: nn.max_pool(x, (3, 3), (2, 2), "SAME")
    np.testing.assert_array_equal(max_pool(x), reference(x))
    weights = jnp.asarray(np.random.default_rng(1).normal(size=reference(x).shape), jnp.float32)
    grad = jax.grad(lambda x: jnp.sum(max_pool(x) * weights))(x)
    expected = jax.grad(lambda x: jnp.sum(reference(x) * weights))(x)
    np.testing.assert_array_equal(grad != 0, expected != 0)  # routed to the same inputs
    np.testing.assert_allclose(grad, expected, rtol=1e-6)  # sums of overlaps may differ in order


def test_upsample_crops_to_odd_sizes():
    x = jnp.arange(6.0).reshape(1, 2, 3, 1)
    y = upsample_to(x, 4, (7, 10))
    assert y.shape == (1, 7, 10, 1)
    np.testing.assert_array_equal(y[0, :, :, 0], np.repeat(np.repeat(x[0, :, :, 0], 4, 0), 4, 1)[:7, :10])


def test_one_by_one_conv_equals_convolution():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 5, 3, 4)), jnp.float32)
    conv = Conv(6, 1)
    params = conv.init(jax.random.PRNGKey(0), x)
    expected = jax.lax.conv_general_dilated(x, params["params"]["kernel"], (1, 1), "SAME",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(conv.apply(params, x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape, kernel_size, strides", [((2, 9, 7, 3), 7, 2), ((1, 6, 5, 3), 3, 1),
                                                         ((2, 8, 8, 1), 3, 2)])
def test_few_channel_conv_and_its_gradients_equal_convolution(shape, kernel_size, strides):
    x = jnp.asarray(np.random.default_rng(0).normal(size=shape), jnp.float32)
    conv = Conv(5, kernel_size, strides)
    params = conv.init(jax.random.PRNGKey(0), x)

    def reference(params, x=x):
        return jax.lax.conv_general_dilated(x, params["params"]["kernel"], (strides,) * 2, "SAME",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))

    np.testing.assert_allclose(conv.apply(params, x), reference(params), rtol=1e-5, atol=1e-5)
    weights = jnp.asarray(np.random.default_rng(1).normal(size=reference(params).shape))
    grad = jax.grad(lambda p, x: jnp.sum(conv.apply(p, x) * weights), (0, 1))(params, x)
    expected = jax.grad(lambda p, x: jnp.sum(reference(p, x) * weights), (0, 1))(params, x)
    np.testing.assert_allclose(grad[0]["params"]["kernel"], expected[0]["params"]["kernel"],
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(grad[1], expected[1], rtol=1e-5, atol=1e-6)


def test_batch_norm_normalizes_and_tracks_moving_averages():
    x = jnp.asarray(np.random.default_rng(0).normal(3.0, 2.0, (4, 5, 5, 2)), jnp.float32)
    bn = BatchNorm(ModelOptions(bn_momentum=0.9, bn_epsilon=1e-3))
    variables = bn.init(jax.random.PRNGKey(0), x, train=True)
    np.testing.assert_array_equal(variables["batch_stats"]["mean"], 0)  # init leaves stats alone
    y, updates = bn.apply(variables, x, train=True, mutable=["batch_stats"])
    np.testing.assert_allclose(y.mean((0, 1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(y.var((0, 1, 2)), x.var((0, 1, 2)) / (x.var((0, 1, 2)) + 1e-3), rtol=1e-4)
    np.testing.assert_allclose(updates["batch_stats"]["mean"], 0.1 * x.mean((0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(updates["batch_stats"]["var"], 0.9 + 0.1 * x.var((0, 1, 2)), rtol=1e-5)
    inference = bn.apply({**variables, **updates}, x, train=False)
    mean, var = updates["batch_stats"]["mean"], updates["batch_stats"]["var"]
    np.testing.assert_allclose(inference, (x - mean) / np.sqrt(var + 1e-3), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("norm", ["batch", "group"])
@pytest.mark.parametrize("train", [True, False])
def test_batch_norm_with_relu_is_the_relu_of_batch_norm(norm, train):
    rng = np.random.default_rng(3)
    x = jnp.asarray(rng.normal(1.0, 2.0, (2, 5, 5, 8)), jnp.float32)
    options = ModelOptions(norm=norm)
    variables = BatchNorm(options).init(jax.random.PRNGKey(0), x, train=False)
    variables = {**variables, "params": {"scale": jnp.asarray(rng.normal(size=8), jnp.float32),
                                         "bias": jnp.asarray(rng.normal(size=8), jnp.float32)}}
    if norm == "batch":
        variables["batch_stats"] = {"mean": jnp.full(8, 0.5), "var": jnp.full(8, 3.0)}

    def apply(relu):
        return BatchNorm(options, relu=relu).apply(variables, x, train=train,
                                                   mutable=["batch_stats"])[0]

    np.testing.assert_array_equal(apply(True), nn.relu(apply(False)))


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("scale_value,relu", [
    (None, False), (None, True),
    (0.0, False),  # a zero-initialised residual BN
])
def test_batch_norm_gradient_equals_autodiff_of_its_formula(monkeypatch, path, scale_value, relu):
    monkeypatch.setenv("NAS_CPU_CONV", path)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(2.0, 3.0, (3, 5, 4, 6)), jnp.float32)
    scale = jnp.asarray(rng.normal(size=6) if scale_value is None else np.zeros(6), jnp.float32)
    offset = jnp.asarray(rng.normal(size=6), jnp.float32)
    weights = jnp.asarray(rng.normal(size=x.shape), jnp.float32)

    def textbook(x, scale, offset):
        mean, var = x.mean((0, 1, 2)), x.var((0, 1, 2))
        y = (x - mean) / jnp.sqrt(var + 1e-3) * scale + offset
        return jax.nn.relu(y) if relu else y

    y, mean, var = batch_norm_train(x, scale, offset, 1e-3, relu)
    np.testing.assert_allclose(y, textbook(x, scale, offset), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mean, x.mean((0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(var, x.var((0, 1, 2)), rtol=1e-5)
    grads = batch_norm_grads(path, x, scale, offset, weights, relu)
    expected = jax.grad(lambda *a: jnp.sum(textbook(*a) * weights), (0, 1, 2))(x, scale, offset)
    for name, got, want in zip(("x", "scale", "offset"), grads, expected):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("path", CPU_PATHS)
@pytest.mark.parametrize("shape", [
    (8, 1, 1, 4),     # 8 values per channel: a 1 x 1 level at batch 8
    (3, 61, 43, 12),  # 7,869 rows: many blocks of rows, split over two threads, a short last one
])
def test_batch_norm_statistics_and_gradient_hold_when_the_mean_dwarfs_the_spread(
        monkeypatch, path, shape):
    monkeypatch.setenv("NAS_CPU_CONV", path)
    # Channel means 100-1000 times the spread: the one-pass sums (E[x^2] - E[x]^2, sum(g x) -
    # mean sum(g)) lost 4-20% of the gradient here.
    rng = np.random.default_rng(1)
    channels = shape[-1]
    x = np.float32(rng.choice([100.0, -300.0, 1000.0], channels) + rng.normal(0, 1.0, shape))
    weights = np.float32(rng.normal(size=x.shape))
    scale, offset = np.float32(rng.normal(size=channels)), np.float32(rng.normal(size=channels))
    _, mean, var = jax.jit(lambda *a: batch_norm_train(*a, 1e-3))(x, scale, offset)
    grads = batch_norm_grads(path, x, scale, offset, weights)
    # The textbook formula in float64 on the same float32 inputs.
    x64, w64 = x.astype(np.float64), weights.astype(np.float64)
    centered = x64 - x64.mean((0, 1, 2))
    var64 = (centered ** 2).mean((0, 1, 2))
    np.testing.assert_allclose(mean, x64.mean((0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(var, var64, rtol=1e-6)
    x_hat = centered / np.sqrt(var64 + 1e-3)
    mean_g, mean_gx = w64.mean((0, 1, 2)), (w64 * x_hat).mean((0, 1, 2))
    want_x = scale * (w64 - mean_g - x_hat * mean_gx) / np.sqrt(var64 + 1e-3)
    want_scale, want_offset = (w64 * x_hat).sum((0, 1, 2)), w64.sum((0, 1, 2))
    for name, got, want in zip(("x", "scale", "offset"), grads, (want_x, want_scale, want_offset)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max(),
                                   err_msg=name)


@pytest.mark.parametrize("channels,groups", [(24, 3), (12, 1), (20, 2)])
def test_group_norm_normalizes_each_example_over_channel_groups(channels, groups):
    rng = np.random.default_rng(2)
    x = np.float32(rng.normal(5.0, 3.0, (2, 3, 4, channels)))
    scale, offset = np.float32(rng.normal(size=channels)), np.float32(rng.normal(size=channels))
    bn = BatchNorm(ModelOptions(norm="group"))
    variables = {"params": {"scale": scale, "bias": offset}}
    x_hat = np.empty_like(x, np.float64)
    for n in range(2):
        for part in np.split(np.arange(channels), groups):
            block = x[n][..., part].astype(np.float64)
            x_hat[n][..., part] = (block - block.mean()) / np.sqrt(block.var() + 1e-3)
    for train in (True, False):  # no batch statistics: the same in training and inference
        y = bn.apply(variables, x, train=train)
        np.testing.assert_allclose(y, x_hat * scale + offset, rtol=1e-5, atol=1e-5)
    assert "batch_stats" not in bn.init(jax.random.PRNGKey(0), x, train=True)


def test_stochastic_depth_drops_whole_residual_branches_in_training_only():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(16, 4, 4, 2)), jnp.float32)
    block = Block("residual", 2, ModelOptions(), drop_rate=0.5)
    variables = block.init(jax.random.PRNGKey(0), x, train=False)
    rngs = {"dropout": jax.random.PRNGKey(1)}
    y, _ = block.apply(variables, x, train=True, rngs=rngs, mutable=["batch_stats"])
    dropped = np.all(np.isclose(y, jax.nn.relu(x)), axis=(1, 2, 3))  # branch gone: relu(shortcut)
    assert 0 < dropped.sum() < len(x)
    kept = Block("residual", 2, ModelOptions()).apply(variables, x, train=False)
    np.testing.assert_array_equal(block.apply(variables, x, train=False), kept)


@pytest.mark.parametrize("block_fn", ["residual", "bottleneck"])
def test_zero_init_residual_blocks_start_as_their_shortcut(block_fn):
    # A residual block 2 -> 2 keeps the identity shortcut; a bottleneck 2 -> 8 projects it.
    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 5, 5, 2)), jnp.float32)
    options = ModelOptions(zero_init_residual=True)
    block = Block(block_fn, 2, options)
    variables = block.init(jax.random.PRNGKey(0), x, train=False)
    last = "conv2" if block_fn == "bottleneck" else "conv1"
    assert variables["params"][last]["bn"]["scale"].shape == (8 if block_fn == "bottleneck" else 2,)
    assert not np.any(variables["params"][last]["bn"]["scale"])
    y, _ = block.apply(variables, x, train=True, mutable=["batch_stats"])
    if block_fn == "residual":
        shortcut = x
    else:
        projection = {k: v["projection"] for k, v in variables.items()}
        shortcut, _ = ConvBN(8, 1, options, activate=False).apply(projection, x, train=True,
                                                                  mutable=["batch_stats"])
    np.testing.assert_array_equal(y, jax.nn.relu(shortcut))
    ones = Block(block_fn, 2, ModelOptions()).init(jax.random.PRNGKey(0), x, train=False)
    assert np.all(ones["params"][last]["bn"]["scale"] == 1)
