"""oneDNN convolutions, max-pooling and batch norm gradients for XLA's CPU backend (issue 19):
FFI custom calls built by `build`."""

from proxy_tasks.onednn.ops import batch_norm_grad, conv, enabled, max_pool

__all__ = ["batch_norm_grad", "conv", "enabled", "max_pool"]
