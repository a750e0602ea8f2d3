"""Device meshes for one trial: the batch split on the `data` axis, state replicated; multi-host
setup through `jax.distributed` with the global batch assembled from per-host shards."""

from __future__ import annotations

import os
from typing import Optional, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def make_mesh(devices: Optional[Sequence] = None) -> Mesh:
    """A 1-D mesh over `devices` (default: every device of every process of this trial)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def initialize_distributed(coordinator: Optional[str] = None, num_processes: Optional[int] = None,
                           process_id: Optional[int] = None) -> None:
    """Joins a multi-process trial (a TPU slice, several GPU hosts, or CPU processes in tests).

    Arguments default to `NAS_COORDINATOR`, `NAS_NUM_PROCESSES`, `NAS_PROCESS_ID`; on TPU
    slices JAX finds them itself. Does nothing for a single process.
    """
    coordinator = coordinator or os.environ.get("NAS_COORDINATOR")
    num_processes = num_processes or int(os.environ.get("NAS_NUM_PROCESSES", "1"))
    if process_id is None:
        process_id = int(os.environ.get("NAS_PROCESS_ID", "0"))
    if num_processes <= 1 and coordinator is None:
        return
    # Only the CPU client reads this; it lets CPU processes run collectives with each other.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator, num_processes, process_id)


def process_rows(batch):
    """This process's share of a batch that every process of the trial loaded whole: its
    contiguous block of rows (all of them on one process)."""
    count, index = jax.process_count(), jax.process_index()
    if count == 1:
        return batch

    def rows(x):
        share = len(x) // count
        return np.asarray(x)[index * share:(index + 1) * share]

    return jax.tree_util.tree_map(rows, batch)


def global_batch(local_batch, mesh: Mesh):
    """Per-host batch shards -> global arrays split over the mesh's data axis (a plain
    `device_put` on one process)."""
    sharding = batch_sharding(mesh)
    if jax.process_count() == 1:
        return jax.device_put(local_batch, sharding)
    return jax.tree_util.tree_map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), local_batch)
