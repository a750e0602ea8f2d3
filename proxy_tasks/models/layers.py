"""Building layers: convolutions (through oneDNN on the CPU, else XLA's, with 1x1 ones as
matrix products there), batch norm, pooling, resizing."""

from __future__ import annotations

import functools
from typing import Any, Callable, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from proxy_tasks import cpu_kernels
from proxy_tasks.models.options import DEFAULT_KERNEL_INIT, GROUP_CHANNELS, ModelOptions

NHWC = ("NHWC", "HWIO", "NHWC")


# Convolutions of inputs with at most this many channels (the stem's RGB image) get their
# kernel gradient tap by tap; see `few_channel_conv`.
FEW_CHANNELS = 4


def _conv(x, kernel, strides: int):
    return lax.conv_general_dilated(x, kernel, (strides, strides), "SAME", dimension_numbers=NHWC)


def _same_pads(shape, window: int, strides: int) -> Tuple[Tuple[int, int], ...]:
    return tuple(lax.padtype_to_pads(shape[1:3], (window,) * 2, (strides,) * 2, "SAME"))


def _window_taps(x, window: int, strides: int, pad_value):
    """The SAME-padded map's shape and its window * window strided views ((row, column), view):
    view (i, j) holds the input under tap (i, j) of every output position."""
    (pt, pb), (pl, pr) = _same_pads(x.shape, window, strides)
    padded = lax.pad(x, jnp.array(pad_value, x.dtype), ((0, 0, 0), (pt, pb, 0), (pl, pr, 0), (0, 0, 0)))
    out_h, out_w = -(-x.shape[1] // strides), -(-x.shape[2] // strides)
    taps = []
    for i in range(window):
        for j in range(window):
            end = (x.shape[0], i + strides * (out_h - 1) + 1, j + strides * (out_w - 1) + 1, x.shape[3])
            taps.append(((i, j), lax.slice(padded, (0, i, j, 0), end, (1, strides, strides, 1))))
    return padded.shape, taps


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def few_channel_conv(x, kernel, strides: int):
    """A SAME convolution whose kernel gradient is one matrix product per tap.

    For an input with few channels XLA's CPU backend computes the kernel gradient as a
    convolution with an output-sized window (at 128 px, a quarter of the proxy detector's step);
    the k * k products of each tap's view with the output gradient are several times faster.
    """
    return _conv(x, kernel, strides)


def _few_channel_conv_fwd(x, kernel, strides):
    return _conv(x, kernel, strides), (x, kernel)


def _few_channel_conv_bwd(strides, residuals, g):
    x, kernel = residuals
    _, taps = _window_taps(x, kernel.shape[0], strides, 0.0)
    over_positions = (((0, 1, 2), (0, 1, 2)), ((), ()))
    kernel_grad = jnp.stack([lax.dot_general(tap, g, over_positions) for _, tap in taps])
    _, input_vjp = jax.vjp(lambda x: _conv(x, kernel, strides), x)
    return input_vjp(g)[0], kernel_grad.reshape(kernel.shape)


few_channel_conv.defvjp(_few_channel_conv_fwd, _few_channel_conv_bwd)


class Conv(nn.Module):
    """A k x k SAME convolution with a float32 kernel, computed in `dtype`.

    Convolutions run through oneDNN where `cpu_kernels.enabled` says so. Otherwise a 1x1 stride-1
    convolution is a `dot_general` over the channel axis (on XLA's CPU backend that avoids the
    transposes its convolution emitter inserts for the kernel gradient), and one of a
    few-channel input is `few_channel_conv`.
    """

    features: int
    kernel_size: int = 1
    strides: int = 1
    use_bias: bool = False
    dtype: Any = jnp.float32
    kernel_init: Callable = DEFAULT_KERNEL_INIT
    bias_init: Callable = nn.initializers.zeros

    @nn.compact
    def __call__(self, x):
        k, cin = self.kernel_size, x.shape[-1]
        kernel = self.param("kernel", self.kernel_init, (k, k, cin, self.features), jnp.float32)
        x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
        if cpu_kernels.enabled(self.dtype):
            y = cpu_kernels.conv(x, kernel, self.strides)
        elif k == 1 and self.strides == 1:
            y = lax.dot_general(x, kernel.reshape(cin, self.features), (((x.ndim - 1,), (0,)), ((), ())))
        elif cin <= FEW_CHANNELS:
            y = few_channel_conv(x, kernel, self.strides)
        else:
            y = _conv(x, kernel, self.strides)
        if self.use_bias:
            y = y + self.param("bias", self.bias_init, (self.features,), jnp.float32).astype(self.dtype)
        return y


def _channel_sums(*maps):
    """Per-channel sums over all but the last axis, of each float32 map."""
    axes = tuple(range(maps[0].ndim - 1))
    return [lax.reduce_sum(m, axes) for m in maps]


def _normalize(x, scale, offset, mean, inv_std):
    """(`(x - mean) * inv_std * scale + offset` as one multiply-add in x's dtype, multiplier)."""
    multiplier = scale * inv_std
    return x * multiplier.astype(x.dtype) + (offset - mean * multiplier).astype(x.dtype), multiplier


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def batch_norm_train(x, scale, offset, epsilon: float, relu: bool = False):
    """(BN of `x` by its own batch statistics, then a ReLU if `relu`; batch mean, batch variance).

    Statistics are float32, the variance and the gradient's sums over `x - mean`: the one-pass
    E[x^2] - E[x]^2 and sum(g * x) - mean * sum(g) lose the gradient to cancellation when a
    channel's mean is 100 times its spread (a coarse level's few values per channel at a small
    batch: gradient errors of 10-20%). The hand-written gradient (two per-channel sums, one
    multiply-add per element) traces and compiles faster than autodiff's. Where
    `cpu_kernels.enabled` says so, the statistics and the gradient are one custom call each, over
    both threads (fewer passes over the map than XLA's), the ReLU's gradient folded into BN's.
    The mean and variance only feed the moving averages: their cotangents are ignored.
    """
    return _batch_norm_train_fwd(x, scale, offset, epsilon, relu)[0]


def _centered(x, mean):
    return x.astype(jnp.float32) - mean


def _multiplier(scale, var, epsilon):
    return scale * lax.rsqrt(var + epsilon)


def _batch_norm_train_fwd(x, scale, offset, epsilon, relu):
    if cpu_kernels.enabled(x.dtype):
        mean, var = cpu_kernels.batch_norm_statistics(x)
        centered = _centered(x, mean)
    else:
        count = x.size // x.shape[-1]
        (total,) = _channel_sums(x.astype(jnp.float32))
        mean = total / count
        centered = _centered(x, mean)
        (squares,) = _channel_sums(centered * centered)
        var = squares / count
    y = centered * _multiplier(scale, var, epsilon) + offset
    if relu:
        y = jnp.maximum(y, 0.0)
    return (y.astype(x.dtype), mean, var), (x, scale, offset, mean, var)


def _batch_norm_train_bwd(epsilon, relu, residuals, cotangents):
    x, scale, offset, mean, var = residuals
    g = cotangents[0]
    if cpu_kernels.enabled(x.dtype):
        mask = (_multiplier(scale, var, epsilon), offset) if relu else None
        return cpu_kernels.batch_norm_grad(x, g, scale, mean, var, epsilon, mask)
    inv_std = lax.rsqrt(var + epsilon)
    multiplier = scale * inv_std
    gf, centered = g.astype(jnp.float32), _centered(x, mean)
    if relu:
        gf = jnp.where(centered * multiplier + offset > 0, gf, 0.0)
    count = x.size // x.shape[-1]
    g_sum, gc_sum = _channel_sums(gf, gf * centered)
    scale_grad = inv_std * gc_sum  # the sum of g * x_hat
    # dx = multiplier * (g - mean(g) - x_hat * mean(g * x_hat)), as g * multiplier + xc * a + b.
    a = -multiplier * inv_std * scale_grad / count
    b = -multiplier * g_sum / count
    dx = gf * multiplier + centered * a + b
    return dx.astype(g.dtype), scale_grad, g_sum


batch_norm_train.defvjp(_batch_norm_train_fwd, _batch_norm_train_bwd)


class BatchNorm(nn.Module):
    """Batch normalization over all but the channel axis, folded into one multiply-add (or
    GroupNorm, without batch statistics, where the options say `norm="group"`).

    Statistics, scale and offset are float32; training normalizes by `batch_norm_train`. Moving
    averages follow `momentum` in training (not at init), and are used in inference. `relu`: a
    ReLU follows, applied here (in training, its gradient folded into BN's).
    """

    options: ModelOptions
    scale_init: Callable = nn.initializers.ones
    relu: bool = False

    @nn.compact
    def __call__(self, x, train: bool):
        o, c = self.options, x.shape[-1]
        scale = self.param("scale", self.scale_init, (c,), jnp.float32)
        offset = self.param("bias", nn.initializers.zeros, (c,), jnp.float32)
        activate = nn.relu if self.relu else (lambda y: y)
        if o.norm == "group":
            return activate(group_norm(x, scale, offset, o.bn_epsilon))
        moving_mean = self.variable("batch_stats", "mean", jnp.zeros, (c,), jnp.float32)
        moving_var = self.variable("batch_stats", "var", jnp.ones, (c,), jnp.float32)
        if not train:
            return activate(_normalize(x, scale, offset, moving_mean.value,
                                       lax.rsqrt(moving_var.value + o.bn_epsilon))[0])
        y, mean, var = batch_norm_train(x, scale, offset, o.bn_epsilon, self.relu)
        if not self.is_initializing():
            m = o.bn_momentum
            moving_mean.value = m * moving_mean.value + (1 - m) * mean
            moving_var.value = m * moving_var.value + (1 - m) * var
        return y


def group_norm(x, scale, offset, epsilon: float):
    """GroupNorm of an NHWC map: each example normalized over its spatial positions and groups of
    about `GROUP_CHANNELS` channels (as many groups as divide the channels), float32 statistics."""
    n, h, w, c = x.shape
    groups = max(g for g in range(1, max(1, c // GROUP_CHANNELS) + 1) if c % g == 0)
    xf = x.astype(jnp.float32).reshape(n, h, w, groups, c // groups)
    mean = xf.mean(axis=(1, 2, 4), keepdims=True)
    centered = xf - mean
    inv_std = lax.rsqrt((centered * centered).mean(axis=(1, 2, 4), keepdims=True) + epsilon)
    return ((centered * inv_std).reshape(x.shape) * scale + offset).astype(x.dtype)


class ConvBN(nn.Module):
    """Conv (no bias) -> BN -> optional activation: the unit every backbone layer is made of."""

    features: int
    kernel_size: int
    options: ModelOptions
    strides: int = 1
    activate: bool = True
    bn_scale_init: Callable = nn.initializers.ones

    @nn.compact
    def __call__(self, x, train: bool):
        x = Conv(self.features, self.kernel_size, self.strides, dtype=self.options.dtype,
                 kernel_init=self.options.kernel_init, name="conv")(x)
        relu = self.activate and self.options.activation == "relu"
        x = BatchNorm(self.options, self.bn_scale_init, relu, name="bn")(x, train)
        return self.options.act(x) if self.activate and not relu else x


# -- max pooling: 3x3, stride 2, SAME, with a hand-written gradient --------------------------
POOL_WINDOW, POOL_STRIDE = 3, 2


def max_pool(x):
    """3x3 stride-2 SAME max-pooling of an NHWC map, as the reference's MaxPool2D: through oneDNN
    where `cpu_kernels.enabled` says so, else `xla_max_pool`."""
    return cpu_kernels.max_pool(x) if cpu_kernels.enabled(x.dtype) else xla_max_pool(x)


@jax.custom_vjp
def xla_max_pool(x):
    """`max_pool` in XLA's operations, with a hand-written gradient."""
    pads = _same_pads(x.shape, POOL_WINDOW, POOL_STRIDE)
    return lax.reduce_window(x, jnp.array(-jnp.inf, x.dtype), lax.max, (1, POOL_WINDOW, POOL_WINDOW, 1),
                             (1, POOL_STRIDE, POOL_STRIDE, 1), ((0, 0), *pads, (0, 0)))


def _max_pool_fwd(x):
    y = xla_max_pool(x)
    return y, (x, y)


def _max_pool_bwd(residuals, g):
    """Routes each output's gradient to the first maximum of its window in row-major order.

    That is the tap XLA's select-and-scatter picks, so the gradient routes as autodiff's does
    (overlapping windows may add in another order); built from dense strided slices and interior
    padding instead of a scatter, which is several times faster on the CPU.
    """
    x, y = residuals
    padded_shape, taps = _window_taps(x, POOL_WINDOW, POOL_STRIDE, -jnp.inf)
    taken = jnp.zeros(y.shape, bool)
    grad = jnp.zeros(padded_shape, g.dtype)
    zero = jnp.zeros((), g.dtype)
    for (i, j), tap in taps:
        hit = (tap == y) & ~taken
        taken = taken | hit
        placed = [(0, 0, 0)] * 4
        placed[1] = (i, padded_shape[1] - i - POOL_STRIDE * (y.shape[1] - 1) - 1, POOL_STRIDE - 1)
        placed[2] = (j, padded_shape[2] - j - POOL_STRIDE * (y.shape[2] - 1) - 1, POOL_STRIDE - 1)
        grad = grad + lax.pad(jnp.where(hit, g, zero), zero, placed)
    (pt, _), (pl, _) = _same_pads(x.shape, POOL_WINDOW, POOL_STRIDE)
    return (lax.slice(grad, (0, pt, pl, 0), (x.shape[0], pt + x.shape[1], pl + x.shape[2], x.shape[3])),)


xla_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


def upsample_to(x, factor: int, size: Tuple[int, int]):
    """Nearest-neighbour upsampling by `factor`, cropped to `size` (for odd map sizes)."""
    n, h, w, c = x.shape
    x = jnp.broadcast_to(x[:, :, None, :, None, :], (n, h, factor, w, factor, c))
    return x.reshape(n, h * factor, w * factor, c)[:, :size[0], :size[1]]


def stochastic_depth(module: nn.Module, x, rate: float, train: bool):
    """Drops the residual branch `x` per example with probability `rate` while training."""
    if not train or rate == 0.0:
        return x
    keep = jax.random.bernoulli(module.make_rng("dropout"), 1.0 - rate, (x.shape[0], 1, 1, 1))
    return jnp.where(keep, x / (1.0 - rate), jnp.zeros((), x.dtype))
