"""oneDNN convolutions and max-pooling for XLA's CPU backend (issue 19): FFI custom calls built
by `build`."""

from proxy_tasks.onednn.ops import conv, enabled, max_pool

__all__ = ["conv", "enabled", "max_pool"]
