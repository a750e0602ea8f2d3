"""Orbax checkpoints of a trial's train state, so an interrupted trial resumes mid-way."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import jax
import orbax.checkpoint as ocp


class TrialCheckpoints:
    """Saves the train state at epoch ends under `directory`, keeping the latest `keep`."""

    def __init__(self, directory, keep: int = 1):
        self._manager = ocp.CheckpointManager(
            Path(directory).absolute(), options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))

    def latest_step(self) -> Optional[int]:
        return self._manager.latest_step()

    def save(self, step: int, state) -> None:
        self._manager.save(step, args=ocp.args.StandardSave(state))
        self._manager.wait_until_finished()

    def restore(self, like):
        """The latest saved state, with the structure, shardings and dtypes of `like`."""
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, like)
        return self._manager.restore(self._manager.latest_step(),
                                     args=ocp.args.StandardRestore(abstract))

    def close(self) -> None:
        self._manager.close()
