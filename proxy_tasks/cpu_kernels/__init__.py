"""The CPU kernels for XLA's CPU backend: oneDNN convolutions and max-pooling, and hand-written
batch norm kernels, as FFI custom calls built by `build`."""

from proxy_tasks.cpu_kernels.ops import batch_norm_grad, batch_norm_statistics, conv, enabled, max_pool

__all__ = ["batch_norm_grad", "batch_norm_statistics", "conv", "enabled", "max_pool"]
