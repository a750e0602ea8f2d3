"""One process of the two-process training test:
`python -m tests.proxy_tasks.multiprocess_worker PORT ID OUT`.

Each process owns one CPU device and feeds its half of every global batch."""

import os
import sys

os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=1 --xla_backend_optimization_level=0"
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402
import numpy as np  # noqa: E402

from proxy_tasks.mesh import initialize_distributed  # noqa: E402


def main(port: str, process_id: str, out: str) -> None:
    initialize_distributed(f"localhost:{port}", 2, int(process_id))
    from tests.proxy_tasks.test_sharded_training import BATCH, train

    half = BATCH // 2
    rows = slice(jax.process_index() * half, (jax.process_index() + 1) * half)
    state, losses = train(jax.devices(), local_rows=rows)
    leaves = [np.asarray(x.addressable_data(0)) for x in jax.tree_util.tree_leaves(state.params)]
    np.savez(out, losses=np.asarray(losses), *leaves)


if __name__ == "__main__":
    main(*sys.argv[1:])
