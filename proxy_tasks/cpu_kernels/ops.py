"""A SAME NHWC convolution and max-pooling whose forward passes and gradients are oneDNN custom
calls, batch normalization's statistics and gradient as hand-written ones (`norm.cc`), and the
proxy's AdamW step (`adam.cc`).

`NAS_CPU_CONV` picks the CPU path: `onednn` (default) or `xla`; the XLA path stays wherever the
extension is not built, off the CPU and for dtypes other than float32.
`NAS_ONEDNN_THREADS`: OpenMP threads per oneDNN call, default 1: a call runs on the XLA thread
that makes it (a large one splits its batch over two of XLA's pool threads), so oneDNN adds no
threads to XLA's (with 2 OpenMP threads, oneDNN's spinning barriers met XLA's busy threads and
stalled for minutes on 2 cores).
JAX's Threefry-2x32 hash (every random initializer) is `threefry.cc`'s call on the CPU
wherever the extension is built: the same bits, a fraction of the compile.
`NAS_CPU_OPTIMIZER`: `fused` (default) runs the AdamW step as `adam.cc`'s calls, with optax's
bits (it compiles to a custom call a parameter instead of about six kernels: half the train
step's compile, bench/results/search.md); `optax` runs optax's chain through XLA.
"""

from __future__ import annotations

import ctypes
import functools
import os
from pathlib import Path
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax._src.random import threefry2x32 as jax_threefry
from jax.interpreters import mlir

LIBRARY = Path(__file__).resolve().parent / "build" / "libcpu_kernels.so"  # made by `build`
SYMBOLS = {"conv_forward": "OnednnConvForward", "conv_input_grad": "OnednnConvInputGrad",
           "conv_kernel_grad": "OnednnConvKernelGrad", "max_pool_forward": "OnednnMaxPoolForward",
           "max_pool_backward": "OnednnMaxPoolBackward",
           "batch_norm_statistics": "BatchNormStatistics",
           "batch_norm_gradient": "BatchNormGradient",
           "batch_norm_relu_gradient": "BatchNormReluGradient", "adamw_step": "AdamWStep",
           "threefry2x32": "Threefry2x32"}


@functools.cache
def library() -> Optional[ctypes.CDLL]:
    """The extension with its custom calls registered on the CPU, or None where it is not built."""
    if not LIBRARY.exists():
        return None
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads must not spin
    lib = ctypes.CDLL(str(LIBRARY))
    for name, symbol in SYMBOLS.items():
        jax.ffi.register_ffi_target(f"onednn_{name}", jax.ffi.pycapsule(getattr(lib, symbol)),
                                    platform="cpu")
    lib.OnednnSetThreads(int(os.environ.get("NAS_ONEDNN_THREADS", "1")))
    lib.OnednnImplementation.restype = ctypes.c_char_p
    lib.OnednnImplementation.argtypes = [ctypes.c_int] + [ctypes.c_int64] * 7
    lib.OnednnMaxPoolWorkspaceBytes.restype = ctypes.c_int64
    lib.OnednnMaxPoolWorkspaceBytes.argtypes = [ctypes.c_int64] * 10
    return lib


CPU_CONV_PATHS = ("onednn", "xla")


def cpu_conv_path() -> str:
    """`NAS_CPU_CONV`, checked: the path CPU convolutions are asked to take."""
    path = os.environ.get("NAS_CPU_CONV", "onednn")
    if path not in CPU_CONV_PATHS:
        raise ValueError(f"NAS_CPU_CONV: {path!r} is not one of {CPU_CONV_PATHS}")
    return path


def cpu_path() -> str:
    """The path float32 CPU convolutions take: the one `NAS_CPU_CONV` asks for, but XLA's where
    the extension is not built."""
    return "onednn" if cpu_conv_path() == "onednn" and library() is not None else "xla"


CPU_OPTIMIZER_PATHS = ("fused", "optax")


def fused_optimizer() -> bool:
    """Whether Adam steps traced now run as `adamw_step` calls: `NAS_CPU_OPTIMIZER` (`fused`,
    the default, or `optax`), on the CPU, where the extension is built."""
    path = os.environ.get("NAS_CPU_OPTIMIZER", "fused")
    if path not in CPU_OPTIMIZER_PATHS:
        raise ValueError(f"NAS_CPU_OPTIMIZER: {path!r} is not one of {CPU_OPTIMIZER_PATHS}")
    return path == "fused" and library() is not None and jax.default_backend() == "cpu"


def enabled(dtype) -> bool:
    """Whether a convolution in `dtype` traced now runs through oneDNN."""
    return (cpu_path() == "onednn" and jnp.dtype(dtype) == jnp.float32
            and jax.default_backend() == "cpu")


def _call(name: str, shape, a, b, strides: int, kernel_hw):
    """Custom call `name` on (a, b), float32 result of `shape`; SAME pads from the input's size."""
    library()
    in_hw = shape[1:3] if name == "input_grad" else a.shape[1:3]
    (top, _), (left, _) = lax.padtype_to_pads(in_hw, kernel_hw, (strides, strides), "SAME")
    call = jax.ffi.ffi_call(f"onednn_conv_{name}", jax.ShapeDtypeStruct(shape, jnp.float32))
    return call(a, b, stride=np.int64(strides), pad_top=np.int64(top), pad_left=np.int64(left))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def conv(x, kernel, strides: int):
    """SAME convolution of NHWC `x` with HWIO `kernel` (float32), as `lax.conv_general_dilated`."""
    n, h, w, _ = x.shape
    shape = (n, -(-h // strides), -(-w // strides), kernel.shape[3])
    return _call("forward", shape, x, kernel, strides, kernel.shape[:2])


def _conv_fwd(x, kernel, strides):
    return conv(x, kernel, strides), (x, kernel)


def _conv_bwd(strides, residuals, g):
    x, kernel = residuals
    return (_call("input_grad", x.shape, g, kernel, strides, kernel.shape[:2]),
            _call("kernel_grad", kernel.shape, x, g, strides, kernel.shape[:2]))


conv.defvjp(_conv_fwd, _conv_bwd)


POOL_WINDOW, POOL_STRIDE = 3, 2


def _pool_attrs(x_shape):
    (top, _), (left, _) = lax.padtype_to_pads(x_shape[1:3], (POOL_WINDOW,) * 2, (POOL_STRIDE,) * 2,
                                               "SAME")
    return dict(window=np.int64(POOL_WINDOW), stride=np.int64(POOL_STRIDE), pad_top=np.int64(top),
                pad_left=np.int64(left))


def max_pool(x):
    """3x3 stride-2 SAME max-pooling of NHWC float32 `x`, as `layers.max_pool`."""
    return _max_pool(x, x.shape)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _max_pool(x, shape):
    return _max_pool_fwd(x, shape)[0]


def _max_pool_fwd(x, shape):
    n, h, w, c = shape
    out = (n, -(-h // POOL_STRIDE), -(-w // POOL_STRIDE), c)
    attrs = _pool_attrs(shape)
    workspace = library().OnednnMaxPoolWorkspaceBytes(n, h, w, c, *out[1:3], *attrs.values())
    call = jax.ffi.ffi_call("onednn_max_pool_forward", (jax.ShapeDtypeStruct(out, jnp.float32),
                                                         jax.ShapeDtypeStruct((workspace,), jnp.uint8)))
    return call(x, **attrs)  # (y, where each window's maximum is: the residual)


def _max_pool_bwd(shape, where, g):
    call = jax.ffi.ffi_call("onednn_max_pool_backward", jax.ShapeDtypeStruct(shape, jnp.float32))
    return (call(g, where, **_pool_attrs(shape)),)


_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


def batch_norm_statistics(x):
    """(mean, biased variance) of each channel (the last axis) of float32 `x`, over the others."""
    library()
    channels = jax.ShapeDtypeStruct(x.shape[-1:], jnp.float32)
    return jax.ffi.ffi_call("onednn_batch_norm_statistics", (channels, channels))(x)


def batch_norm_grad(x, g, scale, mean, var, epsilon: float, relu=None):
    """(dx, dscale, doffset) of training-mode BN of float32 `x` (channels last) by its batch
    `mean` and biased `var`, for the output's gradient `g`, as `layers.batch_norm_train`'s.
    `relu`: (multiplier, offset) where a ReLU follows, its mask `(x - mean) * multiplier + offset
    > 0` recomputed as the forward pass computed it."""
    library()
    channels = jax.ShapeDtypeStruct(scale.shape, jnp.float32)
    outputs = (jax.ShapeDtypeStruct(x.shape, jnp.float32), channels, channels)
    epsilon = np.float32(epsilon)
    if relu is None:
        return jax.ffi.ffi_call("onednn_batch_norm_gradient", outputs)(
            x, g, scale, mean, var, epsilon=epsilon)
    return jax.ffi.ffi_call("onednn_batch_norm_relu_gradient", outputs)(
        x, g, scale, mean, var, *relu, epsilon=epsilon)


def adamw_step(p, g, mu, nu, scalars, *, b1: float, b2: float, eps: float, decay: float,
               clip_norm: float):
    """(p, mu, nu) after one AdamW step of the float32 parameter `p`, as optax's chain computes
    it: its gradient `g` clipped to the global norm `clip_norm` (0: none), Adam's moments,
    learning rate `scalars[0]`, bias corrections `scalars[1:3]` (1 - b^t), the gradients' global
    norm `scalars[3]`, and decoupled weight decay `decay`. The results alias p, mu and
    nu, so a donated state is updated in place."""
    library()
    shape = jax.ShapeDtypeStruct(p.shape, jnp.float32)
    call = jax.ffi.ffi_call("onednn_adamw_step", (shape,) * 3,
                            input_output_aliases={0: 0, 2: 1, 3: 2})
    return call(p, g, mu, nu, scalars, b1=np.float32(b1), b2=np.float32(b2),
                one_minus_b1=np.float32(1 - b1), one_minus_b2=np.float32(1 - b2),
                eps=np.float32(eps), decay=np.float32(decay), clip_norm=np.float32(clip_norm))


def _threefry2x32(key0, key1, count0, count1):
    """`threefry.cc`'s call, its operands broadcast to the outputs' shape."""
    shape = jnp.broadcast_shapes(*(jnp.shape(x) for x in (key0, key1, count0, count1)))
    out = jax.ShapeDtypeStruct(shape, jnp.uint32)
    return jax.ffi.ffi_call("onednn_threefry2x32", (out, out))(
        *(jnp.broadcast_to(x, shape) for x in (key0, key1, count0, count1)))


def _threefry2x32_lowering(ctx, *operands):
    """JAX's threefry2x32 on the CPU as `threefry.cc`'s call, or JAX's own loop where the
    extension is not built (or there is nothing to hash)."""
    if library() is None or 0 in ctx.avals_out[0].shape:
        return jax_threefry._threefry2x32_cpu_lowering_rule(ctx, *operands)
    return mlir.lower_fun(_threefry2x32, multiple_results=True)(ctx, *operands)


mlir.register_lowering(jax_threefry.threefry2x32_p, _threefry2x32_lowering, platform="cpu")
