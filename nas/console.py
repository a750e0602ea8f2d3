"""Console helpers for the command line."""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def stdout_to(stream):
    """Sends everything written to stdout inside the block, by Python or by C code (TFDS's
    "Downloading and preparing" line, say), to `stream`; C code's output only where `stream`
    is a real file (not, say, a test's capture buffer)."""
    try:
        target = stream.fileno()
    except (OSError, ValueError):
        target = None
    sys.stdout.flush()
    saved = None if target is None else os.dup(1)
    if saved is not None:
        os.dup2(target, 1)
    try:
        with contextlib.redirect_stdout(stream):
            yield
    finally:
        sys.stdout.flush()
        stream.flush()
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)


def stdout_to_stderr():
    """For `--json` commands: their stdout then holds exactly their one JSON document."""
    return stdout_to(sys.stderr)
