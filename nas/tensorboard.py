"""TensorBoard scalars per trial (`DIR/NAME/tensorboard/TRIAL_ID/`): the per-epoch training and
reward metrics as they arrive, and the trial's reward when it ends."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict

from tensorboardX.event_file_writer import EventsWriter
from tensorboardX.proto.event_pb2 import Event
from tensorboardX.summary import scalar

from nas.ledger import DONE, FAILED

SKIPPED_KEYS = {"epoch", "seed"}


class TensorBoardWriter:
    """Opens one event file per running trial; `handle` is a search events callback.

    Events are written synchronously through tensorboardX's plain `EventsWriter`: its
    `SummaryWriter` starts a thread and a queue per file and registers an exit hook that keeps
    every writer of the search alive until the driver exits."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.writers: Dict[str, EventsWriter] = {}

    def _writer(self, trial_id: str) -> EventsWriter:
        if trial_id not in self.writers:
            folder = self.directory / trial_id
            folder.mkdir(parents=True, exist_ok=True)
            self.writers[trial_id] = EventsWriter(str(folder / "events"))
        return self.writers[trial_id]

    def _scalar(self, trial_id: str, tag: str, value: float, step: int) -> None:
        event = Event(wall_time=time.time(), step=step, summary=scalar(tag, value))
        self._writer(trial_id).write_event(event)

    def handle(self, kind: str, trial_id: str, data: Dict[str, Any]) -> None:
        if kind == "epoch":
            prefix = f"seed{data['seed']}/" if "seed" in data else ""
            for key, value in data.items():
                if key not in SKIPPED_KEYS and _is_number(value):
                    self._scalar(trial_id, prefix + key, value, int(data.get("epoch", 0)))
            self._writer(trial_id).flush()
        elif kind in (DONE, FAILED):
            if kind == DONE and data.get("reward") is not None:
                self._scalar(trial_id, "trial/reward", data["reward"], 0)
            writer = self.writers.pop(trial_id, None)
            if writer is not None:
                writer.close()

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
