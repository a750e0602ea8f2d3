"""TensorBoard scalars per trial (`DIR/NAME/tensorboard/TRIAL_ID/`): the per-epoch training and
reward metrics as they arrive, and the trial's reward when it ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

from tensorboardX import SummaryWriter

from nas.ledger import DONE, FAILED

SKIPPED_KEYS = {"epoch", "seed"}


class TensorBoardWriter:
    """Opens one event writer per running trial; `handle` is a search events callback."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.writers: Dict[str, SummaryWriter] = {}

    def _writer(self, trial_id: str) -> SummaryWriter:
        if trial_id not in self.writers:
            self.writers[trial_id] = SummaryWriter(str(self.directory / trial_id))
        return self.writers[trial_id]

    def handle(self, kind: str, trial_id: str, data: Dict[str, Any]) -> None:
        if kind == "epoch":
            writer = self._writer(trial_id)
            prefix = f"seed{data['seed']}/" if "seed" in data else ""
            for key, value in data.items():
                if key not in SKIPPED_KEYS and _is_number(value):
                    writer.add_scalar(prefix + key, value, int(data.get("epoch", 0)))
        elif kind in (DONE, FAILED):
            writer = self.writers.pop(trial_id, None)
            if kind == DONE and data.get("reward") is not None:
                writer = writer or SummaryWriter(str(self.directory / trial_id))
                writer.add_scalar("trial/reward", data["reward"], 0)
            if writer is not None:
                writer.close()

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
