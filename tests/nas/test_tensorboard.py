"""The search's TensorBoard files: every scalar written comes back from the event file, and a
finished trial's file is closed."""

import struct

import pytest
from tensorboardX.proto.event_pb2 import Event

from nas.ledger import DONE, FAILED
from nas.tensorboard import TensorBoardWriter


def read_scalars(folder):
    """(tag, step, value) of every scalar in the folder's one event file, read as TFRecords."""
    (path,) = folder.glob("events.out.tfevents.*")
    data, scalars, offset = path.read_bytes(), [], 0
    while offset < len(data):
        (length,) = struct.unpack("<Q", data[offset:offset + 8])
        event = Event.FromString(data[offset + 12:offset + 12 + length])
        offset += 12 + length + 4
        for value in event.summary.value:
            number = value.simple_value if value.HasField("simple_value") else value.tensor.float_val[0]
            scalars.append((value.tag, event.step, pytest.approx(number)))
    return scalars


def test_epochs_and_reward_come_back(tmp_path):
    board = TensorBoardWriter(tmp_path)
    board.handle("epoch", "t-1", {"epoch": 1, "seed": 0, "loss": 0.75, "flag": True, "name": "x"})
    board.handle("epoch", "t-1", {"epoch": 2, "seed": 0, "loss": 0.5})
    board.handle(DONE, "t-1", {"reward": 0.25})
    assert board.writers == {}
    assert read_scalars(tmp_path / "t-1") == [("seed0/loss", 1, 0.75), ("seed0/loss", 2, 0.5),
                                              ("trial/reward", 0, 0.25)]


def test_failed_trial_keeps_its_epochs_without_a_reward(tmp_path):
    board = TensorBoardWriter(tmp_path)
    board.handle("epoch", "t-2", {"epoch": 1, "loss": 2.0})
    board.handle(FAILED, "t-2", {"reward": None})
    board.handle("epoch", "t-3", {"epoch": 1, "loss": 3.0})
    board.close()
    assert board.writers == {}
    assert read_scalars(tmp_path / "t-2") == [("loss", 1, 2.0)]
    assert read_scalars(tmp_path / "t-3") == [("loss", 1, 3.0)]
